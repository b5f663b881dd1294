"""What one migration did, with the model's prediction beside it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .errors import SpecError
from .policy import STOP_REASONS
from .predict import Prediction

__all__ = ["OUTCOMES", "MigrationResult"]

#: How a migration can end.
OUTCOMES: tuple[str, ...] = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationResult:
    """The outcome and figures of one migration.

    Counts and bytes are for the whole VM (scaled up when ``sampled``). Times
    ending in ``_s`` are simulated seconds, except ``wall_time_s`` (the
    machine's time for stages 1–7 with verification), ``allocation_time_s``
    (allocating and touching the destination's memory in stage 2) and
    ``setup_time_s`` (filling the guest's memory before the move).
    ``location`` is where the VM runs afterwards: "destination" only when
    completed; a failed or cancelled move leaves it on the "source" and names
    ``failed_stage`` and ``reason``. ``aborted``: the move's policy gave up at
    the pass cap (``failure_code`` ``NOT_CONVERGING``); ``total_time_s`` is
    then its pre-copy's time. ``throttle_pct_per_pass`` is the guest's
    throttle during each pass (%), ``downtime_limit_ms_per_pass`` the limit the
    decision after each pass was taken against (ms), ``guest_slowdown_pct``
    the share of the guest's writes its throttle held back during pre-copy.
    """

    outcome: str
    location: str
    failed_stage: str | None
    failure_code: str | None
    reason: str | None
    passes: int
    stop_reason: str | None
    pages_per_pass: tuple[int, ...]
    bytes_per_pass: tuple[int, ...]
    final_dirty_pages: int
    bytes_sent: int
    zero_pages: int
    bytes_saved_by_compression: int
    total_time_s: float
    downtime_s: float
    migration_time_s: float
    verified: bool
    sampled: bool
    sample_fraction: float
    wall_time_s: float
    allocation_time_s: float
    setup_time_s: float
    memory_bytes: int
    page_size: int
    bandwidth_bps: float
    workload_writes: int
    predicted: Prediction
    performance_option: str = "tcpip"
    policy: str = "hyperv"
    throttle_pct_per_pass: tuple[float, ...] = ()
    downtime_limit_ms_per_pass: tuple[float, ...] = ()
    guest_slowdown_pct: float = 0.0
    aborted: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise SpecError("outcome", f"unknown outcome {self.outcome!r}")
        if self.location not in ("source", "destination"):
            raise SpecError("location", f"unknown location {self.location!r}")
        if (self.location == "destination") != (self.outcome == "completed"):
            raise SpecError("location", "only a completed move leaves the source")
        if self.stop_reason is not None and self.stop_reason not in STOP_REASONS:
            raise SpecError("stop_reason", f"unknown stop reason {self.stop_reason!r}")
        if self.outcome != "completed" and not self.failed_stage:
            raise SpecError(
                "failed_stage", "a failed or cancelled move names its stage"
            )
        if self.aborted and self.outcome != "failed":
            raise SpecError("aborted", "an aborted move is a failed one")

    @property
    def ok(self) -> bool:
        """True when the VM now runs on the destination."""
        return self.outcome == "completed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; ``predicted`` nested, tuples as lists."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Prediction):
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationResult:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for name, value in values.items():
            if isinstance(value, list):
                values[name] = tuple(value)
        values["predicted"] = Prediction.from_dict(values["predicted"])
        return cls(**values)
