"""The analytic pre-copy model: what a migration should do, before it runs.

Rounds are geometric (each pass lasts as long as the link needs for the pages
dirtied during the one before) with working-set saturation: a working set of
``W`` pages taking ``w`` writes/s leaves a page dirty at the end of a pass of
``T`` seconds with probability ``1 - exp(-w·T/W)`` if it was not sent in that
pass, and ``1 - (1 - exp(-λT)) / (λT)`` (``λ = w/W``) if it was, being sent at
a uniformly spread moment of the pass. The sweep is modelled with the same
shape, its walk covering ``min(1, v·T/W)`` of its region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import SpecError
from .policy import STOP_REASONS, stop_reason
from .spec import MigrationSpec

__all__ = ["Prediction", "predict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """The model's figures for one migration (rates in pages per second)."""

    passes: int
    stop_reason: str
    pages_per_pass: tuple[int, ...]
    final_dirty_pages: int
    bytes_sent: int
    total_time_s: float
    downtime_s: float
    converges: bool
    reason: str
    dirty_rate: float
    link_rate: float

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise SpecError("stop_reason", f"unknown stop reason {self.stop_reason!r}")
        if self.passes != len(self.pages_per_pass) or self.passes < 1:
            raise SpecError("passes", "must equal the length of pages_per_pass")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "passes": self.passes,
            "stop_reason": self.stop_reason,
            "pages_per_pass": list(self.pages_per_pass),
            "final_dirty_pages": self.final_dirty_pages,
            "bytes_sent": self.bytes_sent,
            "total_time_s": self.total_time_s,
            "downtime_s": self.downtime_s,
            "converges": self.converges,
            "reason": self.reason,
            "dirty_rate": self.dirty_rate,
            "link_rate": self.link_rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`to_dict`."""
        fields = dict(data)
        fields["pages_per_pass"] = tuple(fields["pages_per_pass"])
        return cls(**fields)


def _classes(spec: MigrationSpec) -> list[tuple[int, float]]:
    """(pages, writes/s) of each part of the working set."""
    wl = spec.workload
    if not wl.writes:
        return []
    size = wl.working_set_pages
    if wl.kind == "hotcold":
        hot = min(size, max(1, round(wl.hot_fraction * size)))
        if hot == size:
            return [(size, wl.write_rate)]
        return [
            (hot, wl.write_rate * wl.hot_write_share),
            (size - hot, wl.write_rate * (1 - wl.hot_write_share)),
        ]
    return [(size, wl.write_rate)]


def _redirtied(
    kind: str, size: int, rate: float, in_set: float, seconds: float
) -> float:
    """Pages of one class dirty after a pass of ``seconds`` that sent ``in_set``."""
    if rate <= 0 or seconds <= 0:
        return 0.0
    if kind == "sweep":
        walked = rate * seconds / size
        touched = min(1.0, walked)
        after_send = walked / 2 if walked <= 1 else 1 - 1 / (2 * walked)
    else:
        x = rate * seconds / size
        touched = -math.expm1(-x)
        after_send = 1 - touched / x
    return in_set * after_send + (size - in_set) * touched


def predict(spec: MigrationSpec) -> Prediction:
    """Expected passes, bytes, total time and downtime of ``spec``'s migration.

    Compression is not modelled: with it the figures are an upper bound.
    """
    ps = spec.page_size
    link_rate = spec.bandwidth_bps / 8 / ps
    classes = _classes(spec)
    kind = spec.workload.kind
    in_set = [float(size) for size, _ in classes]
    sent = float(spec.pages)
    payload = float(spec.pages - spec.zero_pages)
    pages_per_pass: list[int] = []
    moving = 0.0
    total_payload = 0.0
    dirty_rate = 0.0
    passes = 0
    while True:
        passes += 1
        seconds = payload / link_rate
        moving += seconds
        total_payload += payload
        pages_per_pass.append(round(sent))
        dirty = [
            _redirtied(kind, size, rate, s, seconds)
            for (size, rate), s in zip(classes, in_set, strict=True)
        ]
        remaining = sum(dirty)
        dirty_rate = remaining / seconds if seconds > 0 else 0.0
        reason = stop_reason(spec, passes=passes, remaining_pages=round(remaining))
        if reason is not None:
            break
        in_set = dirty
        sent = payload = remaining
    final = round(remaining)
    downtime = (final * ps + spec.state_size) * 8 / spec.bandwidth_bps
    converges = reason != "pass_cap"
    if converges:
        text = (
            f"converges: {final} dirty pages left after {passes} "
            f"pass{'es' if passes > 1 else ''} ({reason} rule)"
        )
    else:
        text = (
            f"will not converge: the guest dirties {dirty_rate:,.0f} pages/s of its "
            f"working set while the link drains {link_rate:,.0f} pages/s; pre-copy "
            f"stops at the pass cap of {spec.pass_cap} with {final} pages dirty"
        )
    return Prediction(
        passes=passes,
        stop_reason=reason,
        pages_per_pass=tuple(pages_per_pass),
        final_dirty_pages=final,
        bytes_sent=round(total_payload) * ps + final * ps + spec.state_size,
        total_time_s=moving + downtime,
        downtime_s=downtime,
        converges=converges,
        reason=text,
        dirty_rate=dirty_rate,
        link_rate=link_rate,
    )
