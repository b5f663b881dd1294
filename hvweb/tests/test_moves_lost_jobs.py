"""The reaper finds a dispatched move whose job the broker lost.

A move dispatched to a queue no worker reads waits there, "running" but
unclaimed, as it would while every worker is busy. Deleting the queue's list
from Redis is what a flush or a restart without persistence does to it: the
suite's worker (its beat runs the reaper every second) must then fail the
move with ``JOB_LOST`` within the reaper's window, the VM on its source; a
job still in its queue is left alone.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from django.conf import settings

from conftest import REAPER_TIMEOUT_S
from hvweb.celery import app
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves import journal
from hvweb.moves.choices import MigrationState
from hvweb.moves.lifecycle import Kind
from hvweb.moves.services import start_migration

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    w = make_world()
    w.vm.memory_mib = 64
    w.vm.save()
    w.operator = make_member(w.team, "operator")
    return w


def reaped_within(move, seconds: float) -> None:
    """Wait until the reaper ended ``move``; fail after ``seconds``."""
    since = time.monotonic()
    while move.active:
        assert time.monotonic() < since + seconds, "the reaper never noticed"
        time.sleep(0.2)
        move.refresh_from_db()
    print(f"move #{move.pk} reaped after {time.monotonic() - since:.1f} s")


def test_a_dispatched_move_whose_job_vanished_fails_job_lost_vm_on_source(
    world, celery_worker, unworked_queue
):
    waiting = make_vm(world.hosts[1], "blue-web-2", csv=world.csv, memory_mib=64)
    lost = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    kept = start_migration(waiting, world.hosts[2], world.operator, speed=0)
    assert lost.state == kept.state == MigrationState.RUNNING
    queue = app.conf.task_default_queue
    broker = redis.Redis.from_url(settings.REDIS_URL)
    assert broker.llen(queue) == 2  # both jobs wait for a worker
    # Another database on this Redis (a console made afresh, an earlier test
    # run) left a job of a move with the same id in kombu's unacked hash, its
    # worker long dead: it is not this move's job.
    # (As an older hvweb named it, and as this one would, for another dispatch.)
    stale = {
        "headers": {"id": f"hvweb-move-{kept.pk}"},
        "properties": {"correlation_id": f"hvweb-move-{kept.pk}-000000000000"},
    }
    broker.hset("unacked", "stale-from-elsewhere", json.dumps([stale, "", queue]))
    # The broker loses the first job only (as a flush would lose both).
    lost_job = journal.last(lost.pk, Kind.DISPATCHED)["job"]
    job = next(
        raw for raw in broker.lrange(queue, 0, -1) if f'"{lost_job}"'.encode() in raw
    )
    broker.lrem(queue, 1, job)
    reaped_within(lost, REAPER_TIMEOUT_S + 10)
    assert lost.state == MigrationState.FAILED
    assert lost.error_code == "JOB_LOST"
    assert "the VM stays on HV-BLUE-1" in lost.error_message
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    # The job still in its queue waits on: the reaper has seen it every second.
    time.sleep(2)
    broker.hdel("unacked", "stale-from-elsewhere")
    kept.refresh_from_db()
    assert kept.state == MigrationState.RUNNING and kept.started_at is None, (
        kept.error_code, kept.error_message,
    )  # fmt: skip


@pytest.mark.slow
def test_a_move_whose_worker_died_before_starting_it_fails_worker_lost(
    world, celery_worker, start_worker
):
    """A worker takes the job (kombu's ``unacked`` hash) and dies before it
    claims the move: without the reaper the move would wait for the transport's
    visibility timeout (an hour). Holding the move's row makes the worker's
    claim wait, so the kill lands between taking the job and starting it."""
    import uuid

    from django.db import transaction

    from conftest import routed_to
    from hvweb.moves import jobs
    from hvweb.moves.models import Migration

    queue = f"taken-{uuid.uuid4().hex[:8]}"
    with routed_to(queue):
        move = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    job = {journal.last(move.pk, Kind.DISPATCHED)["job"]: queue}
    with transaction.atomic():
        # A write holds the row (PostgreSQL) or the database (SQLite) until the
        # block ends: the worker's claim waits on it.
        Migration.objects.filter(pk=move.pk).update(worker="")
        victim = start_worker("taker", queue=queue)
        deadline = time.monotonic() + 30
        while not jobs.taken(job):
            assert time.monotonic() < deadline, "the worker never took the job"
            time.sleep(0.1)
        assert jobs.orphaned(job) == set()  # a live worker holds it
        victim.kill()
        assert jobs.orphaned(job) == set(job)  # held by nobody now
    reaped_within(move, REAPER_TIMEOUT_S + 15)
    assert move.state == MigrationState.FAILED
    assert move.error_code == "WORKER_LOST"
    assert move.started_at is None
    assert "stopped before starting it" in move.error_message
    assert "the VM stays on HV-BLUE-1" in move.error_message
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
