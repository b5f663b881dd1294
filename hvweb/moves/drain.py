"""Pause a host and live-migrate its running VMs away ("Pause > Drain roles").

Draining is how an operator empties a node before maintenance: the host is
paused, so the rules refuse it as a destination (``DESTINATION_PAUSED``), and
each running VM on it is moved to the best host the rules allow now, exactly
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
from hvweb.inventory.access import may
from hvweb.inventory.choices import HostState, PowerState
from hvweb.inventory.models import Host, VirtualMachine
from migrator.rules import Failure

from . import capacity, lifecycle
from .capacity import Destination
from .choices import MigrationState
from .lifecycle import MigrationRefused
from .models import Migration
from .services import MoveOptions

__all__ = ["DrainOutcome", "DrainRefused", "Stayed", "drain_host", "resume_host"]


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
    #: Started (or queued at a host's limit) by this drain, biggest VM first.
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
            found.append(f"{m.vm.name} → {m.destination.name} (move #{m.pk}, {how}).")
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


def drain_host(host: Host, user=None, **options) -> DrainOutcome:
    """Pause ``host`` and start a move of each of its running VMs.

    Biggest VMs are placed first, each on its best-ranked destination (ready
    hosts first, then those where the move waits for a slot, by free memory
    after the reservations of the moves already started), so the VMs spread
    over the cluster. ``options`` are those of
    :func:`hvweb.moves.services.start_migration`, for every move. Pausing and
    the moves are one transaction: bad options or an error leave the host as
    it was. Raises PermissionDenied, DrainRefused (the host is down) or
    ValidationError (bad options).
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
        vms = list(
            VirtualMachine.objects.filter(host=host)
            .select_related("host__cluster")
            .order_by("-memory_mib", "name")
        )
        active = {
            m.vm_id: m
            for m in Migration.objects.filter(
                vm__in=vms, state__in=MigrationState.active()
            ).select_related("vm", "destination")
        }
        moves: list[Migration] = []
        under_way: list[Migration] = []
        stayed: list[Stayed] = []
        load = capacity.load(host.cluster)  # then kept current as moves start
        for vm in vms:
            if vm.pk in active:
                under_way.append(active[vm.pk])
                continue
            if vm.power_state != PowerState.RUNNING:
                state = vm.get_power_state_display().lower()
                stayed.append(Stayed(vm, f"it is {state}, and only running VMs move."))
                continue
            ranked = load.ranked(vm)
            best = next((d for d in ranked if d.selectable), None)
            if best is None:
                stayed.append(_held(vm, ranked))
                continue
            try:
                move = lifecycle.admit(vm, best.host, requested_by=user, options=opts)
            except MigrationRefused as refused:  # the load changed under us
                reason = f"its move to {best.host.name} was refused: {refused}"
                stayed.append(Stayed(vm, reason, refused.failures))
                continue
            moves.append(move)
            load.track(move)
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
