"""Real-time pacing for the live console: a thin layer over the engine's events.

The engine runs on a simulated clock as fast as the machine allows. A console
that wants to watch a move unfold wraps the event iterator in :func:`paced`,
which sleeps so that simulated time advances at ``speed`` × wall time. Like
simpy's ``rt`` module it is kept apart from the core; sleep and clock are
injected so tests need not wait.

Pacing can only wait, never hurry; so it keeps its word by two means:

* the schedule is absolute (event ``k`` is due at ``start + t_k / speed``), so
  an event that came late makes the following waits shorter, and lateness is
  never added up;
* while it waits for an event's due time it has the engine compute the next
  ones (up to ``ahead`` wall seconds of them), so that a costly step of the
  simulation (the blackout's verification of every page takes longer than its
  simulated 0.2 s on a small machine) is done in time the move spends waiting
  anyway, and its events are ready when they are due.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TypeVar

from .errors import SpecError
from .events import Event

__all__ = ["paced"]

E = TypeVar("E", bound=Event)

#: How far ahead of the wall clock (seconds) the engine may compute by default.
AHEAD_S = 1.0


def paced(
    events: Iterable[E],
    *,
    speed: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    ahead: float = AHEAD_S,
) -> Generator[E, None, None]:
    """Yield each event no earlier than ``event.t / speed`` wall seconds after start.

    ``speed`` 2.0 plays a 10 s migration in 5 s; ``math.inf`` does not wait.
    An engine slower than the requested pace is never waited for twice: the
    schedule is anchored to the start, so lateness is not accumulated. Events
    due within ``ahead`` seconds are computed before the one at hand is
    yielded (0: one at a time). Closing the iterator closes ``events``.
    """
    if not (speed > 0):  # also refuses NaN
        raise SpecError("speed", f"must be positive, got {speed!r}")
    source = iter(events)
    try:
        if math.isinf(speed):
            yield from source
            return
        yield from _scheduled(source, speed, sleep, clock, ahead)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _scheduled(
    source: Iterator[E],
    speed: float,
    sleep: Callable[[float], object],
    clock: Callable[[], float],
    ahead: float,
) -> Iterator[E]:
    start = clock()
    due: deque[tuple[float, E]] = deque()  # computed, not yet yielded
    exhausted = False

    def pull() -> bool:
        nonlocal exhausted
        event = next(source, None)
        if event is None:
            exhausted = True
            return False
        due.append((start + event.t / speed, event))
        return True

    while due or (not exhausted and pull()):
        at, event = due[0]
        # Work ahead while the head is not due yet: compute the events due
        # up to ``ahead`` after it (each pull may take a while, so the clock
        # is read again each time).
        while not exhausted and clock() < at and due[-1][0] < at + ahead and pull():
            pass
        delay = at - clock()
        if delay > 0:
            sleep(delay)
        due.popleft()
        yield event
