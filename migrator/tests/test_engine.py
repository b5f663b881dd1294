from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from migrator.engine import CancelToken, Engine, migrate, run
from migrator.events import (
    Cancelled,
    Completed,
    Event,
    Failed,
    PassFinished,
    Progress,
    StageStarted,
)
from migrator.result import MigrationResult
from migrator.spec import MIB, POLICIES, Faults, MigrationSpec, WorkloadSpec
from migrator.stages import Stage
from migrator.transport import delta_bytes

from .conftest import small_spec

PS = 4096
CONVERGING = {"kind": "uniform", "working_set_pages": 2048, "write_rate": 1e4}
SATURATED = {
    "kind": "hotcold",
    "working_set_pages": 4096,
    "write_rate": 2e5,
    "hot_fraction": 0.25,
    "hot_write_share": 0.95,
}
NEVER = {"kind": "uniform", "working_set_pages": 4096, "write_rate": 1e6}
#: Faults and cancel leave the source untouched under every policy (issue 17).
EVERY_POLICY = pytest.mark.parametrize("policy", POLICIES)


def _events(engine: Engine) -> list[Event]:
    return list(engine.events())


def _result(engine: Engine) -> MigrationResult:
    assert engine.result is not None
    return engine.result


def _close(actual: int, predicted: int, rel: float = 0.15, slack: int = 15) -> bool:
    return abs(actual - predicted) <= rel * predicted + slack


# -- agreement with the analytic model ---------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_converging_workload_agrees_with_the_model(seed: int) -> None:
    spec = small_spec(32 * MIB, workload=CONVERGING, downtime_limit_s=0.0, seed=seed)
    result = migrate(spec)
    predicted = result.predicted
    assert result.verified and result.ok
    assert predicted.converges
    assert result.stop_reason == predicted.stop_reason == "threshold"
    assert result.passes == predicted.passes
    for actual, model in zip(
        result.pages_per_pass, predicted.pages_per_pass, strict=True
    ):
        assert _close(actual, model), (result.pages_per_pass, predicted.pages_per_pass)
    assert result.total_time_s == pytest.approx(predicted.total_time_s, rel=0.05)


def test_saturated_hot_set_agrees_with_the_model() -> None:
    spec = small_spec(32 * MIB, workload=SATURATED, downtime_limit_s=0.0, seed=3)
    result = migrate(spec)
    predicted = result.predicted
    assert result.stop_reason == predicted.stop_reason == "pass_cap"
    assert result.passes == predicted.passes == 10
    # The hot set (1024 pages) stays dirty pass after pass.
    assert result.final_dirty_pages >= 1000
    assert _close(result.final_dirty_pages, predicted.final_dirty_pages)
    for actual, model in zip(
        result.pages_per_pass, predicted.pages_per_pass, strict=True
    ):
        assert _close(actual, model)


def test_never_converging_workload_agrees_with_the_model() -> None:
    spec = small_spec(
        16 * MIB, workload=NEVER, downtime_limit_s=0.0, host_version="2012 R2"
    )
    result = migrate(spec)
    predicted = result.predicted
    assert not predicted.converges
    assert "will not converge" in predicted.reason
    assert result.stop_reason == "pass_cap" and result.passes == 5
    assert _close(result.final_dirty_pages, predicted.final_dirty_pages, rel=0.05)
    assert result.verified


def test_same_seed_same_result_other_seed_other_result() -> None:
    def figures(seed: int) -> dict[str, object]:
        out = migrate(small_spec(workload=CONVERGING, seed=seed, zero_fraction=0.1))
        d = out.to_dict()
        for key in ("wall_time_s", "allocation_time_s", "setup_time_s"):
            d.pop(key)
        return d

    assert figures(11) == figures(11)
    assert figures(11) != figures(12)


# -- stop rules --------------------------------------------------------------


def test_downtime_rule_stops_with_pages_still_dirty() -> None:
    spec = small_spec(16 * MIB, workload=CONVERGING, min_dirty_pages=0)
    result = migrate(spec)
    assert result.stop_reason == "downtime"
    assert result.final_dirty_pages > 0
    assert result.final_dirty_pages * PS * 8 / spec.bandwidth_bps <= 0.3
    assert result.downtime_s == pytest.approx(
        (result.final_dirty_pages * PS + spec.state_size) * 8 / spec.bandwidth_bps
    )


def test_threshold_rule_when_downtime_rule_is_off() -> None:
    result = migrate(small_spec(downtime_limit_s=0.0))
    assert result.stop_reason == "threshold"
    assert result.passes == 1 and result.final_dirty_pages == 0


@pytest.mark.parametrize(("version", "cap"), [("2008 R2", 10), ("2016", 5)])
def test_pass_cap_rule_follows_the_host_version(version: str, cap: int) -> None:
    spec = small_spec(
        4 * MIB,
        workload={"kind": "uniform", "working_set_pages": 512, "write_rate": 1e6},
        downtime_limit_s=0.0,
        host_version=version,
    )
    result = migrate(spec)
    assert result.stop_reason == "pass_cap"
    assert result.passes == cap == len(result.pages_per_pass)


# -- pages, zero pages, compression, verification ----------------------------


def test_first_pass_sends_every_page_and_zero_pages_carry_no_payload() -> None:
    spec = small_spec(zero_fraction=0.25)
    result = migrate(spec)
    pages = spec.pages
    zeros = round(0.25 * pages)
    assert result.pages_per_pass == (pages,)
    assert result.zero_pages == zeros
    assert result.bytes_sent == (pages - zeros) * PS + spec.state_size
    assert result.total_time_s == pytest.approx(result.bytes_sent * 8 / 1e9)
    assert result.verified


def test_compression_shrinks_resent_bytes() -> None:
    # Issue 11: a write changes page_change_share of its page (0.4 by default),
    # so a re-sent page costs that share of a page as a delta, no less.
    plain = migrate(small_spec(16 * MIB, workload=CONVERGING, downtime_limit_s=0.0))
    spec = small_spec(
        16 * MIB, workload=CONVERGING, downtime_limit_s=0.0, compression=True
    )
    packed = migrate(spec)
    assert packed.verified and plain.verified
    assert packed.bytes_per_pass[0] == plain.bytes_per_pass[0]  # first copy: raw
    assert plain.bytes_per_pass[1] == plain.pages_per_pass[1] * PS
    resent = packed.pages_per_pass[1]
    assert packed.bytes_per_pass[1] == pytest.approx(
        resent * delta_bytes(spec), rel=0.02
    )
    assert 0.4 * resent * PS < packed.bytes_per_pass[1] < 0.45 * resent * PS
    assert packed.bytes_saved_by_compression > 0


def test_smaller_writes_make_smaller_deltas() -> None:
    def resent_share(share: float) -> float:
        workload = WorkloadSpec(**CONVERGING, page_change_share=share)  # type: ignore[arg-type]
        result = migrate(
            small_spec(
                16 * MIB, workload=workload, downtime_limit_s=0.0, compression=True
            )
        )
        return result.bytes_per_pass[1] / (result.pages_per_pass[1] * PS)

    assert resent_share(0.05) < 0.1 < resent_share(0.4) < 0.5 < resent_share(1.0)


@EVERY_POLICY
def test_verification_catches_a_corrupted_page(policy: str) -> None:
    engine = Engine(small_spec(policy=policy), faults=Faults(corrupt_page=123))
    events = _events(engine)
    result = _result(engine)
    assert isinstance(events[-1], Failed)
    assert events[-1].stage is Stage.STATE_TRANSFER
    assert events[-1].code == "verification_failed"
    assert "page 123" in events[-1].reason
    assert result.location == "source" and not result.verified
    assert not any(
        isinstance(e, StageStarted) and e.stage is Stage.ONLINE for e in events
    )


# -- events and stages --------------------------------------------------------


def test_stages_run_in_order_and_online_comes_before_the_rest() -> None:
    engine = Engine(small_spec(workload=CONVERGING))
    events = _events(engine)
    started = [e.stage for e in events if isinstance(e, StageStarted)]
    assert started == list(Stage)
    online = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, StageStarted) and e.stage is Stage.ONLINE
    )
    after = events[online + 1 :]
    assert [e.kind for e in after] == [
        "stage_finished",
        "stage_started",
        "stage_finished",
        "completed",
    ]
    assert (
        isinstance(events[-1], Completed)
        and events[-1].result.location == "destination"
    )
    times = [e.t for e in events]
    assert times == sorted(times)


def test_progress_is_bounded_and_never_runs_backwards() -> None:
    engine = Engine(
        small_spec(64 * MIB, workload=CONVERGING, memory_budget_bytes=256 * MIB)
    )
    events = _events(engine)
    progress = [e for e in events if isinstance(e, Progress)]
    passes = [e for e in events if isinstance(e, PassFinished)]
    assert 50 <= len(progress) <= 140 * len(passes)
    sent = [p.bytes_sent for p in progress]
    assert sent == sorted(sent)
    assert all(p.link_rate == pytest.approx(1e9 / 8 / PS) for p in progress)
    assert passes[0].pages_sent == 16384
    assert passes[0].remaining_dirty_pages == passes[0].pages_dirtied > 0


def test_events_can_only_be_run_once() -> None:
    engine = Engine(small_spec(1 * MIB))
    list(engine.events())
    with pytest.raises(Exception, match="runs once"):
        engine.events()


# -- faults and cancel leave the VM on the source ----------------------------


def _run_with(spec: MigrationSpec, **kw: object) -> tuple[Engine, list[Event], bytes]:
    engine = Engine(spec, **kw)  # type: ignore[arg-type]
    before = bytes(engine.source.data)
    events = _events(engine)
    return engine, events, before


def _assert_left_on_source(engine: Engine, before: bytes, stage: Stage) -> None:
    result = _result(engine)
    assert result.location == "source" and result.outcome != "completed"
    assert result.failed_stage == stage.value
    assert engine.destination is None
    assert engine.source.data == before  # the engine never writes the source


@EVERY_POLICY
def test_link_failure_during_a_pass(policy: str) -> None:
    engine, events, before = _run_with(
        small_spec(policy=policy), faults=Faults(link_failure_pass=1)
    )
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "link_failed"
    assert last.stage is Stage.MEMORY_TRANSFER
    assert not any(isinstance(e, PassFinished) for e in events)
    _assert_left_on_source(engine, before, Stage.MEMORY_TRANSFER)


@EVERY_POLICY
def test_link_failure_in_a_later_pass_names_the_stage(policy: str) -> None:
    engine = Engine(
        small_spec(policy=policy, workload=CONVERGING, downtime_limit_s=0.0),
        faults=Faults(link_failure_pass=2),
    )
    events = _events(engine)
    assert [e.pass_no for e in events if isinstance(e, PassFinished)] == [1]
    assert isinstance(events[-1], Failed)
    assert _result(engine).failed_stage == "memory_transfer"


@pytest.mark.parametrize(
    ("offset", "stage"),
    [
        (1000, Stage.CONFIGURATION_TRANSFER),
        (16 * 1024 + 4 * MIB, Stage.MEMORY_TRANSFER),
        (16 * 1024 + 8 * MIB + 100, Stage.STATE_TRANSFER),
    ],
)
@EVERY_POLICY
def test_link_failure_at_a_byte_offset(offset: int, stage: Stage, policy: str) -> None:
    engine, events, before = _run_with(
        small_spec(policy=policy), faults=Faults(link_failure_byte=offset)
    )
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "link_failed"
    assert last.stage is stage
    assert str(offset) in last.reason
    _assert_left_on_source(engine, before, stage)


@EVERY_POLICY
def test_destination_refusal_fails_stage_two(policy: str) -> None:
    engine, events, before = _run_with(
        small_spec(policy=policy), faults=Faults(refuse_destination=True)
    )
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "destination_refused"
    assert last.stage is Stage.DESTINATION_CREATION
    assert _result(engine).allocation_time_s == 0.0
    _assert_left_on_source(engine, before, Stage.DESTINATION_CREATION)


def _cancelling(
    engine: Engine, token: CancelToken, when: type[Event], stage: Stage | None = None
) -> Iterator[Event]:
    for event in engine.events():
        yield event
        if isinstance(event, when) and (
            stage is None or getattr(event, "stage", None) is stage
        ):
            token.cancel("operator changed their mind")


@EVERY_POLICY
def test_cancel_during_memory_transfer_stops_within_one_batch(policy: str) -> None:
    token = CancelToken()
    engine = Engine(small_spec(32 * MIB, policy=policy), cancel=token)
    before = bytes(engine.source.data)
    events = list(_cancelling(engine, token, Progress))
    first = next(i for i, e in enumerate(events) if isinstance(e, Progress))
    assert len(events) == first + 2  # the very next batch boundary stops it
    last = events[-1]
    assert isinstance(last, Cancelled) and last.stage is Stage.MEMORY_TRANSFER
    assert last.reason == "operator changed their mind"
    _assert_left_on_source(engine, before, Stage.MEMORY_TRANSFER)
    assert _result(engine).outcome == "cancelled"


@EVERY_POLICY
def test_cancel_during_destination_creation(policy: str) -> None:
    token = CancelToken()
    engine = Engine(small_spec(policy=policy), cancel=token)
    before = bytes(engine.source.data)
    events = list(_cancelling(engine, token, StageStarted, Stage.DESTINATION_CREATION))
    assert isinstance(events[-1], Cancelled)
    _assert_left_on_source(engine, before, Stage.DESTINATION_CREATION)


@EVERY_POLICY
def test_cancel_before_start_names_configuration_transfer(policy: str) -> None:
    engine = Engine(small_spec(policy=policy), cancel=lambda: True)
    events = _events(engine)
    assert isinstance(events[-1], Cancelled)
    assert events[-1].stage is Stage.CONFIGURATION_TRANSFER


@EVERY_POLICY
def test_cancel_after_memory_transfer_is_too_late(policy: str) -> None:
    token = CancelToken()
    engine = Engine(small_spec(policy=policy), cancel=token)
    events = list(_cancelling(engine, token, StageStarted, Stage.STATE_TRANSFER))
    assert isinstance(events[-1], Completed)
    assert _result(engine).location == "destination"


# -- bounded memory ------------------------------------------------------------


def test_large_vm_is_sampled_within_the_budget() -> None:
    budget = 16 * MIB
    spec = small_spec(
        64 * MIB,
        memory_budget_bytes=budget,
        zero_fraction=0.5,
        workload={"kind": "uniform", "working_set_pages": 4096, "write_rate": 2e4},
    )
    tracemalloc.start()
    try:
        result = migrate(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.sampled and result.verified
    assert 0.1 < result.sample_fraction < 0.2
    assert peak < budget + 2 * MIB  # fill pattern and workload tables on top
    assert result.pages_per_pass[0] == spec.pages  # scaled back up
    # Half the pages start zero; the guest dirties some before they are sent.
    assert 0.4 * spec.pages < result.zero_pages <= 0.5 * spec.pages + 8
    predicted = result.predicted
    assert result.passes == predicted.passes
    assert _close(result.final_dirty_pages, predicted.final_dirty_pages, rel=0.25)


def test_small_vm_is_not_sampled() -> None:
    result = migrate(small_spec())
    assert not result.sampled and result.sample_fraction == 1.0


def test_wall_time_excludes_time_the_caller_holds_events() -> None:
    ticks = iter(range(10**6))
    engine = Engine(small_spec(1 * MIB), wall_clock=lambda: float(next(ticks)))
    count = 0
    for _ in engine.events():
        count += 1
        next(ticks)  # the caller "spends" ticks; none may be billed to the engine
        next(ticks)
    result = _result(engine)
    # Each stretch of engine work between two yields reads the clock twice (one
    # tick); billing the caller would cost at least three ticks per event.
    assert result.wall_time_s <= count + 1
    assert result.allocation_time_s == 1.0
    assert result.setup_time_s == 1.0


def test_idle_spec_defaults_to_idle_workload() -> None:
    assert MigrationSpec().workload == WorkloadSpec()


@pytest.mark.parametrize(
    "workload",
    [
        {"kind": "sweep", "working_set_pages": 700, "write_rate": 3e4},
        {"kind": "hotcold", "working_set_pages": 1500, "write_rate": 4e4},
    ],
)
def test_compression_zero_pages_and_writes_together_still_verify(
    workload: dict[str, object],
) -> None:
    spec = small_spec(
        workload=workload, zero_fraction=0.4, compression=True, downtime_limit_s=0.0
    )
    result = migrate(spec)
    assert result.verified and result.ok
    assert result.passes > 1
    assert result.zero_pages >= round(0.4 * spec.pages) - 1500
    assert sum(result.bytes_per_pass[1:]) < sum(result.pages_per_pass[1:]) * PS


def test_run_yields_the_same_events_as_an_engine() -> None:
    spec = small_spec(workload=CONVERGING)
    kinds = [e.kind for e in run(spec)]
    assert kinds[0] == "stage_started" and kinds[-1] == "completed"
    assert kinds == [e.kind for e in Engine(spec).events()]


# -- convergence policies (issue 17) -------------------------------------------

#: A guest the link can never catch: every pass is unproductive and stalls.
#: 4,096 dirty pages need 1.34 s on 100 Mbit/s (over 500 ms, under 5 s).
RUNAWAY = {"kind": "uniform", "working_set_pages": 4096, "write_rate": 1e5}


def _runaway(policy: str, **kw: object) -> MigrationSpec:
    fields: dict[str, object] = {
        "workload": RUNAWAY,
        "bandwidth_bps": 100e6,
        "downtime_limit_s": 0.1,
        "host_version": "2008 R2",
        "policy": policy,
    }
    return small_spec(16 * MIB, **(fields | kw))


def test_throttle_steps_exactly_as_written_on_a_runaway_guest() -> None:
    spec = _runaway("throttle", max_passes=12, downtime_limit_s=0.0)
    unthrottled = migrate(_runaway("hyperv", max_passes=12, downtime_limit_s=0.0))
    result = migrate(spec)
    assert not unthrottled.predicted.converges
    assert unthrottled.throttle_pct_per_pass == (0.0,) * 12
    # During each pass: none, none (the first unproductive pass only counts),
    # then 20 %, +10 % a pass, at most 99 %.
    expected = (0, 0, 20, 30, 40, 50, 60, 70, 80, 90, 99, 99)
    assert result.throttle_pct_per_pass == expected
    assert result.predicted.throttle_pct_per_pass == expected
    assert result.ok and result.policy == "throttle"
    assert 40 < result.guest_slowdown_pct < 99
    assert result.guest_slowdown_pct == pytest.approx(
        result.predicted.guest_slowdown_pct, abs=5
    )
    assert result.workload_writes < unthrottled.workload_writes


def test_escalate_raises_the_limit_and_aborts_at_the_cap_on_the_source() -> None:
    engine = Engine(_runaway("escalate"))
    events = _events(engine)
    result = _result(engine)
    last = events[-1]
    assert isinstance(last, Failed) and last.code == "NOT_CONVERGING"
    assert last.stage is Stage.MEMORY_TRANSFER
    assert "keeps running on its source" in last.reason
    assert result.aborted and result.outcome == "failed"
    assert result.location == "source" and engine.destination is None
    assert result.failure_code == "NOT_CONVERGING"
    assert result.passes == 10 and result.stop_reason == "pass_cap"
    assert result.downtime_limit_ms_per_pass == pytest.approx(
        (150, 200, 300, 400, 500, 500, 500, 500, 500, 500)
    )
    assert result.downtime_s == 0.0 and result.guest_slowdown_pct == 0.0
    assert not any(isinstance(e, StageStarted) and e.stage.number > 3 for e in events)
    predicted = result.predicted
    assert predicted.aborted and not predicted.converges
    assert predicted.downtime_limit_ms_per_pass == result.downtime_limit_ms_per_pass
    assert (
        "NOT_CONVERGING" in predicted.reason
        and "stays on its source" in predicted.reason
    )


@pytest.mark.parametrize("policy", POLICIES)
def test_each_pass_event_carries_its_throttle_and_the_limit_in_force(
    policy: str,
) -> None:
    engine = Engine(_runaway(policy, max_passes=8))
    passes = [e for e in _events(engine) if isinstance(e, PassFinished)]
    result = _result(engine)
    # The figures a viewer sees per pass are the result's, pass by pass.
    assert tuple(p.throttle_pct for p in passes) == result.throttle_pct_per_pass
    assert tuple(p.downtime_limit_ms for p in passes) == pytest.approx(
        result.downtime_limit_ms_per_pass
    )
    assert len(passes) == result.passes


def test_suspend_if_needed_converges_where_escalate_aborts() -> None:
    result = migrate(_runaway("suspend-if-needed"))
    assert migrate(_runaway("escalate")).aborted
    assert result.ok and not result.aborted and result.verified
    assert result.stop_reason == "downtime"
    # The sixth stall brings the 5,000 ms step; the 1.34 s blackout fits it.
    assert result.downtime_limit_ms_per_pass[-1] == pytest.approx(5000)
    assert result.passes == 6
    assert 1.0 < result.downtime_s < 5.0
    assert result.guest_slowdown_pct > 0
    assert result.predicted.passes == 6 and result.predicted.stop_reason == "downtime"


def test_a_converging_workload_behaves_alike_under_every_policy() -> None:
    def figures(policy: str) -> dict[str, object]:
        spec = small_spec(
            workload=CONVERGING, seed=5, downtime_limit_s=0.0, policy=policy
        )
        d = migrate(spec).to_dict()
        for key in ("wall_time_s", "allocation_time_s", "setup_time_s", "policy"):
            d.pop(key)
        d["predicted"].pop("policy")
        return d

    reference = figures("hyperv")
    assert reference["passes"] > 1  # type: ignore[operator]
    for policy in POLICIES[1:]:
        assert figures(policy) == reference


@EVERY_POLICY
def test_cancel_of_a_runaway_move_leaves_it_on_the_source(policy: str) -> None:
    token = CancelToken()
    engine = Engine(_runaway(policy), cancel=token)
    events = []
    for event in engine.events():
        events.append(event)
        if isinstance(event, PassFinished) and event.pass_no == 4:
            token.cancel("operator gave up")
    result = _result(engine)
    assert isinstance(events[-1], Cancelled)
    assert result.outcome == "cancelled" and result.location == "source"
    assert engine.destination is None and not result.aborted
    assert result.passes == 4
