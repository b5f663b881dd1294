"""Resume with failback: the VMs the host's last drain moved off come back.

Failover Clustering's ``Resume-ClusterNode -Failback Immediate``: the host is
resumed, then each VM its last drain moved away (and that succeeded) returns
to it, in the drain's order (High priority first), live or by quick migration
by the same rule as the drain (:func:`migrator.hyperv.drain_move_kind`). A VM
that moved on since, or that no rule lets back now, stays where it is, with
the reason. :func:`plan_failback` is the dry run, timed like a drain's plan
(:func:`hvweb.maintenance.plan.timeline`); :func:`resume_with_failback` does
it and keeps its plan as a :class:`~hvweb.maintenance.models.DrainRecord` of
kind ``failback``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from hvweb.inventory.choices import HostState
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.moves import capacity, lifecycle
from hvweb.moves.capacity import Destination
from hvweb.moves.choices import MigrationState, MoveKind
from hvweb.moves.drain import DrainRefused, Stayed, resume_host
from hvweb.moves.lifecycle import MigrationRefused
from hvweb.moves.models import Migration
from hvweb.moves.options import MoveOptions
from migrator.hyperv import drain_move_kind

from .models import DrainRecord
from .plan import DrainPlan, stand_in, timeline

__all__ = ["FailbackOutcome", "plan_failback", "resume_with_failback", "returning"]


@dataclass(frozen=True, slots=True)
class FailbackOutcome:
    """What resuming with failback did."""

    host: Host
    moves: tuple[Migration, ...]
    stayed: tuple[Stayed, ...]
    record: DrainRecord | None

    @property
    def complete(self) -> bool:
        return not self.stayed

    def lines(self) -> list[str]:
        found = [f"{self.host.name} resumed: it takes VMs again."]
        for m in self.moves:
            how = "waits for a slot" if m.state == MigrationState.QUEUED else "running"
            kind = "" if m.kind == MoveKind.LIVE else "quick migration, "
            found.append(
                f"{m.vm.name} fails back from {m.source.name} (move #{m.pk}, "
                f"{kind}{how})."
            )
        found += [str(s) for s in self.stayed]
        if not (self.moves or self.stayed):
            found.append("No VM to fail back: its last drain moved none away.")
        return found


def returning(
    host: Host, drains: list[DrainRecord] | None = None
) -> list[VirtualMachine]:
    """The VMs the host's last drain (or ``drains``, oldest first) moved away,
    in the drains' order."""
    if drains is None:
        last = DrainRecord.objects.filter(host=host, kind=DrainRecord.DRAIN).first()
        drains = [last] if last is not None else []
    found: dict[int, VirtualMachine] = {}
    for record in drains:
        # Moved: switched over (a move that failed after it, say its worker
        # lost, left the VM on its destination all the same).
        switched = record.migrations.filter(
            Q(state=MigrationState.SUCCEEDED) | Q(switched_over=True)
        )
        moved = {m.vm_id: m.vm for m in switched.select_related("vm__host__cluster")}
        for planned in record.plan.get("moves", []):
            vm = moved.get(planned["vm_id"])
            if vm is not None and vm.pk not in found:
                found[vm.pk] = vm
    return list(found.values())


def _place(host: Host, vms, load, admit) -> tuple[list[Migration], list[Stayed]]:
    threshold = host.cluster.move_type_threshold
    moves: list[Migration] = []
    stayed: list[Stayed] = []
    for vm in vms:
        if vm.host_id == host.pk:
            continue  # back already
        if vm.host.cluster_id != host.cluster_id:
            stayed.append(Stayed(vm, f"it is in {vm.host.cluster} now."))
            continue
        kind = drain_move_kind(vm.priority, vm.power_state, threshold)
        (where,) = load.evaluate(vm, [host], quick=kind == MoveKind.QUICK)
        if not where.selectable:
            why = " ".join(f"{f.code}: {f.message}" for f in where.failures)
            stayed.append(Stayed(vm, f"it cannot come back now: {why}", where.failures))
            continue
        try:
            move = admit(vm, kind, where)
        except MigrationRefused as refused:
            stayed.append(Stayed(vm, f"its move back was refused: {refused}",
                                 refused.failures))  # fmt: skip
            continue
        moves.append(move)
        load.track(move)
    return moves, stayed


def plan_failback(host: Host, **options) -> DrainPlan:
    """What resuming ``host`` with failback would do now; nothing is written."""
    opts = MoveOptions.parse(host.cluster, **options)
    host = Host.objects.select_related("cluster").get(pk=host.pk)
    if host.state == HostState.DOWN:
        raise DrainRefused("HOST_DOWN", f"{host.name} is down: bring it up first.")
    with transaction.atomic():
        vms = returning(host)
        load = capacity.load(host.cluster)
        load.hosts[host.pk].state = HostState.UP  # as resumed, in memory only
        others = list(load.moves)
        made: list[Migration] = []

        def admit(vm, kind, where: Destination) -> Migration:
            made.append(stand_in(vm, host, where, kind, opts, number=len(made) + 1))
            return made[-1]

        moves, stayed = _place(host, vms, load, admit)
    limit = host.cluster.max_simultaneous_migrations
    return DrainPlan(
        host=host,
        options=opts,
        moves=tuple(timeline(moves, others, limit)),
        stayed=tuple(stayed),
        under_way=(),
        ahead=len(others),
        failback=True,
    )


def resume_with_failback(
    host: Host,
    user=None,
    *,
    drains: list[DrainRecord] | None = None,
    start_by=None,
    **options,
) -> FailbackOutcome:
    """Resume ``host`` and move back the VMs its last drain (or ``drains``)
    moved away.

    One transaction: the resume and the moves back. Raises PermissionDenied,
    DrainRefused (the host is down) or ValidationError (bad options).
    """
    from .plan import plan_for

    opts = MoveOptions.parse(host.cluster, **options)
    with transaction.atomic():
        host = resume_host(host, user)
        host = Host.objects.select_related("cluster").get(pk=host.pk)
        vms = returning(host, drains)
        load = capacity.load(host.cluster)

        def admit(vm, kind, where: Destination) -> Migration:
            return lifecycle.admit(
                vm, host, requested_by=user, options=opts, kind=kind, start_by=start_by
            )

        moves, stayed = _place(host, vms, load, admit)
        record = None
        if moves:
            plan = plan_for(host, moves, opts, failback=True)
            record = DrainRecord.objects.create(
                host=host,
                cluster=host.cluster,
                requested_by=user,
                kind=DrainRecord.FAILBACK,
                plan=plan.to_dict(),
            )
            record.migrations.set(moves)
    return FailbackOutcome(
        host=host, moves=tuple(moves), stayed=tuple(stayed), record=record
    )
