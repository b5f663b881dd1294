"""The per-host queue on the clock: who starts when, in which slot."""

from __future__ import annotations

import pytest

from migrator import SpecError
from migrator.engine import migrate
from migrator.predict import predict
from migrator.schedule import Job, move_seconds, schedule
from migrator.spec import MIB
from migrator.units import format_span

from .conftest import small_spec


def test_queued_moves_start_as_slots_free_oldest_first() -> None:
    jobs = [
        Job(key="a", source="H1", destination="H2", seconds=10, running=True),
        Job(key="b", source="H1", destination="H3", seconds=4, running=True),
        Job(key="c", source="H1", destination="H2", seconds=5),
        Job(key="d", source="H1", destination="H3", seconds=5),
    ]
    got = {s.key: (s.start, s.end, s.waited, s.slot) for s in schedule(jobs, 2)}
    assert got == {
        "a": (0, 10, False, 1),
        "b": (0, 4, False, 2),
        "c": (4, 9, True, 2),  # b's end frees H1's second slot
        "d": (9, 14, True, 2),
    }


def test_a_busy_destination_holds_a_move_whose_source_is_free() -> None:
    jobs = [
        Job(key="x", source="H2", destination="H3", seconds=6, running=True),
        Job(key="y", source="H1", destination="H3", seconds=2),
    ]
    got = {s.key: (s.start, s.end) for s in schedule(jobs, 1)}
    assert got == {"x": (0, 6), "y": (6, 8)}


def test_a_bad_limit_is_refused_by_name() -> None:
    with pytest.raises(SpecError, match="limit"):
        schedule([], 0)


def test_move_seconds_is_the_engines_whole_move() -> None:
    spec = small_spec(16 * MIB, seed=2)
    result = migrate(spec)
    assert move_seconds(spec, predict(spec)) == pytest.approx(
        result.migration_time_s, rel=0.01
    )


def test_spans_read_in_minutes() -> None:
    assert format_span(160) == "2 min 40 s"
    assert format_span(3.2) == "3.2 s"
    assert format_span(3720) == "1 h 2 min"
