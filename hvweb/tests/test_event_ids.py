"""Hyper-V's VMMS-Admin event IDs on a move's events: stored, filtered, exported."""

from __future__ import annotations

import csv
import io
import time

import pytest
from django.urls import reverse

from hvweb.inventory.testing import make_member, make_moving_world, make_vm, make_world
from hvweb.moves import lifecycle
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration, MigrationEvent
from hvweb.moves.services import start_migration


def finished(migration: Migration, timeout: float = 60.0) -> Migration:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        migration.refresh_from_db()
        if not migration.active:
            return migration
        time.sleep(0.05)
    raise AssertionError("the move did not end")


def ids_of(migration: Migration) -> dict[str, int]:
    return dict(
        MigrationEvent.objects.filter(
            migration=migration, event_id__isnull=False
        ).values_list("kind", "event_id")
    )


def exported(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0] == (
        "Level,Date and Time,Source,Event ID,Task Category,Message"
    )
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def world():
    return make_moving_world()


@pytest.fixture
def moves(celery_worker, world, settings):
    """A success, one that queued at the host limit, and one whose link failed."""
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.link_bandwidth_mbps = 400
    world.cluster.save()
    source, target, third = world.hosts
    other = make_vm(source, "blue-web-2", csv=world.csv, memory_mib=64)
    first = start_migration(world.vm, target, world.operator, speed=1)
    queued = start_migration(other, third, world.operator, speed=0)
    assert queued.state == MigrationState.QUEUED
    finished(first)
    finished(queued)
    broken = start_migration(
        other, source, world.operator, speed=0, downtime_limit_ms=1,
        faults={"link_failure_pass": 1},
    )  # fmt: skip
    finished(broken)
    return {"first": first, "queued": queued, "broken": broken}


@pytest.mark.django_db(transaction=True)
def test_moves_carry_hyperv_event_ids_and_pages_filter_and_export_them(
    client, world, moves, settings
):
    first, queued, broken = moves["first"], moves["queued"], moves["broken"]
    assert first.state == queued.state == MigrationState.SUCCEEDED
    assert broken.state == MigrationState.FAILED
    success = 20417 if first.downtime_s > settings.HVWEB_LONG_BLACKOUT_S else 20415
    assert ids_of(first) == {"completed": success}
    assert ids_of(queued)["queued"] == 21501
    assert ids_of(broken) == {"failed": 21502}
    # The frame viewers get carries it too.
    frame = MigrationEvent.objects.get(migration=broken, kind="failed").data
    assert frame["event_id"] == 21502

    viewer = make_member(world.team, "viewer")
    client.force_login(viewer)
    history = reverse("moves:migration-list")
    listed = client.get(history, {"event_id": 21501}).context["migrations"]
    assert [m.pk for m in listed] == [queued.pk]
    listed = client.get(history, {"event_id": 21502}).context["migrations"]
    assert [m.pk for m in listed] == [broken.pk]
    bad = client.get(history, {"event_id": 99})
    assert "Hyper-V event ID: Select a valid choice" in bad.content.decode()
    api = client.get("/api/migrations/", {"event_id": 21502})
    assert [m["id"] for m in api.json()["results"]] == [broken.pk]
    assert client.get("/api/migrations/", {"event_id": "x"}).status_code == 400

    # The migration page filters its log by ID, and refuses an unknown one.
    page = client.get(reverse("moves:migration", args=[queued.pk]), {"event_id": 21501})
    assert [f["kind"] for f in page.context["log"]] == ["queued"]
    assert 'data-event-id="21501"' in page.content.decode()
    refused = client.get(reverse("moves:migration", args=[queued.pk]), {"event_id": 1})
    assert refused.status_code == 400

    # Exports: as Event Viewer's columns, for the history and for one move.
    rows = exported(client.get(reverse("moves:events-export"), {"event_id": 21502}))
    assert [(r["Level"], r["Event ID"], r["Source"]) for r in rows] == [
        ("Error", "21502", "Hyper-V-VMMS")
    ]
    assert "'blue-web-2'" in rows[0]["Message"] and "failed" in rows[0]["Message"]
    assert "link_failed" in rows[0]["Message"]
    rows = exported(client.get(reverse("moves:events-export")))
    assert sorted(r["Event ID"] for r in rows) == sorted(
        [str(success), "21501", str(ids_of(queued)["completed"]), "21502"]
    )
    rows = exported(
        client.get(reverse("moves:migration-events-export", args=[first.pk]))
    )
    (row,) = rows
    assert f"{first.downtime_s:.3f} seconds" in row["Message"]
    assert row["Level"] == ("Information" if success == 20415 else "Warning")

    # Another team sees none of it.
    red = make_world("RED")
    client.force_login(make_member(red.team, "administrator"))
    assert exported(client.get(reverse("moves:events-export"))) == []
    assert (
        client.get(
            reverse("moves:migration-events-export", args=[first.pk])
        ).status_code
        == 404
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("threshold", "expected"), [(1.0, 20415), (0.25, 20417)])
def test_the_long_blackout_threshold_is_a_setting(world, settings, threshold, expected):
    settings.HVWEB_LONG_BLACKOUT_S = threshold
    move = Migration.objects.create(
        vm=world.vm, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[1], performance_option="tcpip", speed=0,
        reserved_memory_mib=64, state=MigrationState.RUNNING,
    )  # fmt: skip
    lifecycle.finish(
        move.pk, MigrationState.SUCCEEDED,
        data={"kind": "completed", "t": 2.0, "result": {"downtime_s": 0.5}},
    )  # fmt: skip
    assert ids_of(move) == {"completed": expected}
