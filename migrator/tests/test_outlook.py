"""The outlook of a running move: the same model, from what has happened so far."""

from __future__ import annotations

import pytest

from migrator.engine import Engine
from migrator.events import Completed, PassFinished, Progress
from migrator.predict import outlook, outlook_at
from migrator.spec import MIB, MigrationSpec, WorkloadSpec

DATABASE = WorkloadSpec(kind="uniform", working_set_pages=4096, write_rate=8000)


def _spec(option: str = "compression") -> MigrationSpec:
    return MigrationSpec(
        memory_bytes=256 * MIB,
        workload=DATABASE,
        performance_option=option,
        zero_fraction=0.25,
        downtime_limit_s=0.01,
        seed=4,
    )


def _run(
    spec: MigrationSpec,
) -> tuple[list[PassFinished], list[Progress], float, Completed]:
    engine = Engine(spec)
    events = list(engine.events())
    passes = [e for e in events if isinstance(e, PassFinished)]
    progress = [e for e in events if isinstance(e, Progress)]
    done = events[-1]
    assert isinstance(done, Completed)
    return passes, progress, events[-1].t, done


@pytest.mark.parametrize("option", ["tcpip", "compression"])
def test_after_each_pass_the_outlook_foresees_the_rest(option: str) -> None:
    spec = _spec(option)
    passes, _, end, done = _run(spec)
    result = done.result
    assert result.passes >= 2
    for event in passes:
        view = outlook(
            spec, passes_done=event.pass_no, dirty_pages=event.remaining_dirty_pages
        )
        assert view.passes == result.passes
        assert view.converges
        assert view.downtime_s == pytest.approx(result.downtime_s, rel=0.25, abs=0.005)
        # ETA: simulated seconds until the network is redirected.
        assert view.eta_s == pytest.approx(end - event.t, rel=0.15)
        assert view.text.startswith(f"converges in {result.passes} passes; downtime")
    # Stopped after its last pass, the blackout is the one the move had.
    last = outlook(
        spec,
        passes_done=passes[-1].pass_no,
        dirty_pages=passes[-1].remaining_dirty_pages,
    )
    assert last.blackout_if_stopped_s == pytest.approx(result.downtime_s, rel=0.05)
    assert passes[-1].expected_downtime_s == pytest.approx(last.blackout_if_stopped_s)


def test_blackout_if_stopped_after_pass_one_costs_what_pass_two_then_took() -> None:
    # Issue 11: under Compression the estimate after pass 1 said 756 ms for
    # pages that pass 2 re-sent in 8 ms. The same pages, the same cost now.
    spec = _spec("compression")
    passes, _, _, _ = _run(spec)
    first, second = passes[0], passes[1]
    view = outlook(spec, passes_done=1, dirty_pages=first.remaining_dirty_pages)
    state = spec.state_size * 8 / spec.link_bps
    assert view.blackout_if_stopped_s - state == pytest.approx(
        second.duration_s, rel=0.05
    )


def test_inside_pass_one_unsent_pages_count_plain_and_the_eta_shrinks() -> None:
    spec = _spec("compression")
    _, progress, end, _ = _run(spec)
    first = [p for p in progress if p.pass_no == 1]
    views = []
    for event in (first[len(first) // 4], first[-1]):
        view = outlook_at(spec, event)
        assert view.eta_s == pytest.approx(end - event.t, rel=0.15)
        views.append(view)
    early, late = views
    assert early.blackout_if_stopped_s > late.blackout_if_stopped_s
    assert early.eta_s > late.eta_s


def test_outlook_at_a_pass_event_is_the_outlook_after_that_pass() -> None:
    spec = _spec("tcpip")
    passes, _, _, _ = _run(spec)
    event = passes[0]
    assert outlook_at(spec, event) == outlook(
        spec, passes_done=1, dirty_pages=event.remaining_dirty_pages
    )


def test_outlook_refuses_impossible_observations() -> None:
    spec = _spec()
    with pytest.raises(ValueError, match="passes_done"):
        outlook(spec, passes_done=-1, dirty_pages=10)
    with pytest.raises(ValueError, match="unsent_pages"):
        outlook(spec, passes_done=0, dirty_pages=10, unsent_pages=11)
