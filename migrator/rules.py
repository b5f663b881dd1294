"""The seed's live-migration prerequisites, written once as pure functions.

Every caller (the admin's validation and readiness column, the pages' readiness
matrix, the ``readiness`` command, the API and the migration task) hands this
module plain snapshots and gets back :class:`Failure` objects; none of them
re-implements a rule. Nothing here knows Django: ``hvweb.inventory.snapshots``
turns rows into the dataclasses below, whose attribute names are the model's
field names so that a failure's ``fields`` can key a form error.

Entry points:

* :func:`configuration_failures` – the seven rules of the seed for moving a VM
  from its host to a destination (the readiness matrix, the admin column);
* :func:`migration_failures` – those plus the operational checks (is the
  destination up, is there memory, ...), for starting a move now;
* :func:`ha_configuration_failures` – what blocks "Configure as highly
  available" for one VM;
* :func:`host_membership_failures` and :func:`csv_placement_failures` – the
  cluster-wide rules the admin applies when a host or a CSV is saved.

Each evaluation returns every failing rule, in the order of :data:`RULES` then
:data:`CHECKS`, never only the first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from migrator.hyperv import (
    FIRST_LIVE_MIGRATION_VERSION,
    VERSIONS,
    supports_live_migration,
)
from migrator.spec import PERFORMANCE_OPTIONS

__all__ = [
    "AUTOMATIC_START_ACTIONS",
    "CHECKS",
    "CPU_VENDORS",
    "CPU_VENDOR_NAMES",
    "CSV_STATES",
    "DISK_KINDS",
    "DRIVE_LETTERS",
    "HOST_STATES",
    "MEMORY_HOLDING_STATES",
    "PERFORMANCE_OPTIONS",
    "POWER_STATES",
    "RULES",
    "SAN_KINDS",
    "START_ACTION_NAMES",
    "STORAGE_KINDS",
    "WORKLOAD_PROFILES",
    "ClusterSnapshot",
    "DiskSnapshot",
    "Failure",
    "HostSnapshot",
    "Rule",
    "RuleInputError",
    "VMSnapshot",
    "configuration_failures",
    "csv_placement_failures",
    "ha_configuration_failures",
    "host_membership_failures",
    "migration_failures",
    "prevailing",
    "ready_counts",
]

# --- Vocabulary: the stored values hvweb's choices are built from ---------------------
# hvweb.inventory.choices adds a label and a colour to each value and refuses
# a value it has no label for, so a value is added here and nowhere else.

CPU_VENDORS: tuple[str, ...] = ("intel", "amd")
#: How a message (and hvweb's choices) names each CPU vendor.
CPU_VENDOR_NAMES: dict[str, str] = {"intel": "Intel", "amd": "AMD"}
HOST_STATES: tuple[str, ...] = ("up", "paused", "down")
POWER_STATES: tuple[str, ...] = ("running", "paused", "saved", "off")
#: Power states in which a VM holds its memory on its host.
MEMORY_HOLDING_STATES: tuple[str, ...] = ("running", "paused")
AUTOMATIC_START_ACTIONS: tuple[str, ...] = (
    "nothing",
    "start_if_running",
    "always_start",
)
#: How a message (and hvweb's choices) names each Automatic Start Action.
START_ACTION_NAMES: dict[str, str] = {
    "nothing": "Nothing",
    "start_if_running": "Start if it was running",
    "always_start": "Always start",
}
STORAGE_KINDS: tuple[str, ...] = ("fibre_channel", "iscsi", "none")
SAN_KINDS: tuple[str, ...] = ("fibre_channel", "iscsi")
#: A Cluster Shared Volume's state, as Get-ClusterSharedVolume reports it.
CSV_STATES: tuple[str, ...] = ("online", "redirected", "offline")
DISK_KINDS: tuple[str, ...] = ("vhd", "vhdx", "passthrough")
DRIVE_LETTERS: tuple[str, ...] = tuple("CDEFGHIJKLMNOPQRSTUVWXYZ")
# PERFORMANCE_OPTIONS (Get-VMHost's VirtualMachineMigrationPerformanceOption)
# is the engine's vocabulary: defined in migrator.spec, re-exported here.
#: The guest workloads a VM simulates (hvweb.moves.runner maps each to a
#: migrator.spec.WorkloadSpec).
WORKLOAD_PROFILES: tuple[str, ...] = ("idle", "web", "database", "memory_hammer")


class RuleInputError(ValueError):
    """A snapshot that cannot describe a real inventory (bad value, wrong pairing)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RuleInputError(message)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> None:
    _require(value in allowed, f"{what} {value!r} is not one of {', '.join(allowed)}")


# --- Snapshots -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSnapshot:
    """A failover cluster as the rules see it."""

    name: str
    shared_storage: bool
    storage_kind: str
    #: Names of the cluster's Cluster Shared Volumes.
    csvs: frozenset[str] = frozenset()
    #: Boot drive letter of every host of the cluster (one entry per host).
    boot_drives: tuple[str, ...] = ()
    #: CPU vendor of every host of the cluster (one entry per host).
    cpu_vendors: tuple[str, ...] = ()
    max_simultaneous_migrations: int = 2

    def __post_init__(self) -> None:
        _one_of(self.storage_kind, STORAGE_KINDS, "storage kind")
        for letter in self.boot_drives:
            _one_of(letter, DRIVE_LETTERS, "boot drive")
        for vendor in self.cpu_vendors:
            _one_of(vendor, CPU_VENDORS, "CPU vendor")
        _require(
            self.max_simultaneous_migrations >= 1,
            "max_simultaneous_migrations must be at least 1",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSnapshot:
    """A Hyper-V host, with the load the orchestration fills in."""

    name: str
    #: Name of the cluster the host is listed in; None for a standalone host.
    cluster: str | None
    hyperv_version: str
    cpu_vendor: str
    boot_drive: str
    memory_mib: int
    shared_storage_connected: bool = True
    #: Joined to the failover cluster as a node (Add-ClusterNode done).
    cluster_node: bool = True
    state: str = "up"
    #: Memory held by the VMs it runs now.
    vm_memory_mib: int = 0
    #: Memory set aside for moves on their way to this host.
    reserved_memory_mib: int = 0
    #: Live migrations this host takes part in now (as source or destination).
    active_migrations: int = 0
    #: The cluster's limit of simultaneous live migrations per host.
    max_simultaneous_migrations: int = 2

    def __post_init__(self) -> None:
        _one_of(self.hyperv_version, VERSIONS, "Hyper-V version")
        _one_of(self.cpu_vendor, CPU_VENDORS, "CPU vendor")
        _one_of(self.boot_drive, DRIVE_LETTERS, "boot drive")
        _one_of(self.state, HOST_STATES, "host state")
        _require(self.memory_mib > 0, "a host's memory must be more than 0 MiB")
        _require(
            min(self.vm_memory_mib, self.reserved_memory_mib, self.active_migrations)
            >= 0,
            "memory in use, reserved memory and active migrations cannot be negative",
        )
        _require(
            self.max_simultaneous_migrations >= 1,
            "max_simultaneous_migrations must be at least 1",
        )

    @property
    def free_memory_mib(self) -> int:
        """Memory not held by VMs nor reserved by incoming moves."""
        return self.memory_mib - self.vm_memory_mib - self.reserved_memory_mib


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskSnapshot:
    """A virtual hard disk or passthrough disk of a VM."""

    name: str
    kind: str
    #: Name of the CSV holding it; None when it is on the host's local storage.
    csv: str | None
    #: Name of the cluster that CSV belongs to (None on local storage).
    csv_cluster: str | None = None
    path: str = ""

    def __post_init__(self) -> None:
        _one_of(self.kind, DISK_KINDS, "disk kind")
        _require(
            (self.csv is None) == (self.csv_cluster is None),
            "a disk on a CSV names the CSV's cluster; one on local storage names none",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VMSnapshot:
    """A virtual machine on its current host."""

    name: str
    #: Name of the host that owns it now.
    host: str
    memory_mib: int
    power_state: str = "running"
    highly_available: bool = False
    automatic_start_action: str = "nothing"
    disks: tuple[DiskSnapshot, ...] = ()
    #: True while another move of this VM is queued or running.
    migration_active: bool = False

    def __post_init__(self) -> None:
        _one_of(self.power_state, POWER_STATES, "power state")
        _one_of(
            self.automatic_start_action,
            AUTOMATIC_START_ACTIONS,
            "Automatic Start Action",
        )
        _require(self.memory_mib > 0, "a VM's memory must be more than 0 MiB")


# --- Results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """One rule that does not hold, and how to make it hold."""

    code: str
    #: What is wrong and how the operator fixes it.
    message: str
    #: The seed sentence the rule enforces (empty for operational checks).
    seed: str
    #: Model fields involved, for field-keyed form errors.
    fields: tuple[str, ...]
    #: Names of the hosts or VMs at fault.
    subjects: tuple[str, ...] = ()
    #: True when waiting would clear it: the orchestrator may queue, not refuse.
    queueable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A row of the readiness matrix: a code, a title and the seed sentence."""

    code: str
    title: str
    seed: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pair:
    vm: VMSnapshot
    source: HostSnapshot
    destination: HostSnapshot
    cluster: ClusterSnapshot


_Check = Callable[[_Pair], Failure | None]

SEED_HYPERV_VERSION = (
    "Hyper-V 2008 R2 must be deployed on both hosts. The first version of Hyper-V "
    "does not support live migration."
)
SEED_FAILOVER_CLUSTER = (
    "Source and destination Hyper-V hosts must be configured as a Failover cluster "
    "with shared storage enabled."
)
SEED_SHARED_STORAGE = (
    "Source and destination systems must be using shared storage (i.e. via SAN or "
    "iSCSI configurations)"
)
SEED_CPU_VENDOR = (
    "Source and destination systems must be running processors from the same "
    "manufacturer. It is not, for example, possible to migrate a virtual machine "
    "from an Intel based host to one containing an AMD CPU."
)
SEED_HIGHLY_AVAILABLE = (
    "The virtual machine on which the migration is to be performed must be "
    "configured as ''Highly Available'' and to use Cluster Shared Volumes."
)
SEED_AUTO_START_ACTION = (
    "The virtual machine's ''Automatic Start Action'' setting must be set to do "
    "''Nothing''."
)
SEED_BOOT_DRIVE = (
    "All Hyper-V hosts in the Failover cluster must be configured to boot from the "
    "same drive letter. In other words, a host that boots from the C drive cannot "
    "perform a live migration to host that boots from the D drive."
)

#: The seven configuration rules, in the order of DESIGN's table.
RULES: tuple[Rule, ...] = (
    Rule(
        code="HYPERV_VERSION",
        title=f"Both hosts run Hyper-V {FIRST_LIVE_MIGRATION_VERSION} or later",
        seed=SEED_HYPERV_VERSION,
    ),
    Rule(
        code="FAILOVER_CLUSTER",
        title="Same failover cluster, shared storage enabled",
        seed=SEED_FAILOVER_CLUSTER,
    ),
    Rule(
        code="SHARED_STORAGE",
        title="Both hosts reach the cluster's shared storage",
        seed=SEED_SHARED_STORAGE,
    ),
    Rule(
        code="CPU_VENDOR",
        title="Processors from the same manufacturer",
        seed=SEED_CPU_VENDOR,
    ),
    Rule(
        code="HIGHLY_AVAILABLE",
        title="VM highly available, every disk on a CSV",
        seed=SEED_HIGHLY_AVAILABLE,
    ),
    Rule(
        code="AUTO_START_ACTION",
        title="Automatic Start Action is Nothing",
        seed=SEED_AUTO_START_ACTION,
    ),
    Rule(
        code="BOOT_DRIVE",
        title="Hosts boot from the cluster's drive letter",
        seed=SEED_BOOT_DRIVE,
    ),
)
_SEED = {rule.code: rule.seed for rule in RULES}


def _failure(
    code: str,
    messages: Iterable[str],
    fields: Iterable[str],
    subjects: Iterable[str] = (),
) -> Failure | None:
    messages = list(messages)
    if not messages:
        return None
    return Failure(
        code=code,
        message=" ".join(messages),
        seed=_SEED.get(code, ""),
        fields=tuple(dict.fromkeys(fields)),
        subjects=tuple(dict.fromkeys(subjects)),
    )


def prevailing(values: Iterable[str]) -> str | None:
    """The most common value; on a tie, the first in sort order (C before D)."""
    counts = Counter(values)
    if not counts:
        return None
    top = max(counts.values())
    return min(value for value, count in counts.items() if count == top)


def _hosts(pair: _Pair) -> tuple[HostSnapshot, HostSnapshot]:
    return pair.source, pair.destination


# --- The seven rules -----------------------------------------------------------------


def check_hyperv_version(pair: _Pair) -> Failure | None:
    """HYPERV_VERSION: both hosts run Hyper-V 2008 R2 or later."""
    late = [h for h in _hosts(pair) if not supports_live_migration(h.hyperv_version)]
    return _failure(
        "HYPERV_VERSION",
        (
            f"{h.name} runs Hyper-V {h.hyperv_version}, which cannot live-migrate: "
            f"upgrade it to Hyper-V {FIRST_LIVE_MIGRATION_VERSION} or later."
            for h in late
        ),
        ["hyperv_version"] if late else [],
        (h.name for h in late),
    )


def check_failover_cluster(pair: _Pair) -> Failure | None:
    """FAILOVER_CLUSTER: both hosts are nodes of one cluster with shared storage."""
    cluster = pair.cluster
    messages: list[str] = []
    fields: list[str] = []
    subjects: list[str] = []
    for host in _hosts(pair):
        if host.cluster != cluster.name:
            where = f"cluster {host.cluster}" if host.cluster else "no cluster"
            messages.append(
                f"{host.name} is in {where}, not {cluster.name}: live migration "
                f"moves a VM between nodes of one failover cluster; choose a host "
                f"of {cluster.name}."
            )
            fields.append("cluster")
            subjects.append(host.name)
        elif not host.cluster_node:
            messages.append(
                f"{host.name} is listed in {cluster.name} but is not joined as a "
                f"failover cluster node: add it to the cluster (Add-ClusterNode) "
                f"and mark it a cluster node."
            )
            fields.append("cluster_node")
            subjects.append(host.name)
    if not cluster.shared_storage:
        messages.append(
            f"Cluster {cluster.name} has shared storage disabled: enable shared "
            f"storage on the cluster."
        )
        fields.append("shared_storage")
        subjects.append(cluster.name)
    return _failure("FAILOVER_CLUSTER", messages, fields, subjects)


def check_shared_storage(pair: _Pair) -> Failure | None:
    """SHARED_STORAGE: both hosts reach the cluster's SAN (Fibre Channel or iSCSI)."""
    cluster = pair.cluster
    if cluster.storage_kind not in SAN_KINDS:
        return _failure(
            "SHARED_STORAGE",
            [
                f"Cluster {cluster.name} has no SAN: attach Fibre Channel or iSCSI "
                f"storage and set the cluster's storage kind."
            ],
            ["storage_kind"],
            [cluster.name],
        )
    cut_off = [h for h in _hosts(pair) if not h.shared_storage_connected]
    return _failure(
        "SHARED_STORAGE",
        (
            f"{h.name} cannot reach {cluster.name}'s shared storage: connect it to "
            f"the SAN and mark it connected."
            for h in cut_off
        ),
        ["shared_storage_connected"] if cut_off else [],
        (h.name for h in cut_off),
    )


def check_cpu_vendor(pair: _Pair) -> Failure | None:
    """CPU_VENDOR: source and destination processors come from one manufacturer."""
    source, destination = _hosts(pair)
    if source.cpu_vendor == destination.cpu_vendor:
        return None
    usual = prevailing(pair.cluster.cpu_vendors)
    odd = [h.name for h in _hosts(pair) if h.cpu_vendor != usual] or [destination.name]
    return _failure(
        "CPU_VENDOR",
        [
            f"{source.name} has an {CPU_VENDOR_NAMES[source.cpu_vendor]} processor and "
            f"{destination.name} an {CPU_VENDOR_NAMES[destination.cpu_vendor]} one: a "
            f"VM cannot live-migrate between manufacturers; choose a destination "
            f"with an {CPU_VENDOR_NAMES[source.cpu_vendor]} processor."
        ],
        ["cpu_vendor"],
        odd,
    )


def _disk_placement_messages(vm: VMSnapshot, cluster: ClusterSnapshot) -> list[str]:
    messages = []
    for disk in vm.disks:
        where = f" ({disk.path})" if disk.path else ""
        if disk.csv is None:
            messages.append(
                f"Disk {disk.name}{where} is on local storage: move it to a Cluster "
                f"Shared Volume of {cluster.name}."
            )
        elif disk.csv_cluster != cluster.name or disk.csv not in cluster.csvs:
            messages.append(
                f"Disk {disk.name}{where} is on CSV {disk.csv} of cluster "
                f"{disk.csv_cluster}, not of {cluster.name}: move it to a Cluster "
                f"Shared Volume of {cluster.name}."
            )
    return messages


def check_highly_available(pair: _Pair) -> Failure | None:
    """HIGHLY_AVAILABLE: the VM is highly available and every disk is on a CSV."""
    vm = pair.vm
    messages = []
    fields = []
    if not vm.highly_available:
        messages.append(
            f"{vm.name} is not highly available: configure it as highly available "
            f"(its disks on CSVs, Automatic Start Action Nothing)."
        )
        fields.append("highly_available")
    disk_messages = _disk_placement_messages(vm, pair.cluster)
    if disk_messages:
        messages.extend(disk_messages)
        fields.append("disks")
    return _failure("HIGHLY_AVAILABLE", messages, fields, [vm.name] if fields else [])


def _auto_start_message(vm: VMSnapshot) -> str:
    name = START_ACTION_NAMES[vm.automatic_start_action]
    return (
        f"{vm.name}'s Automatic Start Action is \u201c{name}\u201d: set it to "
        f"\u201cNothing\u201d (the cluster, not the host, starts a highly "
        f"available VM)."
    )


def check_auto_start_action(pair: _Pair) -> Failure | None:
    """AUTO_START_ACTION: the VM's Automatic Start Action is Nothing."""
    vm = pair.vm
    if vm.automatic_start_action == "nothing":
        return None
    return _failure(
        "AUTO_START_ACTION",
        [_auto_start_message(vm)],
        ["automatic_start_action"],
        [vm.name],
    )


def check_boot_drive(pair: _Pair) -> Failure | None:
    """BOOT_DRIVE: both hosts boot from the letter every host of the cluster uses.

    The seed's example is pair-wise (C cannot move to D); its rule is
    cluster-wide. Hosts booting from the cluster's prevailing letter may still
    move VMs between them; a host off that letter is the one at fault.
    """
    source, destination = _hosts(pair)
    usual = prevailing(pair.cluster.boot_drives) or source.boot_drive
    odd = [h for h in _hosts(pair) if h.boot_drive != usual]
    if not odd:
        if source.boot_drive == destination.boot_drive:
            return None
        odd = [destination]
    return _failure(
        "BOOT_DRIVE",
        (
            f"{h.name} boots from {h.boot_drive}: but the other hosts of "
            f"{pair.cluster.name} boot from {usual}:. Set it to boot from "
            f"{usual}: (reinstall it) or move it out of the cluster."
            for h in odd
        ),
        ["boot_drive"],
        (h.name for h in odd),
    )


_RULE_CHECKS: tuple[_Check, ...] = (
    check_hyperv_version,
    check_failover_cluster,
    check_shared_storage,
    check_cpu_vendor,
    check_highly_available,
    check_auto_start_action,
    check_boot_drive,
)
#: The rules that read the two hosts and the cluster only (not the VM), and
#: those that read the VM and the cluster only (not the hosts): between them,
#: every rule of _RULE_CHECKS once. ready_counts asks the first kind once per
#: pair of hosts and the second once per VM.
_HOST_RULE_CHECKS: tuple[_Check, ...] = (
    check_hyperv_version,
    check_failover_cluster,
    check_shared_storage,
    check_cpu_vendor,
    check_boot_drive,
)
_VM_RULE_CHECKS: tuple[_Check, ...] = (check_highly_available, check_auto_start_action)

# --- Operational checks --------------------------------------------------------------

#: Codes of the operational checks, in evaluation order.
CHECKS: tuple[str, ...] = (
    "SAME_HOST",
    "SOURCE_DOWN",
    "DESTINATION_DOWN",
    "DESTINATION_PAUSED",
    "VM_NOT_RUNNING",
    "INSUFFICIENT_MEMORY",
    "MIGRATION_ACTIVE",
    "HOST_MIGRATION_LIMIT",
)


def _check(
    code: str,
    message: str,
    fields: tuple[str, ...],
    subjects: tuple[str, ...],
    queueable: bool = False,
) -> Failure:
    return Failure(
        code=code,
        message=message,
        seed="",
        fields=fields,
        subjects=subjects,
        queueable=queueable,
    )


# What each operational check decides by, one predicate each: both
# _operational_failures (which words the failure) and ready_counts (which
# counts without wording) ask these.


def _source_down(source: HostSnapshot) -> bool:
    """SOURCE_DOWN."""
    return source.state == "down"


def _takes_no_vms(destination: HostSnapshot) -> bool:
    """DESTINATION_DOWN or DESTINATION_PAUSED."""
    return destination.state in ("down", "paused")


def _not_running(vm: VMSnapshot, quick: bool) -> bool:
    """VM_NOT_RUNNING: a quick migration saves the VM first, so one that is
    off or saved moves too."""
    return vm.power_state != "running" and not quick


def _fits(vm: VMSnapshot, destination: HostSnapshot) -> bool:
    """Not INSUFFICIENT_MEMORY (between two different hosts)."""
    return destination.free_memory_mib >= vm.memory_mib


def _busy(host: HostSnapshot) -> bool:
    """HOST_MIGRATION_LIMIT, for one of the two hosts."""
    return host.active_migrations >= host.max_simultaneous_migrations


def _operational_failures(pair: _Pair, *, quick: bool = False) -> list[Failure]:
    vm, source, destination = pair.vm, pair.source, pair.destination
    found: list[Failure] = []
    if destination.name == source.name:
        found.append(
            _check(
                "SAME_HOST",
                f"{vm.name} already runs on {source.name}: choose another host.",
                ("host",),
                (destination.name,),
            )
        )
    if _source_down(source):
        # A down host runs nothing: its VMs are for the cluster to fail over,
        # not to live-migrate (a drain refuses a down host for the same reason).
        found.append(
            _check(
                "SOURCE_DOWN",
                f"{source.name} is down, so {vm.name} does not run there and "
                f"cannot be live-migrated: bring {source.name} back up first.",
                ("state",),
                (source.name,),
            )
        )
    if _takes_no_vms(destination) and destination.state == "down":
        found.append(
            _check(
                "DESTINATION_DOWN",
                f"{destination.name} is down: bring it back up or choose another host.",
                ("state",),
                (destination.name,),
            )
        )
    elif _takes_no_vms(destination):  # paused
        found.append(
            _check(
                "DESTINATION_PAUSED",
                f"{destination.name} is paused (drained) and takes no VMs: resume "
                f"it or choose another host.",
                ("state",),
                (destination.name,),
            )
        )
    if _not_running(vm, quick):
        found.append(
            _check(
                "VM_NOT_RUNNING",
                f"{vm.name} is {vm.power_state}, and only a running VM "
                f"live-migrates: start it first.",
                ("power_state",),
                (vm.name,),
            )
        )
    free = destination.free_memory_mib
    if destination.name != source.name and not _fits(vm, destination):
        found.append(
            _check(
                "INSUFFICIENT_MEMORY",
                f"{destination.name} has {max(free, 0)} MiB free and {vm.name} "
                f"needs {vm.memory_mib} MiB: free memory there or choose another "
                f"host.",
                ("memory_mib",),
                (destination.name,),
            )
        )
    if vm.migration_active:
        found.append(
            _check(
                "MIGRATION_ACTIVE",
                f"{vm.name} is already being moved: wait for that move to finish "
                f"or cancel it.",
                ("migration_active",),
                (vm.name,),
            )
        )
    busy = [h for h in dict.fromkeys(_hosts(pair)) if _busy(h)]
    if busy:
        found.append(
            _check(
                "HOST_MIGRATION_LIMIT",
                " ".join(
                    f"{h.name} already takes part in {h.active_migrations} live "
                    f"migrations, the cluster's limit of "
                    f"{h.max_simultaneous_migrations}: the move waits for one to end."
                    for h in busy
                ),
                ("max_simultaneous_migrations",),
                tuple(h.name for h in busy),
                queueable=True,
            )
        )
    return found


# --- Entry points --------------------------------------------------------------------


def _pair(
    vm: VMSnapshot,
    source: HostSnapshot,
    destination: HostSnapshot,
    cluster: ClusterSnapshot,
) -> _Pair:
    if vm.host != source.name:
        raise RuleInputError(
            f"{vm.name} runs on {vm.host}, not on the source given ({source.name})"
        )
    if source.cluster != cluster.name:
        raise RuleInputError(
            f"the cluster given ({cluster.name}) is not {source.name}'s "
            f"({source.cluster})"
        )
    return _Pair(vm=vm, source=source, destination=destination, cluster=cluster)


def configuration_failures(
    vm: VMSnapshot,
    source: HostSnapshot,
    destination: HostSnapshot,
    cluster: ClusterSnapshot,
) -> tuple[Failure, ...]:
    """Each of the seed's seven rules that forbids moving ``vm`` to ``destination``.

    ``source`` is the VM's current host and ``cluster`` the source's cluster.
    """
    pair = _pair(vm, source, destination, cluster)
    return tuple(f for check in _RULE_CHECKS if (f := check(pair)) is not None)


def migration_failures(
    vm: VMSnapshot,
    source: HostSnapshot,
    destination: HostSnapshot,
    cluster: ClusterSnapshot,
    *,
    quick: bool = False,
) -> tuple[Failure, ...]:
    """The seven rules and the operational checks, for starting the move now.

    Failures with ``queueable`` set (the per-host migration limit) clear by
    themselves when other moves end; a caller may queue the move instead of
    refusing it. ``quick``: the move is a quick migration (save, move,
    resume), which moves a VM that is off or saved as well.
    """
    pair = _pair(vm, source, destination, cluster)
    rules = tuple(f for check in _RULE_CHECKS if (f := check(pair)) is not None)
    return rules + tuple(_operational_failures(pair, quick=quick))


def _host_configuration(host: HostSnapshot) -> tuple[object, ...]:
    """What the host rules may decide by: every field of ``host`` but its
    name and its load (they name the host in their messages only)."""
    return (
        host.cluster,
        host.hyperv_version,
        host.cpu_vendor,
        host.boot_drive,
        host.memory_mib,
        host.shared_storage_connected,
        host.cluster_node,
        host.state,
        host.max_simultaneous_migrations,
    )


def ready_counts(
    vms: Iterable[VMSnapshot],
    hosts: Sequence[HostSnapshot],
    cluster: ClusterSnapshot,
) -> dict[str, int]:
    """Per host of ``hosts`` (by name): how many of ``vms``, each on another of
    ``hosts``, :func:`migration_failures` finds nothing against moving there
    now (by live migration).

    The same counts as calling :func:`migration_failures` for every pair
    (``migrator/tests/test_rules.py`` compares them on random clusters), which
    for 64 hosts and 1,000 VMs is 63,000 calls; here each check is asked at the
    level of what it reads: the VM's own rules and checks once per VM, the host
    rules once per pair of host configurations, the hosts' states and limits
    once per host, and memory by a search in each source's sorted VM sizes.
    ``cluster`` is the hosts' cluster.
    """
    by_name = {h.name: h for h in hosts}
    movable: dict[str, list[int]] = {h.name: [] for h in hosts}
    for vm in vms:
        if vm.host not in by_name:
            raise RuleInputError(f"{vm.name} runs on {vm.host}, not one of the hosts")
        source = by_name[vm.host]
        pair = _pair(vm, source, source, cluster)
        if vm.migration_active or _not_running(vm, False):
            continue  # MIGRATION_ACTIVE, VM_NOT_RUNNING
        if any(check(pair) is not None for check in _VM_RULE_CHECKS):
            continue
        movable[source.name].append(vm.memory_mib)
    # Sources that can give: VMs to move, up, below their limit.
    givers = [
        (source, sorted(movable[source.name]))
        for source in hosts
        if movable[source.name] and not _source_down(source) and not _busy(source)
    ]
    kinds: dict[tuple[object, ...], int] = {}  # each host configuration, numbered
    configuration = {
        h.name: kinds.setdefault(_host_configuration(h), len(kinds)) for h in hosts
    }
    host_rules_pass: dict[tuple[int, int], bool] = {}
    counts = {}
    for destination in hosts:
        count = 0
        if not _takes_no_vms(destination) and not _busy(destination):
            free = destination.free_memory_mib
            for source, sizes in givers:
                if source.name == destination.name:  # SAME_HOST
                    continue
                key = (configuration[source.name], configuration[destination.name])
                if key not in host_rules_pass:
                    pair = _Pair(
                        vm=None,  # type: ignore[arg-type]  # the host rules read no VM
                        source=source,
                        destination=destination,
                        cluster=cluster,
                    )
                    host_rules_pass[key] = all(
                        check(pair) is None for check in _HOST_RULE_CHECKS
                    )
                if host_rules_pass[key]:
                    # INSUFFICIENT_MEMORY: those that fit in what is free there.
                    count += bisect_right(sizes, free)
        counts[destination.name] = count
    return counts


def ha_configuration_failures(
    vm: VMSnapshot, cluster: ClusterSnapshot
) -> tuple[Failure, ...]:
    """What blocks configuring ``vm`` (on a host of ``cluster``) as highly available.

    The seed's last heading: a VM becomes highly available once its cluster has
    shared storage, its disks sit on the cluster's CSVs and its Automatic Start
    Action is Nothing.
    """
    found: list[Failure | None] = []
    if not cluster.shared_storage:
        found.append(
            _failure(
                "FAILOVER_CLUSTER",
                [
                    f"Cluster {cluster.name} has shared storage disabled: enable "
                    f"shared storage on the cluster first."
                ],
                ["shared_storage"],
                [cluster.name],
            )
        )
    found.append(
        _failure(
            "HIGHLY_AVAILABLE",
            _disk_placement_messages(vm, cluster),
            ["disks"],
            [vm.name],
        )
    )
    if vm.automatic_start_action != "nothing":
        found.append(
            _failure(
                "AUTO_START_ACTION",
                [_auto_start_message(vm)],
                ["automatic_start_action"],
                [vm.name],
            )
        )
    return tuple(f for f in found if f is not None)


def host_membership_failures(
    host: HostSnapshot, others: Iterable[HostSnapshot], cluster: ClusterSnapshot
) -> tuple[Failure, ...]:
    """Cluster-wide rules that forbid ``host`` being a host of ``cluster``.

    ``others`` are the cluster's other hosts. BOOT_DRIVE: every host of the
    cluster boots from the same drive letter, so a host must boot from the
    letter its peers use (the prevailing one, should they already differ: a
    host that agrees with most of them does not make the cluster worse).
    """
    letters = [h.boot_drive for h in others if h.name != host.name]
    usual = prevailing(letters)
    if usual is None or host.boot_drive == usual:
        return ()
    peers = "the other hosts" if len(set(letters)) == 1 else "most hosts"
    failure = _failure(
        "BOOT_DRIVE",
        [
            f"{host.name} boots from {host.boot_drive}: but {peers} of "
            f"{cluster.name} boot from {usual}:. Set its boot drive to {usual}: "
            f"(reinstall it to boot from there) or choose another cluster."
        ],
        ["boot_drive"],
        [host.name],
    )
    return (failure,) if failure else ()


def csv_placement_failures(cluster: ClusterSnapshot) -> tuple[Failure, ...]:
    """Whether ``cluster`` can hold Cluster Shared Volumes at all (SHARED_STORAGE)."""
    if cluster.shared_storage and cluster.storage_kind in SAN_KINDS:
        return ()
    failure = _failure(
        "SHARED_STORAGE",
        [
            f"Cluster {cluster.name} has no shared storage: a Cluster Shared Volume "
            f"lives on the cluster's SAN; enable shared storage (Fibre Channel or "
            f"iSCSI) on the cluster first."
        ],
        ["cluster"],
        [cluster.name],
    )
    return (failure,) if failure else ()
