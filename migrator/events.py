"""Typed events the engine yields, and their JSON form.

Every event class has a class-level ``kind`` and a simulated time ``t``
(seconds since the migration started). ``event.to_dict()`` includes ``kind``;
:func:`event_from_dict` turns such a dict back into the event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .errors import EventError
from .result import MigrationResult
from .stages import Stage

__all__ = [
    "EVENT_TYPES",
    "Cancelled",
    "Completed",
    "Event",
    "Failed",
    "PassFinished",
    "Progress",
    "StageFinished",
    "StageStarted",
    "event_from_dict",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all engine events."""

    kind: ClassVar[str] = "event"
    t: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.t) or self.t < 0:
            raise EventError(f"{self.kind}: t must be a finite time ≥ 0, got {self.t}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``kind``; stages as their values."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Stage):
                value = value.value
            elif isinstance(value, MigrationResult):
                value = value.to_dict()
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class StageStarted(Event):
    """A stage began."""

    kind: ClassVar[str] = "stage_started"
    stage: Stage


@dataclass(frozen=True, slots=True, kw_only=True)
class StageFinished(Event):
    """A stage ended after ``duration_s`` simulated seconds."""

    kind: ClassVar[str] = "stage_finished"
    stage: Stage
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PassFinished(Event):
    """A pre-copy pass ended.

    ``pages_dirtied`` and ``remaining_dirty_pages`` are the pages written during
    the pass after they were sent (the next pass's set); ``dirty_rate`` is that
    over the pass's duration, in pages/s; ``expected_downtime_s`` is the
    blackout if pre-copy stopped now (those pages plus the device state).
    ``throttle_pct`` is the guest's throttle during the pass (%) and
    ``downtime_limit_ms`` the downtime limit the policy's decision after it
    used (ms; see :mod:`migrator.policy`); both default to an unthrottled
    pass under the move's own limit for events recorded before policies.
    """

    kind: ClassVar[str] = "pass_finished"
    pass_no: int
    pages_sent: int
    pages_dirtied: int
    zero_pages: int
    bytes: int
    duration_s: float
    dirty_rate: float
    expected_downtime_s: float
    remaining_dirty_pages: int
    throttle_pct: float = 0.0
    downtime_limit_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress(Event):
    """Memory transfer progress; ``dirty_rate`` and ``link_rate`` in pages/s.

    ``remaining_dirty_pages`` counts the pass's pages not sent yet
    (``unsent_pages``) and those written again after they were sent.
    """

    kind: ClassVar[str] = "progress"
    pass_no: int
    bytes_sent: int
    remaining_dirty_pages: int
    dirty_rate: float
    link_rate: float
    unsent_pages: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed(Event):
    """The VM runs on the destination."""

    kind: ClassVar[str] = "completed"
    result: MigrationResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(Event):
    """The move failed in ``stage``; the VM still runs on the source."""

    kind: ClassVar[str] = "failed"
    stage: Stage
    code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancelled(Event):
    """The move was cancelled in ``stage``; the VM still runs on the source."""

    kind: ClassVar[str] = "cancelled"
    stage: Stage
    reason: str


#: Every event class by its ``kind``.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        StageStarted,
        StageFinished,
        PassFinished,
        Progress,
        Completed,
        Failed,
        Cancelled,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event whose :meth:`Event.to_dict` gave ``data``."""
    try:
        cls = EVENT_TYPES[data["kind"]]
    except (KeyError, TypeError):
        raise EventError(f"not an engine event: {data!r:.200}") from None
    values = {k: v for k, v in data.items() if k != "kind"}
    try:
        if "stage" in values:
            values["stage"] = Stage(values["stage"])
        if "result" in values:
            values["result"] = MigrationResult.from_dict(values["result"])
        return cls(**values)
    except (TypeError, ValueError, KeyError) as exc:
        raise EventError(f"bad {cls.kind} event: {exc}") from None
