from __future__ import annotations

import math

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
