"""Live migrations run by a real Celery worker on a real Redis."""

from __future__ import annotations

import time

import pytest

from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration, MigrationEvent
from hvweb.moves.services import start_migration

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=60.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def finished(migration: Migration) -> Migration:
    def done():
        migration.refresh_from_db()
        return migration if not migration.active else None

    return wait_for(done)


def test_a_move_relocates_the_vm_and_persists_every_stage_and_pass(celery_worker):
    world = make_world()
    vm = world.vm
    vm.memory_mib = 64
    vm.workload_profile = "web"
    vm.write_rate = 20_000
    vm.working_set_pages = 2_000
    vm.save()
    operator = make_member(world.team, "operator")
    migration = start_migration(
        vm, world.hosts[1], operator, speed=0, downtime_limit_ms=1
    )
    finished(migration)
    assert migration.state == MigrationState.SUCCEEDED, migration.error_message
    vm.refresh_from_db()
    assert vm.host == world.hosts[1]
    assert migration.passes >= 2
    assert list(migration.passes_done.values_list("pass_no", flat=True)) == list(
        range(1, migration.passes + 1)
    )
    assert [s.outcome for s in migration.stages.all()] == ["finished"] * 7
    seqs = list(
        MigrationEvent.objects.filter(migration=migration).values_list("seq", flat=True)
    )
    assert seqs == list(range(1, migration.last_seq + 1))
    assert migration.verified
