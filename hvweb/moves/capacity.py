"""What each host of a cluster carries now: the one home of a host's load.

Every reader of the load goes through :class:`ClusterCapacity`: the destination
evaluations (:func:`hvweb.moves.services.evaluate_destinations`, the VM page's
ranking, a drain), admission and the dispatcher (:mod:`hvweb.moves.lifecycle`),
the worker's re-check before it runs a move, ``readiness --now`` and the API's
``?operational=true`` (:func:`readiness`), the clusters overview, the host page
and the ``/ws/clusters/<id>/`` snapshot. A host's load is three figures
(:class:`HostLoad`), one rule each:

* ``used_mib``: memory held by the VMs whose row names the host, running or
  paused (:func:`hvweb.inventory.rowsnapshots.memory_held_mib`);
* ``reserved_mib``: memory set aside on the host by active moves coming to it
  that have not switched over yet (:func:`reserves_memory`). From the "online"
  stage on, the VM's row names the destination, so its memory is already in
  ``used_mib`` there: the reservation is not counted a second time;
* ``running``: running moves the host takes part in, as source or destination
  (:func:`holds_slots`), against the cluster's limit of simultaneous live
  migrations. A queued move holds no slot; a running one holds its two until
  it ends, switched over or not.

A capacity is read from the database once (a few queries, however many hosts,
VMs and moves) and then kept up to date in memory by whoever changes moves
while holding it: :meth:`ClusterCapacity.release` takes a move's share out,
:meth:`ClusterCapacity.track` puts back what it holds now.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from django.db.models import Q, Sum

from hvweb.inventory import snapshots
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from hvweb.inventory.rowsnapshots import memory_held_mib
from hvweb.inventory.snapshots import PairResult
from migrator import rules
from migrator.rules import ClusterSnapshot, DiskSnapshot, Failure, HostSnapshot

from .choices import MigrationState
from .models import Migration

__all__ = [
    "ClusterCapacity",
    "Destination",
    "HostLoad",
    "Intake",
    "common_failures",
    "failures_now",
    "for_vm",
    "host_memory",
    "holds_slots",
    "intake",
    "load",
    "load_many",
    "readiness",
    "reserves_memory",
]


#: :func:`reserves_memory` as a query.
RESERVES_MEMORY = Q(state__in=MigrationState.active(), switched_over=False)


def reserves_memory(migration: Migration) -> bool:
    """The move sets its VM's memory aside on its destination now.

    From request (queued or running) until the VM switches over; after that
    the VM itself holds the memory on the destination.
    """
    return migration.state in MigrationState.active() and not migration.switched_over


def holds_slots(migration: Migration) -> bool:
    """The move counts against the simultaneous-migration limit of both its hosts."""
    return migration.state == MigrationState.RUNNING


@dataclass(slots=True)
class HostLoad:
    """What one host carries now (see the module's rules)."""

    used_mib: int = 0
    reserved_mib: int = 0
    running: int = 0


@dataclass(frozen=True, slots=True)
class _Share:
    """What one active move adds to the load: its memory and its slots."""

    vm_id: int
    source_id: int
    destination_id: int
    reserved_mib: int
    slots: bool

    @classmethod
    def of(cls, migration: Migration) -> _Share | None:
        if not migration.active:
            return None
        return cls(
            vm_id=migration.vm_id,
            source_id=migration.source_id,
            destination_id=migration.destination_id,
            reserved_mib=(
                migration.reserved_memory_mib if reserves_memory(migration) else 0
            ),
            slots=holds_slots(migration),
        )


def _status(failures: Iterable[Failure]) -> str:
    failures = list(failures)
    if not failures:
        return "ready"
    return "queues" if all(f.queueable for f in failures) else "blocked"


@dataclass(frozen=True, slots=True)
class Destination:
    """A host the VM could move to now, with what stands in the way.

    ``shared`` are the failures every destination of the VM has alike (see
    :func:`common_failures`): the VM's own or its source's, not this host's.
    """

    host: Host
    free_mib: int
    failures: tuple[Failure, ...]
    shared: tuple[Failure, ...] = ()

    @property
    def status(self) -> str:
        return _status(self.failures)

    @property
    def selectable(self) -> bool:
        return self.status != "blocked"

    @property
    def own_failures(self) -> tuple[Failure, ...]:
        """The failures that are this host's, without the ``shared`` ones."""
        return tuple(f for f in self.failures if f not in self.shared)

    @property
    def own_status(self) -> str:
        """:attr:`status` by this host's own failures: how fit the host is."""
        return _status(self.own_failures)


def common_failures(failure_sets: Iterable[Sequence[Failure]]) -> tuple[Failure, ...]:
    """The failures found alike (same rule, same message) in every one of
    ``failure_sets``, in the first set's order.

    For one VM against each host of its cluster these are the rules the VM or
    its source fails whatever the destination (``lab-local-disk`` is not highly
    available): a page says them once, not once per host. No rule is added or
    read here; this only compares what the rules said. With fewer than two
    sets nothing is shared: one host's failure may well be that host's own.
    """
    sets = [tuple(found) for found in failure_sets]
    if len(sets) < 2:
        return ()
    return tuple(f for f in sets[0] if all(f in other for other in sets[1:]))


class ClusterCapacity:
    """A cluster's hosts, each with its load, and the moves under way there.

    Build it with :func:`load`, :func:`load_many` or :func:`for_vm`. ``hosts``
    are ordered by name, each with its VMs prefetched; ``moves`` are the
    active moves that touch them as loaded (newest first, with their VM and
    hosts), for the pages; ``loads`` are kept current by :meth:`release` and
    :meth:`track`. A ``partial`` capacity holds some of the cluster's hosts
    only: their loads are as exact (a host's load depends on its own VMs and
    the moves that touch it), and the rules still see the whole cluster.
    """

    def __init__(
        self,
        cluster: Cluster,
        hosts: Iterable[Host],
        moves: Iterable[Migration],
        *,
        partial: bool = False,
        used_mib: dict[int, int] | None = None,
    ) -> None:
        self.cluster = cluster
        self.partial = partial
        self.hosts: dict[int, Host] = {h.pk: h for h in hosts}
        self.moves: list[Migration] = list(moves)
        if used_mib is None:  # from each host's prefetched VMs
            used_mib = {
                pk: memory_held_mib(h.virtual_machines.all())
                for pk, h in self.hosts.items()
            }
        self.loads: dict[int, HostLoad] = {
            pk: HostLoad(used_mib=used_mib.get(pk, 0)) for pk in self.hosts
        }
        self._shares: dict[int, _Share] = {}
        self._moving = Counter[int]()
        for migration in self.moves:
            self.track(migration)

    # -- keeping it current --------------------------------------------------------

    def track(self, migration: Migration) -> None:
        """Count ``migration`` as it stands now (nothing once it has ended)."""
        self.release(migration)
        share = _Share.of(migration)
        if share is not None:
            self._shares[migration.pk] = share
            self._apply(share, +1)

    def release(self, migration: Migration) -> None:
        """Leave ``migration`` out of the load (its memory, its slots, its VM)."""
        share = self._shares.pop(migration.pk, None)
        if share is not None:
            self._apply(share, -1)

    def _apply(self, share: _Share, sign: int) -> None:
        self._moving[share.vm_id] += sign
        if share.destination_id in self.loads:
            self.loads[share.destination_id].reserved_mib += sign * share.reserved_mib
        if share.slots:
            for pk in (share.source_id, share.destination_id):
                if pk in self.loads:
                    self.loads[pk].running += sign

    # -- reading it ----------------------------------------------------------------

    def moving(self, vm_id: int) -> bool:
        """An active move of this VM is counted here."""
        return self._moving[vm_id] > 0

    @cached_property
    def rules_cluster(self) -> ClusterSnapshot:
        """The cluster as the rules see it (its CSVs, boot drives, CPU vendors)."""
        every = None if self.partial else self.hosts.values()  # None: read them
        return snapshots.cluster_snapshot(self.cluster, every)

    def host_snapshot(self, host: Host) -> HostSnapshot:
        """``host`` as the rules see it, with its load now.

        A host of another cluster (a destination no rule lets a VM of this
        cluster reach) is read with its own cluster's load.
        """
        if host.pk not in self.loads:
            return load(host.cluster, only=[host.pk]).host_snapshot(host)
        found = self.loads[host.pk]
        return snapshots.host_snapshot(
            self.hosts[host.pk],
            vm_memory_mib=found.used_mib,
            reserved_memory_mib=found.reserved_mib,
            active_migrations=found.running,
        )

    def failures(
        self,
        vm: VirtualMachine,
        destination: Host,
        *,
        disks: Sequence[DiskSnapshot] | None = None,
        quick: bool = False,
    ) -> tuple[Failure, ...]:
        """Every rule and operational check failing for moving ``vm`` now.

        ``vm`` runs on a host of this cluster; ``disks`` (default: read
        from the database) lets a caller pass them already loaded; ``quick``:
        by quick migration (which moves a VM that is not running, too).
        """
        (found,) = self.evaluate(vm, [destination], disks=disks, quick=quick)
        return found.failures

    def evaluate(
        self,
        vm: VirtualMachine,
        destinations: Iterable[Host],
        *,
        disks: Sequence[DiskSnapshot] | None = None,
        quick: bool = False,
    ) -> list[Destination]:
        """Each of ``destinations`` for ``vm`` now: free memory and failures
        (``quick``: of a quick migration)."""
        vm_snap = snapshots.vm_snapshot(
            vm, disks=disks, migration_active=self.moving(vm.pk)
        )
        source = self.host_snapshot(self.hosts[vm.host_id])
        found = []
        for host in destinations:
            target = self.host_snapshot(host)
            found.append(
                Destination(
                    host=host,
                    free_mib=target.free_memory_mib,
                    failures=rules.migration_failures(
                        vm_snap, source, target, self.rules_cluster, quick=quick
                    ),
                )
            )
        return found

    def ranked(
        self,
        vm: VirtualMachine,
        *,
        quick: bool = False,
        disks: Sequence[DiskSnapshot] | None = None,
    ) -> list[Destination]:
        """Every other host of the cluster for ``vm``: ready first, then those
        where the move would wait in the queue, then blocked ones; each by
        free memory (``quick``: for a quick migration; ``disks``: the VM's,
        already loaded).

        Failures every host shares (the VM's own) are set apart in each
        destination's ``shared`` and do not rank: among hosts that all refuse
        a VM that is not highly available, the hosts that would take it once
        it is come first.
        """
        others = [h for h in self.hosts.values() if h.pk != vm.host_id]
        found = self.evaluate(vm, others, quick=quick, disks=disks)
        shared = common_failures(d.failures for d in found)
        order = {"ready": 0, "queues": 1, "blocked": 2}
        return sorted(
            (replace(d, shared=shared) for d in found),
            key=lambda d: (
                order[d.status],
                order[d.own_status],
                -d.free_mib,
                d.host.name,
            ),
        )


def _hosts_query():
    return Host.objects.select_related("cluster").prefetch_related("virtual_machines")


def _active_moves(host_ids: Iterable[int]):
    ids = list(host_ids)
    return (
        Migration.objects.filter(state__in=MigrationState.active())
        .filter(Q(source_id__in=ids) | Q(destination_id__in=ids))
        .select_related("vm", "source", "destination")
    )


def load_many(
    clusters: Iterable[Cluster],
    *,
    only: Iterable[int] | None = None,
    vms: bool = True,
) -> dict[int, ClusterCapacity]:
    """Per cluster id: its capacity, read in three queries for all of them.

    ``only`` (host ids) makes them partial: those hosts alone are read.
    ``vms=False``: the hosts come without their VMs (for a caller that only
    evaluates moves), the memory they hold summed by the database
    (:func:`host_memory`'s query) instead of read VM by VM: a thousand VMs
    are a thousand rows to build otherwise.
    """
    clusters = {c.pk: c for c in clusters}
    found = _hosts_query() if vms else Host.objects.select_related("cluster")
    found = found.filter(cluster_id__in=clusters)
    if only is not None:
        found = found.filter(pk__in=list(only))
    hosts: dict[int, list[Host]] = defaultdict(list)
    cluster_of: dict[int, int] = {}
    for host in found.order_by("name"):
        hosts[host.cluster_id].append(host)
        cluster_of[host.pk] = host.cluster_id
    moves: dict[int, list[Migration]] = defaultdict(list)
    for move in _active_moves(cluster_of):
        # A move's hosts share its cluster; one host is enough to place it.
        owner = cluster_of.get(move.source_id, cluster_of.get(move.destination_id))
        moves[owner].append(move)
    used = None if vms else _memory_held(cluster_of)
    return {
        pk: ClusterCapacity(
            c, hosts[pk], moves[pk], partial=only is not None, used_mib=used
        )
        for pk, c in clusters.items()
    }


def load(
    cluster: Cluster,
    *,
    only: Iterable[int] | None = None,
    exclude: Migration | None = None,
    vms: bool = True,
) -> ClusterCapacity:
    """The capacity of ``cluster`` now (of its hosts ``only``, if given);
    ``exclude`` leaves one move out of it; ``vms``: see :func:`load_many`."""
    (found,) = load_many([cluster], only=only, vms=vms).values()
    if exclude is not None:
        found.release(exclude)
    return found


def _memory_held(host_ids: Iterable[int]) -> dict[int, int]:
    """Per host id: memory held by its running and paused VMs, summed by the
    database (``holding_memory`` is :func:`memory_held_mib`'s query)."""
    return dict(
        VirtualMachine.objects.holding_memory()
        .filter(host_id__in=list(host_ids))
        .values_list("host")
        .annotate(mib=Sum("memory_mib"))
        .order_by()
    )


def host_memory(host_ids: Iterable[int]) -> dict[int, HostLoad]:
    """Per host id: memory used and reserved now (the frames' ``hosts``).

    The same rules as :class:`ClusterCapacity`, asked of the database in two
    summing queries, since a frame is built for every event of a move.
    """
    ids = list(host_ids)
    used = dict(
        VirtualMachine.objects.holding_memory()
        .filter(host_id__in=ids)
        .values_list("host")
        .annotate(mib=Sum("memory_mib"))
    )
    reserved = dict(
        Migration.objects.filter(RESERVES_MEMORY, destination_id__in=ids)
        .values_list("destination")
        .annotate(mib=Sum("reserved_memory_mib"))
    )
    return {
        pk: HostLoad(used_mib=used.get(pk, 0), reserved_mib=reserved.get(pk, 0))
        for pk in ids
    }


def for_vm(
    vm: VirtualMachine,
    destinations: Iterable[Host] | None = None,
    *,
    exclude: Migration | None = None,
) -> ClusterCapacity:
    """The capacity of the cluster ``vm`` runs in: of its host and
    ``destinations`` when given, else of every host; for evaluating moves
    (its hosts come without their VMs: see :func:`load_many`)."""
    only = None if destinations is None else [vm.host_id, *(h.pk for h in destinations)]
    return load(vm.host.cluster, only=only, exclude=exclude, vms=False)


def failures_now(
    vm: VirtualMachine,
    destination: Host,
    *,
    exclude: Migration | None = None,
    quick: bool = False,
) -> tuple[Failure, ...]:
    """Every rule and operational check failing for moving ``vm`` to
    ``destination`` now, with the load of its two hosts; ``exclude`` leaves
    one move out (the move that is being decided); ``quick``: by quick
    migration."""
    return for_vm(vm, [destination], exclude=exclude).failures(
        vm, destination, quick=quick
    )


def readiness(vms: Iterable[VirtualMachine]) -> list[PairResult]:
    """Each VM against every other host of its cluster, for starting a move now.

    The operational form of :func:`hvweb.inventory.snapshots.readiness` (same
    pairs, same order), with each cluster's load: what ``readiness --now``
    prints. The API's ``?operational=true`` evaluates the same way
    (:meth:`ClusterCapacity.evaluate`, through ``evaluate_destinations``).
    """
    vms = list(vms)
    capacities = load_many({vm.host.cluster_id: vm.host.cluster for vm in vms}.values())
    disks = snapshots.disks_by_vm(vms)
    results = []
    for vm in vms:
        cluster = capacities[vm.host.cluster_id]
        others = [h for h in cluster.hosts.values() if h.pk != vm.host_id]
        results += [
            PairResult(vm=vm, source=vm.host, destination=d.host, failures=d.failures)
            for d in cluster.evaluate(vm, others, disks=disks[vm.pk])
        ]
    return results


@dataclass(frozen=True, slots=True)
class Intake:
    """Whether a host can take VMs now, by :func:`readiness`'s answers.

    ``takes``: how many of the VMs elsewhere in its cluster may move to it now
    (of ``asked``); when none may, ``stops`` are the failures that name the
    host itself (its rule, its state, its memory), else every failure found.
    """

    takes: int
    asked: int
    stops: tuple[Failure, ...]

    @property
    def can_take(self) -> bool:
        return self.takes > 0

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(f.code for f in self.stops))


def _stops(name: str, failures: Iterable[Failure]) -> tuple[Failure, ...]:
    """Why host ``name`` takes none of the VMs asked about: the failures that
    name it, else every one found (``failures``: of every pair, in order)."""
    every = list(failures)
    own = [f for f in every if name in f.subjects]
    return tuple(dict.fromkeys(own or every))


def intake(capacity: ClusterCapacity) -> dict[int, Intake]:
    """Per host id of ``capacity`` (not partial): its :class:`Intake`, every VM
    of the cluster on another host asked, as :func:`readiness` would ask them.
    A host no VM could be asked about (every VM of the cluster is on it) has
    none.

    The counts come from :func:`migrator.rules.ready_counts` (the same answer
    as each pair's failures, without evaluating 63,000 pairs for 64 hosts and
    1,000 VMs); only a host that takes none has its pairs evaluated, for the
    failures that say why.
    """
    assert not capacity.partial, "intake asks every host of the cluster"
    vms = sorted(
        (vm for host in capacity.hosts.values() for vm in host.virtual_machines.all()),
        key=lambda vm: vm.name,
    )
    disks = snapshots.disks_by_vm(vms, cluster=capacity.cluster)
    hosts = {pk: capacity.host_snapshot(host) for pk, host in capacity.hosts.items()}
    vm_snaps = [
        snapshots.vm_snapshot(
            vm, disks=disks[vm.pk], migration_active=capacity.moving(vm.pk)
        )
        for vm in vms
    ]
    counts = rules.ready_counts(vm_snaps, list(hosts.values()), capacity.rules_cluster)
    on_host = Counter(vm.host_id for vm in vms)
    found = {}
    for pk, target in hosts.items():
        asked = len(vms) - on_host[pk]
        if not asked:
            continue
        takes = counts[target.name]
        stops = ()
        if not takes:
            stops = _stops(
                target.name,
                (
                    failure
                    for vm, snap in zip(vms, vm_snaps, strict=True)
                    if vm.host_id != pk
                    for failure in rules.migration_failures(
                        snap, hosts[vm.host_id], target, capacity.rules_cluster
                    )
                ),
            )
        found[pk] = Intake(takes=takes, asked=asked, stops=stops)
    return found
