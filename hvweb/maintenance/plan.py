"""A drain's timed plan: where each VM goes, when, how long, and what stays.

:func:`plan_drain` places the host's VMs exactly as a drain would
(:func:`hvweb.moves.drain.place`, with the cluster's capacity from
:mod:`hvweb.moves.capacity`; no second rule), but records nothing: each move
is a stand-in that the capacity tracks as the real one would be. Each move's
whole time comes from the predictor (:func:`migrator.predict`,
:func:`migrator.move_seconds`) and the per-host queue is run on the clock at
the cluster's limit (:func:`migrator.schedule`), as the dispatcher runs it,
behind the moves already under way in the cluster.

:func:`timeline` does the same for moves that exist (the drain that follows,
or any list of moves), so the plan a drain is checked against is built by the
same code. Times are simulated seconds from the drain's start (what real
hosts would take); at a simulation speed ``s`` the wall clock takes ``1/s`` of
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from hvweb.inventory.choices import HostState, Priority
from hvweb.inventory.models import Host
from hvweb.moves import capacity
from hvweb.moves.choices import MigrationState, MoveKind
from hvweb.moves.drain import (
    DrainRefused,
    Placement,
    Stayed,
    drain_order,
    place,
)
from hvweb.moves.models import Migration
from hvweb.moves.options import MoveOptions
from hvweb.moves.runner import migration_spec
from migrator import Job, Prediction, move_seconds, predict, schedule
from migrator.units import format_about, format_span

__all__ = ["DrainPlan", "PlannedMove", "plan_drain", "timeline"]


@dataclass(frozen=True, slots=True)
class PlannedMove:
    """One move of a plan: what, where, how, when, and the predictor's figures."""

    migration: Migration  # a stand-in (no primary key above 0) or a real move
    order: int
    queued: bool  # waits in the queue when the drain starts
    slot: int  # which of the source host's simultaneous migrations it runs in
    start_s: float
    end_s: float
    prediction: Prediction

    @property
    def vm(self):
        return self.migration.vm

    def to_dict(self) -> dict[str, Any]:
        m, p = self.migration, self.prediction
        return {
            "vm": m.vm.name,
            "vm_id": m.vm_id,
            "migration": m.pk if m.pk and m.pk > 0 else None,
            "priority": Priority(m.vm.priority).label,
            "power_state": m.vm.power_state,
            "kind": m.kind,
            "source": m.source.name,
            "destination": m.destination.name,
            "order": self.order,
            "queued": self.queued,
            "slot": self.slot,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "seconds": self.end_s - self.start_s,
            "passes": p.passes,
            "total_time_s": p.total_time_s,
            "downtime_s": p.downtime_s,
            "bytes_sent": p.bytes_sent,
            "outlook": p.reason,
        }


@dataclass(frozen=True, slots=True)
class DrainPlan:
    """What a drain of ``host`` would do now, on the clock."""

    host: Host
    options: MoveOptions
    moves: tuple[PlannedMove, ...]
    stayed: tuple[Stayed, ...]
    under_way: tuple[Migration, ...]
    #: Moves of other VMs of the cluster already queued or running, which
    #: hold slots or go first.
    ahead: int
    #: The VMs come back to ``host`` (resume with failback), not leave it.
    failback: bool = False

    @property
    def window_s(self) -> float:
        """Simulated seconds from the drain's start until its last move ends."""
        return max((m.end_s for m in self.moves), default=0.0)

    @property
    def wall_window_s(self) -> float | None:
        """The window on the wall clock at the moves' speed (None: unpaced)."""
        speed = self.options.speed
        return self.window_s / speed if speed > 0 else None

    @property
    def longest_blackout_s(self) -> float:
        return max((m.prediction.downtime_s for m in self.moves), default=0.0)

    @property
    def summary(self) -> str:
        """``HV-PROD-2: 6 VMs, about 2 min 40 s, longest blackout 110 ms``."""
        n = len(self.moves)
        back = " back" if self.failback else ""
        text = f"{self.host.name}: {n} VM{'s' if n != 1 else ''}{back}"
        if n:
            text += (
                f", about {format_span(self.window_s)}, longest blackout "
                f"{format_about(self.longest_blackout_s)}"
            )
        if self.stayed:
            text += f"; {len(self.stayed)} stay{'s' if len(self.stayed) == 1 else ''}"
        return text

    def lines(self) -> list[str]:
        """The plan as an operator reads it, one line per move and per VM that
        stays, the summary first."""
        found = [self.summary]
        for m in self.moves:
            p = m.prediction
            how = "quick migration" if m.migration.kind == MoveKind.QUICK else "live"
            wait = ", waits for a slot" if m.queued else ""
            route = (
                f"{m.vm.name} ← {m.migration.source.name}"
                if self.failback
                else f"{m.vm.name} → {m.migration.destination.name}"
            )
            found.append(
                f"{m.order}. {route} ({how}, "
                f"slot {m.slot}{wait}): {_at(m.start_s)} → "
                f"{_at(m.end_s)}, {p.passes} pass"
                f"{'es' if p.passes != 1 else ''}, downtime "
                f"{format_about(p.downtime_s)}"
            )
        found += [f"{m.vm.name} is already moving (move #{m.pk})."
                  for m in self.under_way]  # fmt: skip
        found += [str(s) for s in self.stayed]
        if self.ahead:
            found.append(
                f"{self.ahead} other move{'s' if self.ahead != 1 else ''} of the "
                f"cluster go first or hold slots; the times include them."
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        """The plan as the API, the CLI's ``--json`` and a drain's record hold it."""
        return {
            "host": self.host.name,
            "host_id": self.host.pk,
            "failback": self.failback,
            "cluster": self.host.cluster.name,
            "summary": self.summary,
            "performance_option": self.options.performance_option,
            "downtime_limit_ms": self.options.downtime_limit_ms,
            "speed": self.options.speed,
            "limit": self.host.cluster.max_simultaneous_migrations,
            "move_type_threshold": self.host.cluster.move_type_threshold,
            "window_s": self.window_s,
            "wall_window_s": self.wall_window_s,
            "longest_blackout_s": self.longest_blackout_s,
            "moves": [m.to_dict() for m in self.moves],
            "stayed": [
                {
                    "vm": s.vm.name,
                    "reason": s.reason,
                    "codes": [f.code for f in s.failures],
                }
                for s in self.stayed
            ],  # fmt: skip
            "under_way": [{"vm": m.vm.name, "migration": m.pk} for m in self.under_way],
            "ahead": self.ahead,
        }


def _at(seconds: float) -> str:
    """A time from the drain's start: ``0 s``, ``6.5 s``, ``2 min 40 s``."""
    return "0 s" if seconds <= 0 else format_span(seconds)


def _prediction(migration: Migration) -> Prediction:
    return predict(migration_spec(migration))


def _seconds(migration: Migration, prediction: Prediction) -> float:
    return move_seconds(migration_spec(migration), prediction)


def timeline(
    moves: Sequence[Migration],
    others: Sequence[Migration],
    limit: int,
    *,
    predictions: dict[int, Prediction] | None = None,
) -> list[PlannedMove]:
    """``moves`` (in the order they were admitted) on the clock, behind
    ``others`` (the cluster's other active moves, running or queued before).

    A running move of ``others`` holds its slots for what its prediction says
    is left after its last progress (``progress.t``); a queued one goes first
    for its whole predicted time.
    """
    predictions = dict(predictions or {})
    jobs: list[Job] = []
    for m in sorted(others, key=lambda m: (m.created_at, m.pk)):
        whole = _seconds(m, _prediction(m))
        done = float((m.progress or {}).get("t", 0.0)) if m.started_at else 0.0
        jobs.append(Job(key=("other", m.pk), source=m.source.name,
                        destination=m.destination.name,
                        seconds=max(0.0, whole - done),
                        running=m.state == MigrationState.RUNNING))  # fmt: skip
    for i, m in enumerate(moves):
        if i not in predictions:
            predictions[i] = _prediction(m)
        jobs.append(Job(key=("move", i), source=m.source.name,
                        destination=m.destination.name,
                        seconds=_seconds(m, predictions[i]),
                        running=m.state == MigrationState.RUNNING))  # fmt: skip
    slotted = {s.key: s for s in schedule(jobs, limit)}
    return [
        PlannedMove(
            migration=m,
            order=i + 1,
            queued=m.state == MigrationState.QUEUED,
            slot=slotted["move", i].slot,
            start_s=slotted["move", i].start,
            end_s=slotted["move", i].end,
            prediction=predictions[i],
        )
        for i, m in enumerate(moves)
    ]


def stand_in(
    vm, destination: Host, where, kind: str, opts: MoveOptions, *, number: int
) -> Migration:
    """The record an admission would make, unsaved (its primary key ``-number``):
    the capacity tracks it as the real one (its memory reserved on
    ``destination``, its slots held when it runs). ``where`` is the
    destination as evaluated: a move held only by a host's limit queues."""
    return Migration(
        pk=-number,
        vm=vm,
        cluster=vm.host.cluster,
        source=vm.host,
        destination=destination,
        kind=kind,
        performance_option=opts.performance_option,
        downtime_limit_ms=opts.downtime_limit_ms,
        speed=opts.speed,
        reserved_memory_mib=vm.memory_mib,
        state=MigrationState.QUEUED if where.failures else MigrationState.RUNNING,
    )


def plan_drain(host: Host, **options) -> DrainPlan:
    """What :func:`hvweb.moves.drain.drain_host` would do to ``host`` now.

    ``options`` are a drain's (the performance option, downtime limit and
    speed of every move). Nothing is written. Raises DrainRefused for a host
    that is down and ValidationError for bad options, as the drain does.
    """
    opts = MoveOptions.parse(host.cluster, **options)
    host = Host.objects.select_related("cluster").get(pk=host.pk)
    if host.state == HostState.DOWN:
        raise DrainRefused(
            "HOST_DOWN",
            f"{host.name} is down: its VMs do not run there, so there is nothing "
            "to move. Bring it up first.",
        )
    with transaction.atomic():  # one consistent read
        vms = list(drain_order(host))
        load = capacity.load(host.cluster)
        others = list(load.moves)  # they hold slots, or go first
        active = {m.vm_id: m for m in load.moves if m.vm.host_id == host.pk}
        made: list[Migration] = []

        def admit(placement: Placement) -> Migration:
            made.append(
                stand_in(placement.vm, placement.destination.host,
                         placement.destination, placement.kind, opts,
                         number=len(made) + 1)
            )  # fmt: skip
            return made[-1]

        moves, under_way, stayed = place(host, vms, load, admit, active=active)
    limit = host.cluster.max_simultaneous_migrations
    return DrainPlan(
        host=host,
        options=opts,
        moves=tuple(timeline(moves, others, limit)),
        stayed=tuple(stayed),
        under_way=tuple(under_way),
        ahead=len(others),
    )


def plan_for(
    host: Host,
    moves: Sequence[Migration],
    options: MoveOptions,
    *,
    failback: bool = False,
) -> DrainPlan:
    """The plan of a drain that ran: ``moves`` as it admitted them, on the
    clock behind the cluster's other moves then active."""
    moves = list(moves)
    ids = {m.pk for m in moves}
    load = capacity.load(host.cluster)
    others = [m for m in load.moves if m.pk not in ids]
    limit = host.cluster.max_simultaneous_migrations
    return DrainPlan(
        host=host,
        options=options,
        moves=tuple(timeline(moves, others, limit)),
        stayed=(),
        under_way=(),
        ahead=len(others),
        failback=failback,
    )
