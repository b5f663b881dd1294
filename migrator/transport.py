"""What moving pages costs on the simulated clock, per performance option.

One home for the cost rules the engine applies as it moves pages and the
predictor applies to the pages it expects: the link's rate
(:attr:`MigrationSpec.link_bps`), the time a batch of pages takes
(:func:`send_seconds`: the link carries the payload while the source's CPU
encodes deltas, so the slower of the two sets the pace), and what a re-sent
page costs as a delta (:func:`delta_bytes`, measured by encoding a page the way the
guest's writes leave it).
"""

from __future__ import annotations

import random
from functools import lru_cache

from . import delta
from .spec import MigrationSpec

__all__ = [
    "blackout_seconds",
    "delta_bytes",
    "page_seconds",
    "send_seconds",
    "state_seconds",
]


def send_seconds(spec: MigrationSpec, payload: float, encoded: float = 0.0) -> float:
    """Seconds to send ``payload`` bytes, of which ``encoded`` raw bytes were deltas.

    Encoding and sending overlap (the source encodes the next pages while the
    link carries the last), so the slower one paces the batch.
    """
    seconds = payload * 8 / spec.link_bps
    if encoded:
        seconds = max(seconds, encoded * 8 / spec.compression_bps)
    return seconds


def state_seconds(spec: MigrationSpec) -> float:
    """Seconds to send the register and device state (raw) in the blackout."""
    return spec.state_size * 8 / spec.link_bps


@lru_cache(maxsize=256)
def _measured(page_size: int, changed: int) -> int:
    rng = random.Random(page_size * 7919 + changed)
    old = rng.randbytes(page_size)
    new = rng.randbytes(changed) + old[changed:]
    return min(page_size, len(delta.encode(old, new)))


def delta_bytes(spec: MigrationSpec) -> int:
    """Link bytes of one re-sent page under compression (a page without it).

    A write leaves new content in the first ``round(page_change_share ·
    page_size)`` bytes of its page, so its delta against the copy the
    destination holds is those bytes' lines (:mod:`migrator.delta`); the
    engine sends the page plain when that is no smaller. This encodes such a
    page once, with the engine's encoder.
    """
    ps = spec.page_size
    if not spec.compresses:
        return ps
    return _measured(ps, max(1, round(spec.workload.page_change_share * ps)))


def page_seconds(spec: MigrationSpec, *, resent: bool) -> float:
    """Seconds one non-zero page takes: first sends plain, re-sends as deltas."""
    if resent and spec.compresses:
        return send_seconds(spec, delta_bytes(spec), spec.page_size)
    return send_seconds(spec, spec.page_size)


def blackout_seconds(spec: MigrationSpec, resent: float, fresh: float = 0.0) -> float:
    """The blackout if pre-copy stopped with these pages dirty, and the state.

    ``resent`` pages were sent before (deltas under compression); ``fresh``
    ones never were (plain: only a move stopped inside its first pass has
    them).
    """
    ps = spec.page_size
    encoded = resent * ps if spec.compresses else 0.0
    payload = resent * delta_bytes(spec) + fresh * ps
    return send_seconds(spec, payload, encoded) + state_seconds(spec)
