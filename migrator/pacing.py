"""Real-time pacing for the live console: a thin layer over the engine's events.

The engine runs on a simulated clock as fast as the machine allows. A console
that wants to watch a move unfold wraps the event iterator in :func:`paced`,
which sleeps so that simulated time advances at ``speed`` × wall time. Like
simpy's ``rt`` module it is kept apart from the core; sleep and clock are
injected so tests need not wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import SpecError
from .events import Event

__all__ = ["paced"]

E = TypeVar("E", bound=Event)


def paced(
    events: Iterable[E],
    *,
    speed: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[E]:
    """Yield each event no earlier than ``event.t / speed`` wall seconds after start.

    ``speed`` 2.0 plays a 10 s migration in 5 s; ``math.inf`` does not wait.
    An engine slower than the requested pace is never waited for twice: the
    schedule is anchored to the start, so lateness is not accumulated.
    """
    if not (speed > 0):  # also refuses NaN
        raise SpecError("speed", f"must be positive, got {speed!r}")
    start = clock()
    for event in events:
        if not math.isinf(speed):
            delay = start + event.t / speed - clock()
            if delay > 0:
                sleep(delay)
        yield event
