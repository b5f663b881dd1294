from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from migrator.errors import SpecError
from migrator.events import StageStarted
from migrator.pacing import paced
from migrator.stages import Stage


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _events(*times: float) -> list[StageStarted]:
    return [StageStarted(t=t, stage=Stage.MEMORY_TRANSFER) for t in times]


def test_simulated_time_runs_at_speed_times_wall_time() -> None:
    fake = FakeTime()
    out = list(
        paced(_events(0.0, 1.0, 2.5), speed=2.0, sleep=fake.sleep, clock=fake.clock)
    )
    assert [e.t for e in out] == [0.0, 1.0, 2.5]
    assert fake.sleeps == pytest.approx([0.5, 0.75])


def test_a_slow_engine_is_not_waited_for() -> None:
    fake = FakeTime()

    def slow() -> list[StageStarted]:
        return _events(0.0, 1.0, 2.0)

    it = paced(slow(), speed=1.0, sleep=fake.sleep, clock=fake.clock)
    next(it)
    fake.now += 1.5  # the consumer took 1.5 s over the first event
    next(it)
    next(it)
    assert fake.sleeps == pytest.approx([0.5])


def test_infinite_speed_never_sleeps_and_bad_speed_is_refused() -> None:
    fake = FakeTime()
    list(paced(_events(0.0, 50.0), speed=math.inf, sleep=fake.sleep, clock=fake.clock))
    assert fake.sleeps == []
    with pytest.raises(SpecError):
        list(paced(_events(0.0), speed=0.0))


def test_a_costly_step_is_computed_while_waiting_and_its_event_is_on_time() -> None:
    """The blackout's verification costs more wall time than it simulates:
    computed ahead, during the wait for the event before it, its event is
    due on time and the move's wall time matches its simulated time."""
    fake = FakeTime()
    start = fake.now

    def engine() -> Iterator[StageStarted]:
        yield StageStarted(t=0.0, stage=Stage.MEMORY_TRANSFER)
        yield StageStarted(t=2.0, stage=Stage.STATE_TRANSFER)
        fake.now += 0.3  # verifying every page: 0.3 s of work for 0.1 s simulated
        yield StageStarted(t=2.1, stage=Stage.STORAGE_TRANSFER)

    seen = []
    for event in paced(engine(), speed=1.0, sleep=fake.sleep, clock=fake.clock):
        seen.append((event.t, fake.now - start))
    assert seen == [(0.0, 0.0), (2.0, 2.0), (2.1, pytest.approx(2.1))]


def test_without_looking_ahead_the_costly_step_makes_its_event_late() -> None:
    fake = FakeTime()
    start = fake.now

    def engine() -> Iterator[StageStarted]:
        yield StageStarted(t=0.0, stage=Stage.MEMORY_TRANSFER)
        yield StageStarted(t=2.0, stage=Stage.STATE_TRANSFER)
        fake.now += 0.3
        yield StageStarted(t=2.1, stage=Stage.STORAGE_TRANSFER)

    it = paced(engine(), speed=1.0, sleep=fake.sleep, clock=fake.clock, ahead=0)
    assert [round(fake.now - start, 3) for _ in it] == [0.0, 2.0, 2.3]


def test_closing_the_paced_iterator_closes_the_engine() -> None:
    fake = FakeTime()
    closed = []

    def engine() -> Iterator[StageStarted]:
        try:
            yield from _events(0.0, 1.0, 2.0)
        finally:
            closed.append(True)

    it = paced(engine(), speed=1.0, sleep=fake.sleep, clock=fake.clock)
    next(it)
    it.close()
    assert closed == [True]
