"""The decision after each pre-copy pass: stop, or go on.

The engine and the predictor both call this module after every pass, so a
prediction and the move it predicts follow the same rules.
"""

from __future__ import annotations

from .spec import MigrationSpec

__all__ = ["STOP_REASONS", "stop_reason"]

#: Why pre-copy stopped, in the order the rules are checked.
STOP_REASONS: tuple[str, ...] = ("downtime", "threshold", "pass_cap")


def stop_reason(
    spec: MigrationSpec, *, passes: int, remaining_pages: float
) -> str | None:
    """The rule that ends pre-copy after ``passes`` passes, or ``None`` to go on.

    With ``R`` pages dirty: ``R·page_size/link_bps`` within the downtime limit
    (0 disables it), ``R`` at most ``min_dirty_pages``, or the pass cap reached.
    """
    seconds = remaining_pages * spec.page_size * 8 / spec.link_bps
    if spec.downtime_limit_s > 0 and seconds <= spec.downtime_limit_s:
        return "downtime"
    if remaining_pages <= spec.min_dirty_pages:
        return "threshold"
    if passes >= spec.pass_cap:
        return "pass_cap"
    return None
