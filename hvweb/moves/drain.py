"""Pause a host and move its VMs away ("Pause > Drain roles").

Draining is how an operator empties a node before maintenance: the host is
paused, so the rules refuse it as a destination (``DESTINATION_PAUSED``), and
each VM on it is moved to the best host the rules allow now, High priority
first, live at or above the cluster's move type threshold and by quick
migration below it (and for VMs that are off or saved), exactly
as an operator would start the moves by hand (the same admission,
:func:`hvweb.moves.lifecycle.admit`: the same checks, reservations and
queue). A VM that no host can take stays, with the reasons; resuming the host
makes it a destination again.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction

from hvweb.core.locking import ROW_ONLY
from hvweb.inventory import snapshots
from hvweb.inventory.access import may
from hvweb.inventory.choices import HostState
from hvweb.inventory.models import Host, VirtualMachine
from migrator.hyperv import drain_move_kind
from migrator.rules import Failure

from . import capacity, lifecycle
from .capacity import Destination
from .choices import MigrationState, MoveKind
from .lifecycle import MigrationRefused
from .models import Migration
from .services import MoveOptions

__all__ = [
    "DrainOutcome",
    "DrainRefused",
    "Placement",
    "Stayed",
    "drain_host",
    "drain_order",
    "place",
    "resume_host",
]


class DrainRefused(Exception):
    """The host cannot be drained or resumed as asked; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Stayed:
    """A VM the drain left on the host, and why."""

    vm: VirtualMachine
    reason: str
    failures: tuple[Failure, ...] = ()

    def __str__(self) -> str:
        return f"{self.vm.name} stays: {self.reason}"


@dataclass(frozen=True, slots=True)
class DrainOutcome:
    """What a drain did: the moves it started and the VMs it could not move."""

    host: Host
    #: False when the host was paused already (a drain asked again).
    paused_now: bool
    #: Started (or queued at a host's limit) by this drain, in drain order.
    moves: tuple[Migration, ...]
    #: Moves of VMs on the host that were already under way.
    under_way: tuple[Migration, ...]
    stayed: tuple[Stayed, ...]

    @property
    def complete(self) -> bool:
        """Every running VM is leaving the host."""
        return not self.stayed

    def lines(self) -> list[str]:
        """The outcome as sentences: the host, each move, each VM that stays."""
        host = self.host.name
        found = [
            f"{host} paused: it takes no new VMs."
            if self.paused_now
            else f"{host} was paused already."
        ]
        for m in self.moves:
            how = "waits for a slot" if m.state == MigrationState.QUEUED else "running"
            kind = "" if m.kind == MoveKind.LIVE else "quick migration, "
            found.append(
                f"{m.vm.name} → {m.destination.name} (move #{m.pk}, {kind}{how})."
            )
        found += [
            f"{m.vm.name} was already moving (move #{m.pk})." for m in self.under_way
        ]
        found += [str(s) for s in self.stayed]
        if not (self.moves or self.under_way or self.stayed):
            found.append("No VM was on it.")
        return found

    def __str__(self) -> str:
        return " ".join(self.lines())


def _held(vm: VirtualMachine, ranked: list[Destination]) -> Stayed:
    """Why no host takes ``vm``: the failures of the closest one (fewest)."""
    cluster = vm.host.cluster.name
    if not ranked:
        return Stayed(vm, f"{cluster} has no other host.")
    closest = min(ranked, key=lambda d: len(d.failures))  # ties: the ranking's order
    why = " ".join(f"{f.code}: {f.message}" for f in closest.failures)
    return Stayed(
        vm,
        f"no host of {cluster} can take it; the closest, {closest.host.name}, "
        f"refuses it with {why}",
        closest.failures,
    )


def _locked(host: Host) -> Host:
    """The host's row, locked until the transaction ends (two drains queue)."""
    return (
        Host.objects.select_for_update(**ROW_ONLY)
        .select_related("cluster")
        .get(pk=host.pk)
    )


def _may_operate(user, host: Host, doing: str) -> None:
    if user is not None and not may(user, "operate", host):
        raise PermissionDenied(
            f"{doing} a host needs the operator or administrator role in its "
            f"cluster's team."
        )


def _up_or_paused(host: Host, if_down: str) -> Host:
    if host.state == HostState.DOWN:
        raise DrainRefused("HOST_DOWN", f"{host.name} is down: {if_down}")
    return host


def drain_order(host: Host):
    """The VMs on ``host`` in the order a drain places them.

    Failover Clustering's order: by priority, High first, then Medium, Low and
    No Auto Start; within a priority the biggest first (so the big VMs find
    room while the cluster has most), then by name.
    """
    return (
        VirtualMachine.objects.filter(host=host)
        .select_related("host__cluster")
        .order_by("-priority", "-memory_mib", "name")
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a drain puts one VM: its move kind and destination."""

    vm: VirtualMachine
    kind: str
    destination: Destination


def place(
    host: Host,
    vms: list[VirtualMachine],
    load: capacity.ClusterCapacity,
    admit,
    *,
    active: dict[int, Migration] | None = None,
) -> tuple[list[Migration], list[Migration], list[Stayed]]:
    """Place each of ``vms`` (in :func:`drain_order`) as a drain does.

    The one rule a drain and its plan (:mod:`hvweb.maintenance.plan`) share:
    each VM's move kind is the cluster's (:func:`migrator.hyperv.drain_move_kind`:
    live at or above the move type threshold, quick below it and for VMs that
    are not running), and its destination the best-ranked selectable host of
    ``load`` (ready hosts first, then those where the move waits for a slot,
    by free memory after the reservations of the moves placed before it).
    ``admit(placement)`` records the move (a real admission, or the plan's
    stand-in) and returns it, or raises MigrationRefused; ``load`` then tracks
    it. Returns the moves, the moves already under way (``active``, by VM id)
    and the VMs that stay.
    """
    threshold = host.cluster.move_type_threshold
    active = active or {}
    disks = snapshots.disks_by_vm(vms)  # one query for every VM
    moves: list[Migration] = []
    under_way: list[Migration] = []
    stayed: list[Stayed] = []
    for vm in vms:
        if vm.pk in active:
            under_way.append(active[vm.pk])
            continue
        kind = drain_move_kind(vm.priority, vm.power_state, threshold)
        ranked = load.ranked(vm, quick=kind == MoveKind.QUICK, disks=disks[vm.pk])
        best = next((d for d in ranked if d.selectable), None)
        if best is None:
            stayed.append(_held(vm, ranked))
            continue
        try:
            move = admit(Placement(vm=vm, kind=kind, destination=best))
        except MigrationRefused as refused:  # the load changed under us
            reason = f"its move to {best.host.name} was refused: {refused}"
            stayed.append(Stayed(vm, reason, refused.failures))
            continue
        moves.append(move)
        load.track(move)
    return moves, under_way, stayed


def drain_host(host: Host, user=None, *, start_by=None, **options) -> DrainOutcome:
    """Pause ``host`` and start a move of each of its VMs.

    VMs are placed in :func:`drain_order`, each as :func:`place` decides (its
    move kind and its best-ranked destination), so the VMs spread over the
    cluster. ``options`` are those of
    :func:`hvweb.moves.services.start_migration`, for every move. Pausing and
    the moves are one transaction: bad options or an error leave the host as
    it was. ``start_by``: a move not started by then is not started (a
    maintenance window's end). Raises PermissionDenied, DrainRefused (the host
    is down) or ValidationError (bad options).
    """
    _may_operate(user, host, "Draining")
    opts = MoveOptions.parse(host.cluster, **options)  # refused before all
    with transaction.atomic():
        host = _up_or_paused(
            _locked(host),
            "its VMs do not run there, so there is nothing to live-migrate. "
            "Bring it up first.",
        )
        paused_now = host.state != HostState.PAUSED
        if paused_now:
            host.state = HostState.PAUSED
            host.save(update_fields=["state"])
        vms = list(drain_order(host))
        active = {
            m.vm_id: m
            for m in Migration.objects.filter(
                vm__in=vms, state__in=MigrationState.active()
            ).select_related("vm", "destination")
        }

        def admit(placement: Placement) -> Migration:
            return lifecycle.admit(
                placement.vm,
                placement.destination.host,
                requested_by=user,
                options=opts,
                kind=placement.kind,
                start_by=start_by,
            )

        load = capacity.load(host.cluster)  # then kept current as moves start
        moves, under_way, stayed = place(host, vms, load, admit, active=active)
    return DrainOutcome(
        host=host,
        paused_now=paused_now,
        moves=tuple(moves),
        under_way=tuple(under_way),
        stayed=tuple(stayed),
    )


def resume_host(host: Host, user=None) -> Host:
    """Take ``host`` out of pause: it is a destination again.

    Its VMs that moved away stay where they are (no failback). Raises
    PermissionDenied or DrainRefused (the host is down, not paused).
    """
    _may_operate(user, host, "Resuming")
    with transaction.atomic():
        host = _up_or_paused(
            _locked(host), "not paused: an administrator brings it up in the admin."
        )
        if host.state != HostState.UP:
            host.state = HostState.UP
            host.save(update_fields=["state"])
    return host
