from __future__ import annotations

import json

import pytest

from migrator.engine import migrate
from migrator.errors import EventError
from migrator.events import (
    EVENT_TYPES,
    Cancelled,
    Completed,
    Event,
    Failed,
    PassFinished,
    Progress,
    StageFinished,
    StageStarted,
    event_from_dict,
)
from migrator.stages import STAGE_LABELS, Stage

from .conftest import small_spec


def _samples() -> list[Event]:
    result = migrate(small_spec(1 << 20, zero_fraction=0.5))
    return [
        StageStarted(t=0.0, stage=Stage.CONFIGURATION_TRANSFER),
        StageFinished(t=0.5, stage=Stage.MEMORY_TRANSFER, duration_s=0.25),
        PassFinished(
            t=1.0,
            pass_no=2,
            pages_sent=100,
            pages_dirtied=7,
            zero_pages=3,
            bytes=397 * 4096,
            duration_s=0.1,
            dirty_rate=70.0,
            expected_downtime_s=0.01,
            remaining_dirty_pages=7,
        ),
        Progress(
            t=1.5,
            pass_no=1,
            bytes_sent=4096,
            remaining_dirty_pages=12,
            dirty_rate=3.5,
            link_rate=30517.578125,
        ),
        Completed(t=2.0, result=result),
        Failed(t=2.5, stage=Stage.STATE_TRANSFER, code="link_failed", reason="down"),
        Cancelled(t=3.0, stage=Stage.DESTINATION_CREATION, reason="operator"),
    ]


def test_every_event_kind_round_trips_through_json() -> None:
    samples = _samples()
    assert {e.kind for e in samples} == set(EVENT_TYPES)
    for event in samples:
        data = json.loads(json.dumps(event.to_dict()))
        assert data["kind"] == event.kind
        assert event_from_dict(data) == event


def test_stage_is_serialised_as_its_value() -> None:
    data = StageStarted(t=0.0, stage=Stage.ONLINE).to_dict()
    assert data == {"kind": "stage_started", "t": 0.0, "stage": "online"}


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kind": "exploded", "t": 0.0},
        {"kind": "stage_started", "t": 0.0, "stage": "teleport"},
        {"kind": "progress", "t": 0.0},
        {"kind": "stage_started", "t": -1.0, "stage": "online"},
        [],
    ],
)
def test_malformed_events_are_refused(data: object) -> None:
    with pytest.raises(EventError):
        event_from_dict(data)  # type: ignore[arg-type]


def test_stages_have_labels_numbers_and_cancel_windows() -> None:
    assert [s.value for s in Stage] == [
        "configuration_transfer",
        "destination_creation",
        "memory_transfer",
        "state_transfer",
        "storage_transfer",
        "online",
        "network_redirection",
    ]
    assert set(STAGE_LABELS) == set(Stage)
    assert Stage.ONLINE.label == "VM brought online"
    assert [s.number for s in Stage] == list(range(1, 8))
    assert [s for s in Stage if s.cancellable] == list(Stage)[:3]
