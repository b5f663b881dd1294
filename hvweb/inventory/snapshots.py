"""The one place that turns inventory rows into ``migrator.rules`` snapshots.

The builders (``cluster_snapshot``, ``host_snapshot``, ...) live in
``hvweb.inventory.rowsnapshots``, which imports no model, so that the models'
validation can use them; they are re-exported here beside the readiness
queries, which read many rows at once. Callers import them from here.

The load figures the orchestration knows about (memory reserved by incoming
moves, live migrations under way, whether a VM is being moved) have one home,
``hvweb.moves.capacity``, which fills them in for every check of a move now
(its ``readiness`` is the operational form of :func:`readiness` here).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from migrator import rules
from migrator.rules import DiskSnapshot, Failure

from .models import Cluster, Host, VirtualDisk, VirtualMachine
from .rowsnapshots import (
    DISK_ROW,
    cluster_snapshot,
    disk_snapshot,
    disk_snapshot_of_row,
    host_snapshot,
    vm_snapshot,
)

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


def disks_by_vm(
    vms: Iterable[VirtualMachine], *, cluster: Cluster | None = None
) -> dict[int, list[DiskSnapshot]]:
    """Per VM id: its disks as the rules see them, in one query for all.

    ``cluster``: ``vms`` are VMs of that cluster (all of them, or most): the
    disks are then asked for by cluster, not by a list of a thousand ids,
    whose parameters cost more than the rows.
    """
    disks: dict[int, list[DiskSnapshot]] = {vm.pk: [] for vm in vms}
    if cluster is not None:
        found = VirtualDisk.objects.filter(vm__host__cluster=cluster)
    else:
        found = VirtualDisk.objects.filter(vm__in=list(disks))
    for vm_id, *row in found.values_list("vm_id", *DISK_ROW):
        if vm_id in disks:
            disks[vm_id].append(disk_snapshot_of_row(*row))
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
