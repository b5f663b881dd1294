"""Hyper-V's VMMS-Admin event IDs for a move's events."""

from typing import Any

import pytest

from migrator.eventlog import LEVELS, EventId, event_id, message


def completed(downtime_s: float) -> dict[str, Any]:
    return {"kind": "completed", "t": 3.0, "result": {"downtime_s": downtime_s}}


@pytest.mark.parametrize(
    ("blackout", "expected"),
    [(0.05, 20415), (1.0, 20415), (1.0001, 20417), (7.5, 20417)],
)
def test_a_success_is_20415_unless_its_blackout_passes_the_threshold(
    blackout: float, expected: int
) -> None:
    assert event_id("completed", completed(blackout), long_blackout_s=1.0) == expected


def test_the_threshold_is_the_setting_given() -> None:
    assert event_id("completed", completed(0.2), long_blackout_s=0.1) == 20417
    with pytest.raises(ValueError, match="long_blackout_s"):
        event_id("completed", completed(0.2), long_blackout_s=-1)


def test_a_failure_is_21502_and_the_limit_21501() -> None:
    failed = {"stage": "memory_transfer", "code": "link_failed", "reason": "cut"}
    assert event_id("failed", failed, long_blackout_s=1) == EventId.FAILED
    queued = {"waiting_for": ["HOST_MIGRATION_LIMIT"], "reason": "busy"}
    assert event_id("queued", queued, long_blackout_s=1) == EventId.LIMIT_REACHED


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("queued", {"waiting_for": ["SOMETHING_ELSE"]}),
        ("cancelled", {"reason": "by an operator"}),
        ("stage_started", {"stage": "online"}),
        ("progress", {"bytes_sent": 1}),
        ("dispatched", {}),
    ],
)
def test_events_hyperv_logs_no_such_line_for_have_no_id(
    kind: str, data: dict[str, Any]
) -> None:
    assert event_id(kind, data, long_blackout_s=1) is None


def test_messages_say_the_blackout_in_seconds_and_the_cause() -> None:
    names = {"vm": "web-1", "source": "HV-1", "destination": "HV-2"}
    ok = message(EventId.SUCCEEDED, completed(0.1234), **names)
    assert "'web-1'" in ok and "succeeded" in ok and "0.123 seconds" in ok
    long = message(EventId.LONG_BLACKOUT, completed(2.5), **names)
    assert "unexpectedly long blackout time of 2.500 seconds" in long
    failed = message(
        EventId.FAILED,
        {"stage": "memory_transfer", "code": "link_failed", "reason": "link cut"},
        **names,
    )
    assert "failed during memory transfer (link_failed): link cut" in failed
    limit = message(EventId.LIMIT_REACHED, {"reason": "HV-1 is busy."}, **names)
    assert "simultaneous-migration limit was reached" in limit


def test_every_id_has_a_level() -> None:
    assert set(LEVELS) == set(EventId)
    assert LEVELS[EventId.FAILED] == "Error"
