"""The journal's one-statement path: what it returns, refuses and serialises.

Events whose fields nobody audits (progress, stages, passes) take the move's
next sequence number in one ``UPDATE ... RETURNING`` (``journal._advance``);
the rest go through the model so that auditlog sees them.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from conftest import ON_POSTGRES
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves import journal, lifecycle
from hvweb.moves.choices import MigrationState
from hvweb.moves.frames import frame
from hvweb.moves.lifecycle import Kind
from hvweb.moves.models import Migration, MigrationEvent
from hvweb.moves.services import start_migration


@pytest.fixture
def world(unworked_queue):
    # The moves wait in a queue no worker reads: a worker left running by
    # another test would otherwise run them and journal events of its own.
    return make_world()


def a_move(world) -> Migration:
    operator = make_member(world.team, "operator")
    return start_migration(world.vm, world.hosts[1], operator, speed=0)


@pytest.mark.django_db
def test_the_returned_move_gives_the_frame_a_full_read_gives(world):
    move = a_move(world)
    asked = {"by": "test"}
    journal.record(move.pk, Kind.CANCEL_REQUESTED, asked, cancel_requested=True)
    returned = journal.record(move.pk, Kind.STAGE_STARTED, {}, stage="memory_transfer")
    assert returned.cancel_requested is True  # a bool, also from SQLite's 0/1
    assert returned.switched_over is False
    whole = Migration.objects.get(pk=move.pk)
    assert returned.last_seq == whole.last_seq and whole.stage == "memory_transfer"
    # Quiet kinds: no host memory in the frame, and no stamp to compare.
    mine, theirs = (frame(m, 9, "progress", {}) for m in (returned, whole))
    assert {**mine, "at": ""} == {**theirs, "at": ""}
    # A field it did not return is read when asked, not wrong.
    assert returned.reserved_memory_mib == whole.reserved_memory_mib


@pytest.mark.django_db
def test_an_ended_move_takes_no_event_and_keeps_its_row(world):
    move = a_move(world)
    ended = lifecycle.finish(move.pk, MigrationState.FAILED, "TEST", "ended here")
    events = MigrationEvent.objects.filter(migration=move).count()
    with pytest.raises(journal.MoveEnded, match=r"ended \(failed\); progress"):
        journal.record(move.pk, Kind.PROGRESS, {"t": 1.0}, progress={"t": 1.0})
    after = Migration.objects.get(pk=move.pk)
    assert after.last_seq == ended.last_seq and after.progress != {"t": 1.0}
    assert MigrationEvent.objects.filter(migration=move).count() == events


@pytest.mark.django_db
def test_a_missing_move_is_said_missing():
    with pytest.raises(Migration.DoesNotExist):
        journal.record(10**9, Kind.PROGRESS, {})


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ON_POSTGRES, reason="row locks are PostgreSQL's")
def test_writers_at_once_each_get_the_next_number(world):
    """Eight threads journal 25 events each on one move: the UPDATE's row lock
    hands out every number once, 1..200 after the start's own."""
    move = a_move(world)
    first = Migration.objects.get(pk=move.pk).last_seq
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                journal.record(move.pk, Kind.PROGRESS, {}, progress={})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    seqs = sorted(
        MigrationEvent.objects.filter(migration=move, seq__gt=first).values_list(
            "seq", flat=True
        )
    )
    assert seqs == list(range(first + 1, first + 201))
    assert Migration.objects.get(pk=move.pk).last_seq == first + 200
