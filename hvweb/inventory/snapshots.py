"""The one place that turns inventory rows into ``migrator.rules`` snapshots.

Model ``clean()`` methods, the admin, the pages, the ``readiness`` command and
the migration task build snapshots here and hand them to the rules; none of
them looks at a rule's fields by itself.

The load figures the orchestration knows about (memory reserved by incoming
moves, live migrations under way, whether a VM is being moved) are arguments
with neutral defaults: the inventory alone does not know them. They have one
home, ``hvweb.moves.capacity``, which fills them in for every check of a move
now (its ``readiness`` is the operational form of :func:`readiness` here).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from migrator import rules
from migrator.rules import (
    ClusterSnapshot,
    DiskSnapshot,
    Failure,
    HostSnapshot,
    VMSnapshot,
)

from .models import Cluster, Host, VirtualDisk, VirtualMachine, memory_held_mib

__all__ = [
    "PairResult",
    "Readiness",
    "cluster_snapshot",
    "disk_snapshot",
    "disks_by_vm",
    "host_snapshot",
    "readiness",
    "readiness_by_vm",
    "vm_snapshot",
]


def cluster_snapshot(
    cluster: Cluster, hosts: Iterable[Host] | None = None
) -> ClusterSnapshot:
    """``cluster`` with its CSVs and its hosts' boot drives and CPU vendors.

    ``hosts`` (default: the stored ones) lets a caller pass hosts already loaded.
    """
    if hosts is None:
        hosts = cluster.hosts.all() if cluster.pk else []
    hosts = list(hosts)
    csvs = cluster.csvs.values_list("name", flat=True) if cluster.pk else []
    return ClusterSnapshot(
        name=cluster.name,
        shared_storage=cluster.shared_storage,
        storage_kind=cluster.storage_kind,
        csvs=frozenset(csvs),
        boot_drives=tuple(h.boot_drive for h in hosts),
        cpu_vendors=tuple(h.cpu_vendor for h in hosts),
        max_simultaneous_migrations=cluster.max_simultaneous_migrations,
    )


def host_snapshot(
    host: Host,
    *,
    vm_memory_mib: int | None = None,
    reserved_memory_mib: int = 0,
    active_migrations: int = 0,
    load: bool = True,
) -> HostSnapshot:
    """``host`` as the rules see it.

    ``vm_memory_mib`` defaults to the memory of the running and paused VMs
    stored on it (0 with ``load=False``, for a host not saved yet);
    the orchestration passes what incoming moves reserve and how many live
    migrations the host takes part in.
    """
    if vm_memory_mib is None:
        vm_memory_mib = (
            memory_held_mib(host.virtual_machines.all()) if load and host.pk else 0
        )
    cluster = host.cluster if host.cluster_id else None
    return HostSnapshot(
        name=host.name,
        cluster=cluster.name if cluster else None,
        hyperv_version=host.hyperv_version,
        cpu_vendor=host.cpu_vendor,
        boot_drive=host.boot_drive,
        memory_mib=host.memory_mib,
        shared_storage_connected=host.shared_storage_connected,
        cluster_node=host.cluster_node,
        state=host.state,
        vm_memory_mib=vm_memory_mib,
        reserved_memory_mib=reserved_memory_mib,
        active_migrations=active_migrations,
        max_simultaneous_migrations=(
            cluster.max_simultaneous_migrations if cluster else 2
        ),
    )


def disk_snapshot(disk: VirtualDisk) -> DiskSnapshot:
    csv = disk.csv if disk.csv_id else None
    return DiskSnapshot(
        name=disk.name,
        kind=disk.kind,
        csv=csv.name if csv else None,
        csv_cluster=csv.cluster.name if csv else None,
        path=disk.path,
    )


def vm_snapshot(
    vm: VirtualMachine,
    *,
    disks: Sequence[DiskSnapshot] | None = None,
    migration_active: bool = False,
) -> VMSnapshot:
    """``vm`` with its stored disks, or ``disks`` (the VM as a form would leave it)."""
    if disks is None:
        disks = (
            [disk_snapshot(d) for d in vm.disks.select_related("csv__cluster")]
            if vm.pk
            else []
        )
    return VMSnapshot(
        name=vm.name,
        host=vm.host.name,
        memory_mib=vm.memory_mib,
        power_state=vm.power_state,
        highly_available=vm.highly_available,
        automatic_start_action=vm.automatic_start_action,
        disks=tuple(disks),
        migration_active=migration_active,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PairResult:
    """The outcome for moving ``vm`` from its host to ``destination``."""

    vm: VirtualMachine
    source: Host
    destination: Host
    failures: tuple[Failure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.failures]

    def failure(self, code: str) -> Failure | None:
        return next((f for f in self.failures if f.code == code), None)


def disks_by_vm(vms: Iterable[VirtualMachine]) -> dict[int, list[DiskSnapshot]]:
    """Per VM id: its disks as the rules see them, in one query for all."""
    disks: dict[int, list[DiskSnapshot]] = {vm.pk: [] for vm in vms}
    for disk in VirtualDisk.objects.filter(vm__in=list(disks)).select_related(
        "csv__cluster"
    ):
        disks[disk.vm_id].append(disk_snapshot(disk))
    return disks


def readiness(vms: Iterable[VirtualMachine]) -> list[PairResult]:
    """Each VM against every other host of its cluster, in few queries.

    The seven configuration rules: what the readiness matrix and the admin
    show. The checks for starting a move now need the load of the moves under
    way: ``hvweb.moves.capacity.readiness`` adds them, for the same pairs.
    """
    vms = list(vms)
    cluster_ids = {vm.host.cluster_id for vm in vms}
    hosts_by_cluster: dict[int, list[Host]] = defaultdict(list)
    for host in (
        Host.objects.filter(cluster_id__in=cluster_ids)
        .select_related("cluster")
        .order_by("name")
    ):
        hosts_by_cluster[host.cluster_id].append(host)
    clusters = {
        c.pk: cluster_snapshot(c, hosts_by_cluster[c.pk])
        for c in Cluster.objects.filter(pk__in=cluster_ids)
    }
    host_snaps = {  # the seven rules do not look at a host's load
        h.pk: host_snapshot(h, vm_memory_mib=0)
        for hosts in hosts_by_cluster.values()
        for h in hosts
    }
    disks = disks_by_vm(vms)
    results = []
    for vm in vms:
        cluster_id = vm.host.cluster_id
        vm_snap = vm_snapshot(vm, disks=disks[vm.pk])
        for destination in hosts_by_cluster[cluster_id]:
            if destination.pk == vm.host_id:
                continue
            results.append(
                PairResult(
                    vm=vm,
                    source=vm.host,
                    destination=destination,
                    failures=rules.configuration_failures(
                        vm_snap,
                        host_snaps[vm.host_id],
                        host_snaps[destination.pk],
                        clusters[cluster_id],
                    ),
                )
            )
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    """A VM's readiness summary: hosts it may move to, out of its candidates."""

    ready_hosts: int
    candidates: int
    codes: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.ready_hosts > 0


def readiness_by_vm(vms: Iterable[VirtualMachine]) -> dict[int, Readiness]:
    """Per VM id: how many hosts of its cluster it may move to, and failing codes."""
    vms = list(vms)
    by_vm: dict[int, list[PairResult]] = {vm.pk: [] for vm in vms}
    for result in readiness(vms):
        by_vm[result.vm.pk].append(result)
    order = [r.code for r in rules.RULES]
    summary = {}
    for vm_id, results in by_vm.items():
        codes = {code for r in results for code in r.codes}
        summary[vm_id] = Readiness(
            ready_hosts=sum(r.ok for r in results),
            candidates=len(results),
            codes=tuple(sorted(codes, key=order.index)),
        )
    return summary
