"""Inventory rows as ``migrator.rules`` snapshots: the builders.

Model ``clean()`` methods (through ``hvweb.inventory.validation``), the admin,
the pages, the ``readiness`` command and the migration task build snapshots
with these functions and hand them to the rules; none of them looks at a
rule's fields by itself. This module imports no model (it reads the rows it is
given), so the models' validation can use it without an import cycle;
``hvweb.inventory.snapshots`` re-exports it beside the readiness queries.

The load figures the orchestration knows about (memory reserved by incoming
moves, live migrations under way, whether a VM is being moved) are arguments
with neutral defaults: the inventory alone does not know them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from migrator.rules import (
    MEMORY_HOLDING_STATES,
    ClusterSnapshot,
    DiskSnapshot,
    HostSnapshot,
    VMSnapshot,
)

if TYPE_CHECKING:
    from .models import Cluster, Host, VirtualDisk, VirtualMachine

__all__ = [
    "cluster_snapshot",
    "disk_snapshot",
    "disk_snapshot_of_row",
    "host_snapshot",
    "memory_held_mib",
    "vm_snapshot",
]


def memory_held_mib(vms: Iterable[VirtualMachine]) -> int:
    """Memory held by those of ``vms`` whose power state holds it (running, paused)."""
    return sum(vm.memory_mib for vm in vms if vm.power_state in MEMORY_HOLDING_STATES)


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
    return disk_snapshot_of_row(
        disk.name,
        disk.kind,
        csv.name if csv else None,
        csv.cluster.name if csv else None,
        disk.path,
    )


#: The columns :func:`disk_snapshot_of_row` takes, as ``values_list`` names
#: them from a VirtualDisk query: reading many disks this way builds no model
#: instances (a thousand disks with their CSV and its cluster are 3,000).
DISK_ROW = ("name", "kind", "csv__name", "csv__cluster__name", "path")


def disk_snapshot_of_row(
    name: str, kind: str, csv: str | None, csv_cluster: str | None, path: str
) -> DiskSnapshot:
    """:func:`disk_snapshot` of a disk read as the columns of :data:`DISK_ROW`."""
    return DiskSnapshot(
        name=name, kind=kind, csv=csv, csv_cluster=csv_cluster, path=path
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
