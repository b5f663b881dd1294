"""Advice: every policy under every performance option, and one recommended."""

from __future__ import annotations

import json
from dataclasses import replace

from migrator.advise import advise
from migrator.calibrate import DEMO_PROFILES, demo_spec
from migrator.spec import PERFORMANCE_OPTIONS, POLICIES

HAMMER = next(p for p in DEMO_PROFILES if p.kind == "sweep")


def test_advice_covers_every_option_and_policy() -> None:
    advice = advise(demo_spec(HAMMER))
    pairs = [(c.performance_option, c.policy) for c in advice.choices]
    assert pairs == [(o, p) for o in PERFORMANCE_OPTIONS for p in POLICIES]
    data = json.loads(json.dumps(advice.to_dict()))
    assert len(data["choices"]) == 12
    assert data["choices"][data["recommended"]]["summary"] == advice.reason
    row = data["choices"][0]
    shown = {"passes", "total_time_s", "downtime_s", "guest_slowdown_pct"}
    assert set(row) >= shown | {"converges", "aborted", "outcome"}


def test_the_memory_hammer_is_advised_compression_which_converges() -> None:
    advice = advise(demo_spec(HAMMER))
    best = advice.recommended
    assert (best.performance_option, best.policy) == ("compression", "hyperv")
    p = best.prediction
    assert p.converges and not p.aborted and p.guest_slowdown_pct == 0
    assert advice.reason == (
        f"Compression with hyperv: converges in {p.passes} passes, "
        f"{round(p.downtime_s * 1e3)} ms downtime, no slowdown"
    )
    by = {(c.performance_option, c.policy): c for c in advice.choices}
    assert by["tcpip", "escalate"].outcome == "aborts"
    assert by["tcpip", "hyperv"].outcome == "switches over"
    assert by["tcpip", "throttle"].prediction.guest_slowdown_pct > 0
    assert "aborts after 5 passes" in by["tcpip", "escalate"].summary()


def test_without_compression_advice_weighs_downtime_against_slowdown() -> None:
    # Compression unavailable in effect (the encoder no faster than the link):
    # every option sends plain; nothing converges on 1 Gbit/s.
    spec = replace(demo_spec(HAMMER), compression_bps=1e8)
    advice = advise(spec)
    best = advice.recommended
    assert not best.prediction.aborted
    # No option converges; the shortest blackout without slowdown wins, and
    # on a tie Hyper-V's default option.
    assert best.policy == "hyperv"
    assert best.outcome == "switches over"
    assert advice.reason.startswith(
        f"Compression with hyperv: switches over after {best.prediction.passes} passes"
    )


def test_a_quiet_vm_is_advised_hyper_vs_default() -> None:
    advice = advise(demo_spec(DEMO_PROFILES[0]))
    assert advice.reason == (
        "Compression with hyperv: converges in 1 pass, 0.5 ms downtime, no slowdown"
    )
