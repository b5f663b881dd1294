from __future__ import annotations

from migrator.policy import ABORT, GO_ON, STOP, Decision, Policy, stop_reason
from migrator.spec import MigrationSpec


def test_stop_rules_in_order() -> None:
    spec = MigrationSpec(min_dirty_pages=50, max_passes=3, downtime_limit_s=0.3)
    # 9155 pages of 4 KiB take 0.29999 s on 1 Gbit/s.
    assert stop_reason(spec, passes=1, remaining_pages=9155) == "downtime"
    off = MigrationSpec(min_dirty_pages=50, max_passes=3, downtime_limit_s=0.0)
    assert stop_reason(off, passes=1, remaining_pages=9155) is None
    assert stop_reason(off, passes=1, remaining_pages=50) == "threshold"
    assert stop_reason(off, passes=3, remaining_pages=9155) == "pass_cap"


def _steps(policy: str, passes: list[tuple[int, int]], **kw: float) -> list[Decision]:
    spec = MigrationSpec(policy=policy, max_passes=len(passes), **kw)  # type: ignore[arg-type]
    p = Policy(spec)
    return [
        p.after_pass(pass_no=i, pages_sent=sent, remaining=left)
        for i, (sent, left) in enumerate(passes, 1)
    ]


def test_hyperv_never_throttles_nor_escalates() -> None:
    decisions = _steps("hyperv", [(10000, 9900)] * 5, downtime_limit_s=0.01)
    assert [d.throttle_pct for d in decisions] == [0.0] * 5
    assert {d.downtime_limit_s for d in decisions} == {0.01}
    assert decisions[-1].action == STOP
    assert decisions[-1].stop_reason == "pass_cap"


def test_throttle_rises_from_the_second_unproductive_pass_by_the_steps() -> None:
    # Unproductive: re-dirtied ≥ 50 % of sent. 20 % first, then +10 %, at most 99 %.
    decisions = _steps("throttle", [(10000, 5000)] * 12, downtime_limit_s=0.0)
    throttles = [d.throttle_pct for d in decisions]
    assert throttles == [0, 20, 30, 40, 50, 60, 70, 80, 90, 99, 99, 99]
    assert all(d.action == GO_ON for d in decisions[:-1])


def test_a_productive_pass_does_not_raise_the_throttle() -> None:
    passes = [(10000, 6000), (6000, 2000), (2000, 1500), (1500, 1400)]
    decisions = _steps("throttle", passes, downtime_limit_s=0.0)
    # Unproductive 1st (count 1), productive 2nd, unproductive 3rd (count 2: 20 %),
    # unproductive 4th (30 %).
    assert [d.throttle_pct for d in decisions] == [0, 0, 20, 30]


def test_escalate_raises_the_limit_at_each_stall_and_aborts_at_the_cap() -> None:
    stalled = [(100000, 99000)] * 7
    decisions = _steps("escalate", stalled, downtime_limit_s=0.1)
    limits = [round(d.downtime_limit_s * 1e3) for d in decisions]
    assert limits == [150, 200, 300, 400, 500, 500, 500]
    assert [d.action for d in decisions] == [GO_ON] * 6 + [ABORT]
    # Never below the move's own limit.
    own = _steps("escalate", stalled[:3], downtime_limit_s=0.25)
    assert [round(d.downtime_limit_s * 1e3) for d in own] == [250, 250, 300]


def test_escalate_switches_over_at_the_cap_when_the_dirty_set_fits() -> None:
    # 10,000 pages take 328 ms on 1 Gbit/s: over 300 ms, under the 400 ms step.
    decisions = _steps("escalate", [(10500, 10000)] * 4, downtime_limit_s=0.3)
    assert [d.action for d in decisions] == [GO_ON, GO_ON, GO_ON, STOP]
    assert decisions[-1].stop_reason == "downtime"


def test_suspend_if_needed_adds_the_throttle_and_a_five_second_step() -> None:
    decisions = _steps("suspend-if-needed", [(100000, 99000)] * 7, downtime_limit_s=0.1)
    limits = [round(d.downtime_limit_s * 1e3) for d in decisions]
    assert limits == [150, 200, 300, 400, 500, 5000, 5000]
    assert [d.throttle_pct for d in decisions][:4] == [0, 20, 30, 40]
