"""The demo inventory: a ready cluster, a lab where each seed rule breaks once.

``CLU-PROD``: three Intel hosts on Hyper-V 2019 booting from C:, two CSVs and
eight highly available running VMs, every one ready to move anywhere.

``CLU-LAB``: two healthy hosts (HV-LAB-1, HV-LAB-2) carry every VM; each other
host or VM breaks exactly one of the seed's seven rules (:data:`LAB_OFFENDERS`),
so a healthy VM moving to a healthy host passes and every failure in the
readiness matrix points at its offender.

Two of the offenders are data the admin refuses (a D: host in a cluster of C:
hosts, a highly available VM whose Automatic Start Action is Always start);
they are written here without ``full_clean()`` on purpose, to show the rules
at work. Everything else is validated as the admin would.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from .choices import (
    AutomaticStartAction,
    CpuVendor,
    DiskKind,
    Role,
    StorageKind,
    WorkloadProfile,
)
from .models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    Membership,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)

TEAM = "Operations"
USERS: dict[str, str] = {
    "demo-viewer": Role.VIEWER,
    "demo-operator": Role.OPERATOR,
    "demo-admin": Role.ADMINISTRATOR,
}
LOGINS_FILE = "demo-logins.json"

#: In CLU-LAB, the one host or VM that breaks each rule.
LAB_OFFENDERS: dict[str, str] = {
    "HYPERV_VERSION": "HV-LAB-2008",
    "FAILOVER_CLUSTER": "HV-LAB-NOTJOINED",
    "SHARED_STORAGE": "HV-LAB-NOSAN",
    "CPU_VENDOR": "HV-LAB-AMD",
    "HIGHLY_AVAILABLE": "lab-local-disk",
    "AUTO_START_ACTION": "lab-always-start",
    "BOOT_DRIVE": "HV-LAB-DBOOT",
}

WORKLOADS = {
    # profile: (writes per second, working-set pages)
    WorkloadProfile.IDLE: (50, 512),
    WorkloadProfile.WEB: (2_000, 8_192),
    WorkloadProfile.DATABASE: (8_000, 32_768),
    WorkloadProfile.MEMORY_HAMMER: (40_000, 65_536),
}

PROD_VMS = [
    # name, host index, memory MiB, vCPUs, profile, CSV index
    ("prod-web-1", 0, 1024, 2, WorkloadProfile.WEB, 0),
    ("prod-web-2", 1, 1024, 2, WorkloadProfile.WEB, 1),
    ("prod-db-1", 0, 2048, 4, WorkloadProfile.DATABASE, 0),
    ("prod-db-2", 2, 2048, 4, WorkloadProfile.DATABASE, 1),
    ("prod-cache-1", 1, 1536, 2, WorkloadProfile.MEMORY_HAMMER, 0),
    ("prod-app-1", 2, 1024, 2, WorkloadProfile.WEB, 1),
    ("prod-batch-1", 0, 768, 1, WorkloadProfile.DATABASE, 1),
    ("prod-idle-1", 1, 512, 1, WorkloadProfile.IDLE, 0),
]


def _mac(cluster_octet: int, index: int) -> str:
    # 00-15-5D is Hyper-V's own MAC prefix.
    return f"00-15-5D-{cluster_octet:02X}-00-{index:02X}"


def _save(obj, validate: bool = True):
    if validate:
        obj.full_clean()
    obj.save()
    return obj


def _vm(
    name: str,
    host: Host,
    memory_mib: int,
    vcpus: int,
    profile: str,
    *,
    mac: str,
    switch: str,
    disk_csv: ClusterSharedVolume | None,
    highly_available: bool = True,
    start_action: str = AutomaticStartAction.NOTHING,
    validate: bool = True,
) -> VirtualMachine:
    write_rate, working_set = WORKLOADS[profile]
    working_set = min(working_set, memory_mib * 256)
    vm = VirtualMachine(
        name=name,
        host=host,
        memory_mib=memory_mib,
        vcpus=vcpus,
        highly_available=False,
        automatic_start_action=start_action,
        workload_profile=profile,
        write_rate=write_rate,
        working_set_pages=working_set,
    )
    _save(vm)
    if disk_csv is not None:
        path = f"{disk_csv.path}\\{name}.vhdx"
    else:
        path = f"C:\\Hyper-V\\Virtual Hard Disks\\{name}.vhdx"
    _save(
        VirtualDisk(
            vm=vm, name=f"{name}.vhdx", kind=DiskKind.VHDX, csv=disk_csv, path=path
        )
    )
    _save(NetworkAdapter(vm=vm, mac_address=mac, virtual_switch=switch))
    if highly_available:
        # What "Configure as highly available" does, once the disks are in place.
        vm.highly_available = True
        _save(vm, validate=validate)
    return vm


def _seed_prod(team: Team) -> None:
    cluster = _save(
        Cluster(
            name="CLU-PROD",
            team=team,
            shared_storage=True,
            storage_kind=StorageKind.FIBRE_CHANNEL,
            description="Production: every VM may move to every other host.",
        )
    )
    hosts = [
        _save(
            Host(
                name=f"HV-PROD-{i}",
                cluster=cluster,
                hyperv_version="2019",
                cpu_vendor=CpuVendor.INTEL,
                cpu_model="Xeon Gold 6230",
                boot_drive="C",
                memory_mib=32_768,
            )
        )
        for i in (1, 2, 3)
    ]
    csvs = [
        _save(
            ClusterSharedVolume(
                cluster=cluster,
                name=f"Volume{i}",
                path=f"C:\\ClusterStorage\\Volume{i}",
                capacity_gib=2_048,
                owner=hosts[i - 1],
            )
        )
        for i in (1, 2)
    ]
    for index, (name, host_i, memory, vcpus, profile, csv_i) in enumerate(PROD_VMS):
        _vm(
            name,
            hosts[host_i],
            memory,
            vcpus,
            profile,
            mac=_mac(0x10, index + 1),
            switch="vSwitch-Prod",
            disk_csv=csvs[csv_i],
        )


def _seed_lab(team: Team) -> None:
    cluster = _save(
        Cluster(
            name="CLU-LAB",
            team=team,
            shared_storage=True,
            storage_kind=StorageKind.ISCSI,
            description="Lab: each of the seed's seven rules is broken by one host "
            "or VM.",
        )
    )

    def host(name: str, validate: bool = True, **changes) -> Host:
        fields = {
            "name": name,
            "cluster": cluster,
            "hyperv_version": "2016",
            "cpu_vendor": CpuVendor.INTEL,
            "cpu_model": "Xeon E5-2680 v4",
            "boot_drive": "C",
            "memory_mib": 16_384,
        }
        return _save(Host(**(fields | changes)), validate=validate)

    healthy_1 = host("HV-LAB-1")
    healthy_2 = host("HV-LAB-2")
    host("HV-LAB-AMD", cpu_vendor=CpuVendor.AMD, cpu_model="EPYC 7302")
    host("HV-LAB-2008", hyperv_version="2008", cpu_model="Xeon E5450")
    host("HV-LAB-NOSAN", shared_storage_connected=False)
    host("HV-LAB-NOTJOINED", cluster_node=False)
    # The admin refuses a D: host among C: hosts (BOOT_DRIVE); the demo shows why.
    host("HV-LAB-DBOOT", validate=False, boot_drive="D")
    csv = _save(
        ClusterSharedVolume(
            cluster=cluster,
            name="Volume1",
            path="C:\\ClusterStorage\\Volume1",
            capacity_gib=1_024,
            owner=healthy_1,
        )
    )
    lab = [
        ("lab-web-1", healthy_1, 1024, WorkloadProfile.WEB, {}),
        ("lab-db-1", healthy_2, 2048, WorkloadProfile.DATABASE, {}),
        # Not highly available: its VHDX sits on the host's local storage.
        (
            "lab-local-disk",
            healthy_1,
            1024,
            WorkloadProfile.IDLE,
            {"disk_csv": None, "highly_available": False},
        ),
        # Highly available with "Always start": the admin refuses this too.
        (
            "lab-always-start",
            healthy_2,
            1024,
            WorkloadProfile.WEB,
            {"start_action": AutomaticStartAction.ALWAYS_START, "validate": False},
        ),
    ]
    for index, (name, on, memory, profile, extra) in enumerate(lab):
        _vm(
            name,
            on,
            memory,
            2,
            profile,
            mac=_mac(0x20, index + 1),
            switch="vSwitch-Lab",
            **({"disk_csv": csv} | extra),
        )


def _logins_path() -> Path:
    return Path(settings.DATA_DIR) / LOGINS_FILE


def _read_logins(path: Path) -> dict[str, str] | None:
    try:
        logins = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(logins, dict) or set(logins) != set(USERS):
        return None
    return logins


def _write_logins(path: Path, logins: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(logins, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _seed_users(team: Team) -> tuple[dict[str, str], bool]:
    """The demo users and their passwords; True when passwords were (re)set."""
    User = get_user_model()
    path = _logins_path()
    logins = _read_logins(path)
    existing = set(
        User.objects.filter(username__in=USERS).values_list("username", flat=True)
    )
    fresh = logins is None or existing != set(USERS)
    if fresh:
        logins = {name: secrets.token_urlsafe(12) for name in USERS}
    assert logins is not None
    for name, role in USERS.items():
        user, created = User.objects.get_or_create(username=name)
        if fresh or created:
            user.set_password(logins[name])
            # Viewers use the pages only; operators and admins also the admin.
            user.is_staff = role != Role.VIEWER
            user.save()
        Membership.objects.update_or_create(
            user=user, team=team, defaults={"role": role}
        )
    if fresh:
        _write_logins(path, logins)
    return logins, fresh


def seed(write: Callable[[str], None] = print) -> bool:
    """Create whatever part of the demo is missing; True when anything was made."""
    created = False
    with transaction.atomic():
        team, made = Team.objects.get_or_create(
            name=TEAM, defaults={"description": "Runs the demo clusters."}
        )
        created |= made
        for name, build in (("CLU-PROD", _seed_prod), ("CLU-LAB", _seed_lab)):
            if not team.clusters.filter(name=name).exists():
                build(team)
                created = True
                write(f"Created demo cluster {name}.")
        logins, fresh = _seed_users(team)
    if not created and not fresh:
        write("Demo inventory already present (CLU-PROD, CLU-LAB).")
    where = _logins_path()
    write(
        "Demo logins" + (f" (new, kept in {where}):" if fresh else f" (from {where}):")
    )
    for name in USERS:
        write(f"  {name:<14} {logins[name]}")
    return created or fresh
