"""A drain against its plan: predicted and actual, per move and for the window.

Per move: the predicted passes, downtime and whole time beside what the move
did (its result's ``migration_time_s``: stages 1–7 on the simulated clock).
For the window, two actuals: the same per-host queue run with each move's
measured time (:func:`migrator.schedule`, what the window would be on real
hosts; the one to compare an unpaced drain by), and, for a paced drain, the
wall clock from the drain's start to its last move's end times its speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hvweb.moves.choices import MigrationState
from migrator import Job, schedule

from .models import DrainRecord

__all__ = ["Comparison", "MoveComparison", "compare"]


@dataclass(frozen=True, slots=True)
class MoveComparison:
    planned: dict[str, Any]
    migration: Any  # the move, or None if it is gone

    @property
    def actual_seconds(self) -> float | None:
        m = self.migration
        if m is None or m.state != MigrationState.SUCCEEDED:
            return None
        return (m.result or {}).get("migration_time_s")

    @property
    def ratio(self) -> float | None:
        """Actual whole time over predicted (None until it succeeded)."""
        actual = self.actual_seconds
        predicted = self.planned["seconds"]
        return actual / predicted if actual is not None and predicted else None


@dataclass(frozen=True, slots=True)
class Comparison:
    record: DrainRecord
    moves: tuple[MoveComparison, ...]
    #: The queue run with each move's measured time (None until all ended well).
    actual_window_s: float | None
    #: From the drain's start to its last move's end, wall seconds (None until
    #: every move ended).
    wall_window_s: float | None

    @property
    def predicted_window_s(self) -> float:
        return self.record.plan.get("window_s", 0.0)

    @property
    def ratio(self) -> float | None:
        """Predicted window over actual (1.0: the plan held)."""
        if not self.actual_window_s:
            return None
        return self.predicted_window_s / self.actual_window_s

    @property
    def finished(self) -> bool:
        return all(
            c.migration is not None and not c.migration.active for c in self.moves
        )


def compare(record: DrainRecord) -> Comparison:
    """``record``'s plan beside what its moves did."""
    plan = record.plan
    by_id = {
        m.pk: m for m in record.migrations.select_related("vm", "source", "destination")
    }
    moves = tuple(
        MoveComparison(planned=p, migration=by_id.get(p.get("migration")))
        for p in plan.get("moves", [])
    )
    actual = None
    if moves and all(c.actual_seconds is not None for c in moves):
        jobs = [
            Job(key=i, source=c.planned.get("source", plan["host"]),
                destination=c.planned["destination"],
                seconds=c.actual_seconds, running=not c.planned["queued"])
            for i, c in enumerate(moves)
        ]  # fmt: skip
        actual = max(s.end for s in schedule(jobs, plan["limit"]))
    wall = None
    ends = [c.migration.finished_at for c in moves if c.migration is not None]
    if moves and all(ends) and len(ends) == len(moves):
        wall = (max(ends) - record.created_at).total_seconds()
    return Comparison(
        record=record, moves=moves, actual_window_s=actual, wall_window_s=wall
    )
