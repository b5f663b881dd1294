"""Builders for tests: a team owning a ready cluster, users with a role in it.

Kept in the app (not in a conftest) so that other apps' tests, such as the
migration orchestration's, build the same inventory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from django.contrib.auth import get_user_model

from .choices import Role, StorageKind
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

_macs = count(1)


@dataclass
class World:
    """A team, its cluster of ready hosts, one CSV and one ready VM."""

    team: Team
    cluster: Cluster
    hosts: list[Host]
    csv: ClusterSharedVolume
    vm: VirtualMachine
    users: dict[str, object] = field(default_factory=dict)


def _saved(obj):
    obj.full_clean()
    obj.save()
    return obj


def make_host(cluster: Cluster, name: str, **changes) -> Host:
    fields = {
        "name": name,
        "cluster": cluster,
        "hyperv_version": "2019",
        "cpu_vendor": "intel",
        "boot_drive": "C",
        "memory_mib": 16_384,
    }
    return _saved(Host(**(fields | changes)))


def make_vm(
    host: Host,
    name: str,
    *,
    csv: ClusterSharedVolume | None,
    highly_available: bool = True,
    **changes,
) -> VirtualMachine:
    """A running VM with one VHDX (on ``csv``, or local storage) and one adapter."""
    vm = _saved(
        VirtualMachine(
            **({"name": name, "host": host, "memory_mib": 1024} | changes),
            highly_available=False,
        )
    )
    path = f"{csv.path}\\{name}.vhdx" if csv else f"C:\\VMs\\{name}.vhdx"
    _saved(VirtualDisk(vm=vm, name=f"{name}.vhdx", kind="vhdx", csv=csv, path=path))
    _saved(
        NetworkAdapter(
            vm=vm,
            mac_address=f"00-15-5D-FF-{next(_macs) // 256:02X}-{next(_macs) % 256:02X}",
            virtual_switch="vSwitch",
        )
    )
    if highly_available:
        vm.highly_available = True
        _saved(vm)
    return vm


def make_world(prefix: str = "BLUE", hosts: int = 3) -> World:
    """A team ``prefix`` owning ``CLU-prefix``: ready hosts, a CSV and a ready VM."""
    team = _saved(Team(name=prefix.title()))
    cluster = _saved(
        Cluster(
            name=f"CLU-{prefix}",
            team=team,
            shared_storage=True,
            storage_kind=StorageKind.ISCSI,
        )
    )
    host_list = [make_host(cluster, f"HV-{prefix}-{i}") for i in range(1, hosts + 1)]
    csv = _saved(
        ClusterSharedVolume(
            cluster=cluster,
            name="Volume1",
            path="C:\\ClusterStorage\\Volume1",
            capacity_gib=512,
            owner=host_list[0],
        )
    )
    vm = make_vm(host_list[0], f"{prefix.lower()}-web-1", csv=csv)
    return World(team=team, cluster=cluster, hosts=host_list, csv=csv, vm=vm)


def make_moving_world(**vm_fields) -> World:
    """:func:`make_world` with an ``operator`` (``world.operator``) and a 64 MiB
    database VM that a worker moves in about a second; ``vm_fields`` change
    the VM (its workload, write rate, working set)."""
    world = make_world()
    world.operator = make_member(world.team, "operator")
    fields = {"memory_mib": 64, "workload_profile": "database", "write_rate": 50_000,
              "working_set_pages": 4_000} | vm_fields  # fmt: skip
    for name, value in fields.items():
        setattr(world.vm, name, value)
    world.vm.save()
    return world


def make_member(
    team: Team, role: str, username: str | None = None, *, staff: bool = True
):
    """A user holding ``role`` in ``team`` (password ``pw``)."""
    User = get_user_model()
    user = User.objects.create_user(
        username=username or f"{team.name.lower()}-{role}",
        password="pw",
        is_staff=staff,
    )
    Membership.objects.create(user=user, team=team, role=Role(role))
    return user
