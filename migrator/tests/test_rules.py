"""The seed's rules at the pure level: each passes, each fails, all are reported."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from typing import Any

import pytest

from migrator import rules
from migrator.hyperv import VERSIONS
from migrator.rules import (
    ClusterSnapshot,
    DiskSnapshot,
    HostSnapshot,
    VMSnapshot,
    configuration_failures,
    csv_placement_failures,
    ha_configuration_failures,
    host_membership_failures,
    migration_failures,
)


def host(name: str, **changes: object) -> HostSnapshot:
    base = HostSnapshot(
        name=name,
        cluster="CLU",
        hyperv_version="2019",
        cpu_vendor="intel",
        boot_drive="C",
        memory_mib=16384,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cluster(**changes: object) -> ClusterSnapshot:
    base = ClusterSnapshot(
        name="CLU",
        shared_storage=True,
        storage_kind="iscsi",
        csvs=frozenset({"Volume1"}),
        boot_drives=("C", "C", "C"),
        cpu_vendors=("intel", "intel", "intel"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


CSV_DISK = DiskSnapshot(
    name="web.vhdx",
    kind="vhdx",
    csv="Volume1",
    csv_cluster="CLU",
    path=r"C:\ClusterStorage\Volume1\web.vhdx",
)
LOCAL_DISK = DiskSnapshot(
    name="local.vhd", kind="vhd", csv=None, path=r"C:\VMs\local.vhd"
)


def vm(**changes: object) -> VMSnapshot:
    base = VMSnapshot(
        name="web-1",
        host="HV-1",
        memory_mib=1024,
        highly_available=True,
        automatic_start_action="nothing",
        disks=(CSV_DISK,),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def codes(failures: tuple[rules.Failure, ...]) -> list[str]:
    return [f.code for f in failures]


def test_a_ready_pair_passes_every_rule_and_check() -> None:
    assert migration_failures(vm(), host("HV-1"), host("HV-2"), cluster()) == ()


# --- HYPERV_VERSION ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["source", "destination"])
def test_hyperv_2008_on_either_host_fails_hyperv_version(which: str) -> None:
    source, destination = host("HV-1"), host("HV-2")
    if which == "source":
        source = host("HV-1", hyperv_version="2008")
    else:
        destination = host("HV-2", hyperv_version="2008")
    (failure,) = configuration_failures(vm(), source, destination, cluster())
    assert failure.code == "HYPERV_VERSION"
    bad = source if which == "source" else destination
    assert failure.subjects == (bad.name,)
    assert "upgrade it to Hyper-V 2008 R2 or later" in failure.message
    assert failure.fields == ("hyperv_version",)
    assert "The first version of Hyper-V does not support live migration" in (
        failure.seed
    )


def test_hyperv_2008_r2_on_both_hosts_passes() -> None:
    source = host("HV-1", hyperv_version="2008 R2")
    destination = host("HV-2", hyperv_version="2008 R2")
    assert configuration_failures(vm(), source, destination, cluster()) == ()


# --- FAILOVER_CLUSTER ----------------------------------------------------------------


def test_destination_in_another_cluster_fails_failover_cluster() -> None:
    destination = host("HV-9", cluster="OTHER")
    (failure,) = configuration_failures(vm(), host("HV-1"), destination, cluster())
    assert failure.code == "FAILOVER_CLUSTER"
    assert failure.subjects == ("HV-9",)
    assert "choose a host of CLU" in failure.message


def test_host_not_joined_as_cluster_node_fails_failover_cluster() -> None:
    destination = host("HV-2", cluster_node=False)
    (failure,) = configuration_failures(vm(), host("HV-1"), destination, cluster())
    assert failure.code == "FAILOVER_CLUSTER"
    assert failure.fields == ("cluster_node",)
    assert "Add-ClusterNode" in failure.message


def test_cluster_without_shared_storage_fails_failover_and_shared_storage() -> None:
    plain = cluster(shared_storage=False, storage_kind="none")
    found = configuration_failures(vm(), host("HV-1"), host("HV-2"), plain)
    assert codes(found)[:2] == ["FAILOVER_CLUSTER", "SHARED_STORAGE"]
    assert "enable shared storage on the cluster" in found[0].message


# --- SHARED_STORAGE ------------------------------------------------------------------


def test_host_cut_off_from_the_san_fails_shared_storage() -> None:
    destination = host("HV-2", shared_storage_connected=False)
    (failure,) = configuration_failures(vm(), host("HV-1"), destination, cluster())
    assert failure.code == "SHARED_STORAGE"
    assert failure.subjects == ("HV-2",)
    assert "connect it to the SAN" in failure.message


@pytest.mark.parametrize("kind", ["fibre_channel", "iscsi"])
def test_both_hosts_on_a_san_pass_shared_storage(kind: str) -> None:
    found = configuration_failures(
        vm(), host("HV-1"), host("HV-2"), cluster(storage_kind=kind)
    )
    assert found == ()


# --- CPU_VENDOR ----------------------------------------------------------------------


def test_intel_to_amd_fails_cpu_vendor_and_blames_the_odd_host() -> None:
    destination = host("HV-AMD", cpu_vendor="amd")
    found = configuration_failures(
        vm(),
        host("HV-1"),
        destination,
        cluster(cpu_vendors=("intel", "intel", "amd")),
    )
    (failure,) = found
    assert failure.code == "CPU_VENDOR"
    assert failure.subjects == ("HV-AMD",)
    assert "an Intel processor and HV-AMD an AMD one" in failure.message


def test_amd_to_amd_passes_cpu_vendor() -> None:
    source = host("HV-1", cpu_vendor="amd")
    destination = host("HV-2", cpu_vendor="amd")
    assert configuration_failures(vm(), source, destination, cluster()) == ()


# --- HIGHLY_AVAILABLE ----------------------------------------------------------------


def test_vm_not_highly_available_fails_highly_available() -> None:
    found = configuration_failures(
        vm(highly_available=False), host("HV-1"), host("HV-2"), cluster()
    )
    (failure,) = found
    assert failure.code == "HIGHLY_AVAILABLE"
    assert failure.fields == ("highly_available",)
    assert "configure it as highly available" in failure.message


def test_disk_on_local_storage_fails_highly_available_naming_the_disk() -> None:
    found = configuration_failures(
        vm(disks=(CSV_DISK, LOCAL_DISK)), host("HV-1"), host("HV-2"), cluster()
    )
    (failure,) = found
    assert failure.code == "HIGHLY_AVAILABLE"
    assert failure.fields == ("disks",)
    assert r"Disk local.vhd (C:\VMs\local.vhd) is on local storage" in (failure.message)
    assert "move it to a Cluster Shared Volume of CLU" in failure.message


def test_disk_on_another_clusters_csv_fails_highly_available() -> None:
    elsewhere = DiskSnapshot(name="x.vhdx", kind="vhdx", csv="V9", csv_cluster="OTHER")
    found = configuration_failures(
        vm(disks=(elsewhere,)), host("HV-1"), host("HV-2"), cluster()
    )
    assert codes(found) == ["HIGHLY_AVAILABLE"]
    assert "on CSV V9 of cluster OTHER, not of CLU" in found[0].message


# --- AUTO_START_ACTION ---------------------------------------------------------------


@pytest.mark.parametrize("action", ["start_if_running", "always_start"])
def test_automatic_start_action_other_than_nothing_fails(action: str) -> None:
    found = configuration_failures(
        vm(automatic_start_action=action), host("HV-1"), host("HV-2"), cluster()
    )
    (failure,) = found
    assert failure.code == "AUTO_START_ACTION"
    assert failure.fields == ("automatic_start_action",)
    assert "set it to \u201cNothing\u201d" in failure.message


# --- BOOT_DRIVE ----------------------------------------------------------------------


def test_host_booting_from_d_fails_boot_drive_and_is_named() -> None:
    destination = host("HV-D", boot_drive="D")
    found = configuration_failures(
        vm(), host("HV-1"), destination, cluster(boot_drives=("C", "C", "D"))
    )
    (failure,) = found
    assert failure.code == "BOOT_DRIVE"
    assert failure.subjects == ("HV-D",)
    assert "HV-D boots from D: but the other hosts of CLU boot from C:" in (
        failure.message
    )


def test_two_c_hosts_pass_boot_drive_even_with_a_d_host_in_the_cluster() -> None:
    found = configuration_failures(
        vm(), host("HV-1"), host("HV-2"), cluster(boot_drives=("C", "C", "D"))
    )
    assert found == ()


def test_two_d_hosts_in_a_c_cluster_fail_boot_drive() -> None:
    found = configuration_failures(
        vm(),
        host("HV-1", boot_drive="D"),
        host("HV-2", boot_drive="D"),
        cluster(boot_drives=("C", "C", "C", "D", "D")),
    )
    assert codes(found) == ["BOOT_DRIVE"]
    assert found[0].subjects == ("HV-1", "HV-2")


def test_a_tie_between_letters_prefers_the_first_letter() -> None:
    assert rules.prevailing(["D", "C"]) == "C"
    assert rules.prevailing([]) is None


# --- Every failure, not the first ----------------------------------------------------


def test_every_failing_rule_is_returned_in_table_order() -> None:
    source = host("HV-1", hyperv_version="2008")
    destination = host(
        "HV-2",
        cpu_vendor="amd",
        boot_drive="D",
        shared_storage_connected=False,
        cluster_node=False,
    )
    bad_vm = vm(
        highly_available=False,
        automatic_start_action="always_start",
        disks=(LOCAL_DISK,),
        host="HV-1",
    )
    found = configuration_failures(bad_vm, source, destination, cluster())
    assert codes(found) == [rule.code for rule in rules.RULES]
    assert all(f.seed for f in found)


# --- Operational checks --------------------------------------------------------------


def test_operational_checks_each_fail_with_their_code() -> None:
    source = host("HV-1", active_migrations=2)
    destination = host(
        "HV-2",
        state="down",
        memory_mib=4096,
        vm_memory_mib=3072,
        reserved_memory_mib=512,
    )
    moving = vm(power_state="saved", migration_active=True)
    found = migration_failures(moving, source, destination, cluster())
    assert codes(found) == [
        "DESTINATION_DOWN",
        "VM_NOT_RUNNING",
        "INSUFFICIENT_MEMORY",
        "MIGRATION_ACTIVE",
        "HOST_MIGRATION_LIMIT",
    ]
    memory = found[2]
    assert "HV-2 has 512 MiB free and web-1 needs 1024 MiB" in memory.message
    assert [f.code for f in found if f.queueable] == ["HOST_MIGRATION_LIMIT"]
    assert all(f.seed == "" for f in found)


def test_same_host_and_paused_destination_are_refused() -> None:
    found = migration_failures(
        vm(), host("HV-1", state="paused"), host("HV-1", state="paused"), cluster()
    )
    assert codes(found) == ["SAME_HOST", "DESTINATION_PAUSED"]


def test_a_vm_on_a_down_host_is_not_live_migrated() -> None:
    found = migration_failures(
        vm(), host("HV-1", state="down"), host("HV-2"), cluster()
    )
    assert codes(found) == ["SOURCE_DOWN"]
    assert found[0].subjects == ("HV-1",)
    assert "HV-1 is down" in found[0].message and not found[0].queueable
    paused = migration_failures(
        vm(), host("HV-1", state="paused"), host("HV-2"), cluster()
    )
    assert paused == ()  # a paused (draining) host's VMs do move


def test_destination_at_its_migration_limit_is_queueable() -> None:
    destination = host("HV-2", active_migrations=1, max_simultaneous_migrations=1)
    (failure,) = migration_failures(vm(), host("HV-1"), destination, cluster())
    assert failure.code == "HOST_MIGRATION_LIMIT"
    assert failure.queueable
    assert failure.subjects == ("HV-2",)


def test_exactly_enough_free_memory_passes() -> None:
    destination = host("HV-2", memory_mib=2048, vm_memory_mib=1024)
    assert migration_failures(vm(), host("HV-1"), destination, cluster()) == ()


def test_configuration_failures_ignore_operational_state() -> None:
    destination = host("HV-2", state="down")
    assert configuration_failures(vm(), host("HV-1"), destination, cluster()) == ()


# --- The admin's and the HA action's rules -------------------------------------------


def test_ha_configuration_reports_every_blocking_rule() -> None:
    blocked = vm(
        highly_available=False,
        automatic_start_action="always_start",
        disks=(LOCAL_DISK,),
    )
    found = ha_configuration_failures(
        blocked, cluster(shared_storage=False, storage_kind="none")
    )
    assert codes(found) == ["FAILOVER_CLUSTER", "HIGHLY_AVAILABLE", "AUTO_START_ACTION"]


def test_ha_configuration_passes_for_a_vm_on_csvs_with_start_action_nothing() -> None:
    assert ha_configuration_failures(vm(highly_available=False), cluster()) == ()


def test_a_d_host_cannot_join_a_cluster_of_c_hosts() -> None:
    (failure,) = host_membership_failures(
        host("HV-D", boot_drive="D"), [host("HV-1"), host("HV-2")], cluster()
    )
    assert failure.code == "BOOT_DRIVE"
    assert failure.fields == ("boot_drive",)
    assert "Set its boot drive to C:" in failure.message


def test_a_c_host_stays_welcome_in_a_mostly_c_cluster_with_one_d_host() -> None:
    others = [host("HV-1"), host("HV-2"), host("HV-D", boot_drive="D")]
    assert host_membership_failures(host("HV-3"), others, cluster()) == ()
    (failure,) = host_membership_failures(
        host("HV-E", boot_drive="E"), others, cluster()
    )
    assert "but most hosts of CLU boot from C:" in failure.message


def test_a_c_host_may_join_a_cluster_of_c_hosts_or_an_empty_one() -> None:
    assert host_membership_failures(host("HV-3"), [host("HV-1")], cluster()) == ()
    assert host_membership_failures(host("HV-3", boot_drive="E"), [], cluster()) == ()


def test_a_csv_needs_a_cluster_with_shared_storage() -> None:
    (failure,) = csv_placement_failures(
        cluster(shared_storage=False, storage_kind="none")
    )
    assert failure.code == "SHARED_STORAGE"
    assert "enable shared storage" in failure.message
    assert csv_placement_failures(cluster()) == ()


# --- Inputs --------------------------------------------------------------------------


def test_snapshots_refuse_values_no_inventory_holds() -> None:
    with pytest.raises(rules.RuleInputError, match="Hyper-V version '2007'"):
        host("HV-1", hyperv_version="2007")
    with pytest.raises(rules.RuleInputError, match="more than 0 MiB"):
        vm(memory_mib=0)
    with pytest.raises(rules.RuleInputError, match="boot drive 'B'"):
        host("HV-1", boot_drive="B")


def test_the_source_must_be_the_vms_host() -> None:
    with pytest.raises(rules.RuleInputError, match="runs on HV-1"):
        configuration_failures(vm(), host("HV-2"), host("HV-3"), cluster())


def test_snapshots_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        vm().name = "other"  # type: ignore[misc]


def test_the_rules_import_no_django() -> None:
    code = "import sys, migrator.rules; print('django' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("power_state", ["off", "saved"])
def test_quick_migration_moves_a_vm_that_is_not_running(power_state: str) -> None:
    stopped = vm(power_state=power_state)
    live = migration_failures(stopped, host("HV-1"), host("HV-2"), cluster())
    quick = migration_failures(
        stopped, host("HV-1"), host("HV-2"), cluster(), quick=True
    )
    assert codes(live) == ["VM_NOT_RUNNING"]
    assert quick == ()


def test_the_host_rules_and_the_vm_rules_are_every_rule_once() -> None:
    """ready_counts asks each kind at its own level: no rule may be left out."""
    split = rules._HOST_RULE_CHECKS + rules._VM_RULE_CHECKS
    assert sorted(split, key=rules._RULE_CHECKS.index) == list(rules._RULE_CHECKS)


def random_cluster(
    rng: random.Random,
) -> tuple[list[HostSnapshot], list[VMSnapshot], ClusterSnapshot]:
    """Hosts and VMs that break the rules and checks at random, often enough
    that every count from 0 to all of them comes up."""

    def some(values: list[Any], usual: Any, odds: float = 0.8) -> Any:
        return usual if rng.random() < odds else rng.choice(values)

    hosts = [
        HostSnapshot(
            name=f"HV-{i}",
            cluster=some(["CLU", "OTHER", None], "CLU", 0.9) if i > 2 else "CLU",
            hyperv_version=some(list(VERSIONS), "2019", 0.85),
            cpu_vendor=some(["intel", "amd"], "intel"),
            boot_drive=some(["C", "D"], "C"),
            memory_mib=rng.choice([4096, 8192, 16384]),
            shared_storage_connected=rng.random() < 0.9,
            cluster_node=rng.random() < 0.9,
            state=some(["up", "paused", "down"], "up"),
            vm_memory_mib=rng.choice([0, 2048, 4096]),
            reserved_memory_mib=rng.choice([0, 0, 1024, 3072]),
            active_migrations=rng.choice([0, 0, 1, 2]),
            max_simultaneous_migrations=2,
        )
        for i in range(1, rng.randint(2, 9))
    ]
    clu = [h for h in hosts if h.cluster == "CLU"]
    the_cluster = ClusterSnapshot(
        name="CLU",
        shared_storage=rng.random() < 0.9,
        storage_kind=some(list(rules.STORAGE_KINDS), "iscsi", 0.9),
        csvs=frozenset({"Volume1"}),
        boot_drives=tuple(h.boot_drive for h in clu),
        cpu_vendors=tuple(h.cpu_vendor for h in clu),
    )
    disks = [CSV_DISK, LOCAL_DISK, dataclasses.replace(CSV_DISK, csv_cluster="X")]
    vms = [
        VMSnapshot(
            name=f"vm-{i}",
            host=rng.choice(clu).name,
            memory_mib=rng.choice([512, 1024, 4096, 8192]),
            power_state=some(list(rules.POWER_STATES), "running"),
            highly_available=rng.random() < 0.9,
            automatic_start_action=some(list(rules.AUTOMATIC_START_ACTIONS), "nothing"),
            disks=tuple(some(disks, CSV_DISK, 0.9) for _ in range(rng.randint(0, 2))),
            migration_active=rng.random() < 0.1,
        )
        for i in range(rng.randint(0, 12))
    ]
    return hosts, vms, the_cluster


def test_ready_counts_agree_with_migration_failures_pair_by_pair() -> None:
    rng = random.Random(13)
    seen: set[int] = set()
    for _ in range(400):
        hosts, vms, the_cluster = random_cluster(rng)
        by_name = {h.name: h for h in hosts}
        expected = {
            d.name: sum(
                not migration_failures(v, by_name[v.host], d, the_cluster)
                for v in vms
                if v.host != d.name
            )
            for d in hosts
        }
        assert rules.ready_counts(vms, hosts, the_cluster) == expected
        seen.update(expected.values())
    assert {0, 1, 2, 3} <= seen  # the draws reached full, partial and empty hosts
