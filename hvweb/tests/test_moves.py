"""Live migrations run by a real Celery worker on a real Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from conftest import REAPER_TIMEOUT_S, routed_to
from hvweb.inventory.testing import make_member, make_moving_world, make_vm
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration, MigrationEvent
from hvweb.moves.services import (
    CancelRefused,
    MigrationRefused,
    cancel_migration,
    current_failures,
    evaluate_destinations,
    start_migration,
)
from migrator import POLICIES, Stage

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=60.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def finished(migration: Migration, timeout=60.0) -> Migration:
    def done():
        migration.refresh_from_db()
        return migration if not migration.active else None

    return wait_for(done, timeout)


def in_stage(migration: Migration, stage: Stage, timeout=30.0) -> Migration:
    def there():
        migration.refresh_from_db()
        assert migration.active, (migration.state, migration.error_message)
        return migration if migration.stage == stage.value else None

    return wait_for(there, timeout, every=0.02)


@pytest.fixture
def world():
    return make_moving_world()


def test_a_move_relocates_the_vm_and_persists_every_stage_and_pass(
    celery_worker, world
):
    vm = world.vm
    migration = start_migration(
        vm, world.hosts[1], world.operator, speed=0, downtime_limit_ms=1
    )
    finished(migration)
    assert migration.state == MigrationState.SUCCEEDED, migration.error_message
    vm.refresh_from_db()
    assert vm.host == world.hosts[1]
    assert migration.passes >= 2
    assert list(migration.passes_done.values_list("pass_no", flat=True)) == list(
        range(1, migration.passes + 1)
    )
    stages = list(migration.stages.values_list("stage", "outcome"))
    assert stages == [(s.value, "finished") for s in Stage]
    events = MigrationEvent.objects.filter(migration=migration)
    assert list(events.values_list("seq", flat=True)) == list(
        range(1, migration.last_seq + 1)
    )
    kinds = list(events.values_list("kind", flat=True))
    assert kinds.count("pass_finished") == migration.passes
    assert kinds[-1] == "completed"
    assert migration.verified
    # Every page crossed at least once: as payload, or as a zero-page marker.
    zero_bytes = migration.result["zero_pages"] * 4096
    assert migration.bytes_sent + zero_bytes >= 64 << 20
    assert migration.predicted["passes"] >= 1
    # Every pass and progress frame carries the model's outlook from there on:
    # what the page shows as ETA, "blackout if stopped now" and in words.
    for kind in ("pass_finished", "progress"):
        for frame in events.filter(kind=kind).values_list("data", flat=True):
            outlook = frame["data"]["outlook"]
            assert outlook["eta_s"] >= 0 and outlook["blackout_if_stopped_s"] >= 0
            assert outlook["text"].startswith(("converges in", "will not converge"))


def test_progress_is_throttled_to_its_rate(celery_worker, world, settings):
    """At most HVWEB_PROGRESS_PER_SECOND progress frames a second (the suite's
    worker runs the default, 5)."""
    rate = int(settings.HVWEB_PROGRESS_PER_SECOND)
    world.cluster.link_bandwidth_mbps = 200
    world.cluster.save()
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    finished(migration)
    assert migration.state == MigrationState.SUCCEEDED, migration.error_message
    stamps = list(
        MigrationEvent.objects.filter(migration=migration, kind="progress")
        .order_by("seq")
        .values_list("created_at", flat=True)
    )
    assert len(stamps) > rate
    for i in range(len(stamps) - rate):
        assert (stamps[i + rate] - stamps[i]).total_seconds() >= 0.95


def test_two_simultaneous_starts_create_one_move(celery_worker, world):
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def request(destination):
        barrier.wait()
        try:
            outcomes.append(start_migration(world.vm, destination, world.operator))
        except MigrationRefused as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=request, args=(host,)) for host in world.hosts[1:3]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    moves = [o for o in outcomes if isinstance(o, Migration)]
    refusals = [o for o in outcomes if isinstance(o, MigrationRefused)]
    assert len(moves) == 1 and len(refusals) == 1
    assert "MIGRATION_ACTIVE" in refusals[0].codes
    assert Migration.objects.filter(vm=world.vm).count() == 1
    finished(moves[0])


def test_a_move_waits_in_the_queue_at_the_host_limit_and_starts_when_a_slot_frees(
    celery_worker, world
):
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.link_bandwidth_mbps = 400
    world.cluster.save()
    source, target, third = world.hosts
    other = make_vm(source, "blue-web-2", csv=world.csv, memory_mib=64)
    first = start_migration(world.vm, target, world.operator, speed=1)
    second = start_migration(other, third, world.operator, speed=0)
    assert first.state == MigrationState.RUNNING
    assert second.state == MigrationState.QUEUED  # HV-BLUE-1 is busy with `first`
    assert MigrationEvent.objects.get(migration=second, seq=1).data["data"][
        "waiting_for"
    ] == ["HOST_MIGRATION_LIMIT"]
    finished(first)
    assert first.state == MigrationState.SUCCEEDED
    finished(second)
    assert second.state == MigrationState.SUCCEEDED, second.error_message
    assert second.started_at >= first.finished_at
    other.refresh_from_db()
    assert other.host == third


def test_a_queued_move_can_be_cancelled_at_once(celery_worker, world):
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    blocker = start_migration(world.vm, world.hosts[1], world.operator, speed=0.05)
    other = make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=64)
    queued = start_migration(other, world.hosts[2], world.operator)
    assert queued.state == MigrationState.QUEUED
    cancelled = cancel_migration(queued, world.operator)
    assert cancelled.state == MigrationState.CANCELLED
    cancel_migration(blocker, world.operator)
    finished(blocker)
    other.refresh_from_db()
    assert other.host == world.hosts[0]


def test_a_move_no_worker_has_taken_is_cancelled_at_once(world, unworked_queue):
    """Its job waits in a queue no worker reads (as when every worker is busy,
    or the job was lost with a flushed Redis): cancel ends the move now, and
    a late delivery of the job finds it over and leaves the VM alone."""
    from hvweb.moves.tasks import run_migration

    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    assert migration.state == MigrationState.RUNNING and not migration.started_at
    cancelled = cancel_migration(migration, world.operator)
    assert cancelled.state == MigrationState.CANCELLED
    who = world.operator.get_username()
    assert cancelled.error_message == f"Cancelled by {who} before a worker took it."
    assert run_migration(migration.pk) == "not run: cancelled, started None"
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert not cancelled.stages.exists()
    assert (
        list(
            MigrationEvent.objects.filter(migration=migration).values_list(
                "kind", flat=True
            )
        )[-1]
        == "cancelled"
    )


# Each stage made long enough (in wall time) to be caught: (link Mbit/s, speed).
SLOW_STAGE = {
    Stage.CONFIGURATION_TRANSFER: (1, 0.05),  # 16 KiB at 1 Mbit/s: 2.6 s wall
    Stage.DESTINATION_CREATION: (1000, 0.02),  # 0.05 s simulated: 2.5 s wall
    Stage.MEMORY_TRANSFER: (100, 1.0),  # 64 MiB at 100 Mbit/s: 5 s wall
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("stage", list(SLOW_STAGE), ids=lambda s: s.value)
def test_cancel_in_each_allowed_stage_keeps_the_vm_on_its_source(
    celery_worker, world, stage, policy
):
    world.cluster.link_bandwidth_mbps, speed = SLOW_STAGE[stage]
    world.cluster.save()
    migration = start_migration(
        world.vm, world.hosts[1], world.operator, speed=speed, policy=policy
    )
    in_stage(migration, stage)
    asked = time.monotonic()
    cancel_migration(migration, world.operator)
    finished(migration, timeout=10)
    stopped_after = time.monotonic() - asked
    assert migration.state == MigrationState.CANCELLED
    assert migration.failed_stage == stage.value
    # Who asked and where it ended, in plain words (not "the operator").
    assert migration.error_message == (
        f"Cancelled by {world.operator.username} during {stage.label}."
    )
    assert stopped_after < 1.5  # the engine stops within a second (plus polling)
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert migration.stages.get(stage=stage.value).outcome == "cancelled"
    assert not migration.stages.filter(stage=Stage.ONLINE.value).exists()


def test_cancel_is_refused_once_the_vm_is_paused_for_the_switchover(
    world, unworked_queue
):
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    # As a worker records it when stage 5 begins (no worker runs this move).
    Migration.objects.filter(pk=migration.pk).update(
        started_at=timezone.now(), stage=Stage.STORAGE_TRANSFER.value
    )
    with pytest.raises(CancelRefused) as refused:
        cancel_migration(migration, world.operator)
    assert refused.value.code == "CANCEL_TOO_LATE"
    assert "stage 5" in refused.value.message
    migration.refresh_from_db()
    assert not migration.cancel_requested
    # No worker runs it: end it as its worker would, so the test leaves none.
    Migration.objects.filter(pk=migration.pk).update(state=MigrationState.SUCCEEDED)


def test_cancel_is_refused_after_the_move_ended(celery_worker, world):
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(migration)
    with pytest.raises(CancelRefused) as refused:
        cancel_migration(migration, world.operator)
    assert refused.value.code == "MIGRATION_FINISHED"


@pytest.mark.parametrize("policy", POLICIES)
def test_an_injected_link_fault_fails_the_move_in_memory_transfer(
    celery_worker, world, policy
):
    migration = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, downtime_limit_ms=1,
        faults={"link_failure_pass": 2}, policy=policy,
    )  # fmt: skip
    finished(migration)
    assert migration.policy == policy
    assert migration.state == MigrationState.FAILED
    assert migration.failed_stage == Stage.MEMORY_TRANSFER.value
    assert migration.error_code == "link_failed"
    assert "link failed" in migration.error_message
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert migration.stages.get(stage="memory_transfer").outcome == "failed"
    # The reservation ended with the move: the same move may start again.
    again = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(again)
    assert again.state == MigrationState.SUCCEEDED


def test_a_killed_worker_fails_its_move_within_a_minute_and_the_next_move_succeeds(
    celery_worker, start_worker, world
):
    queue = f"victim-{uuid.uuid4().hex[:8]}"
    victim = start_worker("victim", queue=queue, concurrency=1, HVWEB_HEARTBEAT_S="1")
    world.cluster.link_bandwidth_mbps = 50
    world.cluster.save()
    with routed_to(queue):  # this move goes to the victim only
        migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    in_stage(migration, Stage.MEMORY_TRANSFER)
    wait_for(lambda: migration.passes_done.exists() or migration.progress)
    victim.kill()
    killed = time.monotonic()
    finished(migration, timeout=60)
    assert time.monotonic() - killed < 60
    assert migration.state == MigrationState.FAILED
    assert migration.error_code == "WORKER_LOST"
    assert migration.failed_stage == Stage.MEMORY_TRANSFER.value
    assert f"the VM runs on {world.hosts[0].name}" in migration.error_message
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert REAPER_TIMEOUT_S < 60
    again = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    finished(again)
    assert again.state == MigrationState.SUCCEEDED
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[1]


def test_a_worker_given_up_on_cannot_switch_its_move_over(celery_worker, world):
    """The reaper failed the move while its worker, slow but alive, still ran
    it (a heartbeat late on a loaded machine): the worker's next event is not
    recorded, so the VM is not switched over behind a move that says the VM
    runs on its source."""
    from hvweb.moves import lifecycle

    world.cluster.link_bandwidth_mbps = 200  # pre-copy lasts about 3 s
    world.cluster.save()
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    in_stage(migration, Stage.MEMORY_TRANSFER)
    lifecycle.finish(
        migration.pk, MigrationState.FAILED, "WORKER_LOST",
        "The worker running this move stopped answering; the VM runs on "
        f"{world.hosts[0].name}.", stage=Stage.MEMORY_TRANSFER.value,
    )  # fmt: skip
    ended_at = migration.events.order_by("-seq").values_list("seq", flat=True)[0]
    # Unhindered, the worker went on recording the move (a hundred progress
    # frames in these 8 s) and then switched the VM over.
    time.sleep(8)
    migration.refresh_from_db()
    assert (migration.state, migration.error_code) == ("failed", "WORKER_LOST")
    assert not migration.switched_over
    assert migration.last_seq == ended_at  # nothing recorded after its end
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]


def test_rules_are_checked_again_when_the_worker_takes_the_move(celery_worker, world):
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    blocker = start_migration(world.vm, world.hosts[1], world.operator, speed=0.5)
    other = make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=64)
    queued = start_migration(other, world.hosts[2], world.operator)
    assert queued.state == MigrationState.QUEUED
    world.hosts[2].state = "down"  # while it waits, its destination goes down
    world.hosts[2].save()
    cancel_migration(blocker, world.operator)
    finished(blocker)
    finished(queued)
    assert queued.state == MigrationState.FAILED
    assert queued.error_code == "DESTINATION_DOWN"
    other.refresh_from_db()
    assert other.host == world.hosts[0]


def test_a_refused_move_names_every_failing_rule_and_stores_nothing(world):
    world.vm.automatic_start_action = "always_start"
    world.vm.highly_available = False
    world.vm.save()
    with pytest.raises(MigrationRefused) as refused:
        start_migration(world.vm, world.hosts[0], world.operator)
    assert {"HIGHLY_AVAILABLE", "AUTO_START_ACTION", "SAME_HOST"} <= set(
        refused.value.codes
    )
    assert not Migration.objects.exists()


def test_bad_options_name_the_field_and_store_nothing(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as bad:
        start_migration(
            world.vm, world.hosts[1], world.operator,
            downtime_limit_ms=-5, speed="fast", performance_option="carrier-pigeon",
        )  # fmt: skip
    assert set(bad.value.message_dict) == {
        "downtime_limit_ms", "speed", "performance_option",
    }  # fmt: skip
    assert not Migration.objects.exists()


def test_viewers_may_not_start_or_cancel_moves(world, unworked_queue):
    from django.core.exceptions import PermissionDenied

    viewer = make_member(world.team, "viewer")
    with pytest.raises(PermissionDenied):
        start_migration(world.vm, world.hosts[1], viewer)
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    with pytest.raises(PermissionDenied):
        cancel_migration(migration, viewer)


def test_a_move_the_job_queue_cannot_take_fails_at_once_and_the_vm_stays(
    world, tmp_path
):
    """Redis is gone: the move is refused as failed, not left waiting forever."""
    from conftest import ROOT, child_env, database_url_for_children

    script = (
        "import django; django.setup()\n"
        "from hvweb.inventory.models import Host, VirtualMachine\n"
        "from hvweb.moves.services import start_migration\n"
        f"vm = VirtualMachine.objects.get(pk={world.vm.pk})\n"
        f"m = start_migration(vm, Host.objects.get(pk={world.hosts[1].pk}), None)\n"
        "m.refresh_from_db(); print(m.state, m.error_code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
        env=child_env(
            DATABASE_URL=database_url_for_children(),
            REDIS_URL=f"unix://{tmp_path}/no-redis-here.sock",
        ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["failed", "QUEUE_UNAVAILABLE"]
    migration = Migration.objects.get(vm=world.vm)
    assert "job queue (Redis) did not take the move" in migration.error_message
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[0]
    assert not migration.active  # the reservation ended with it


def test_the_checks_see_the_load_of_the_moves_on_record(world, unworked_queue):
    source, busy, small = world.hosts
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    small.memory_mib = 1024
    small.save()
    other = make_vm(source, "blue-db-1", csv=world.csv, memory_mib=512)
    start_migration(other, small, world.operator)  # reserves 512 MiB on `small`
    codes = {
        d.host.name: [f.code for f in d.failures]
        for d in evaluate_destinations(world.vm, [busy, small])
    }
    # HV-BLUE-1 already takes part in one move, the cluster's limit.
    assert codes[busy.name] == ["HOST_MIGRATION_LIMIT"]
    # 1024 MiB less the 512 reserved still holds the 64 MiB VM ...
    assert codes[small.name] == ["HOST_MIGRATION_LIMIT"]
    world.vm.memory_mib = 600  # ... but not a 600 MiB one
    world.vm.save()
    (small_now,) = evaluate_destinations(world.vm, [small])
    assert [f.code for f in small_now.failures] == [
        "INSUFFICIENT_MEMORY", "HOST_MIGRATION_LIMIT",
    ]  # fmt: skip
    assert small_now.free_mib == 1024 - 512
    assert "MIGRATION_ACTIVE" in [f.code for f in current_failures(other, busy)]


def test_paced_the_destination_stage_lasts_its_simulated_time(start_worker, world):
    """Touching the destination's memory is the simulator's cost, paid before the
    paced run: at 1.0x stage 2 lasts its simulated 50 ms, not the 0.2-1.8 s that
    touching hundreds of MiB took inside it. A fresh worker: one that has moved
    VMs before reuses memory already touched."""
    queue = f"pacing-{uuid.uuid4().hex[:8]}"
    start_worker("pacing", queue=queue, concurrency=1, HVWEB_QUEUE=queue)
    world.vm.memory_mib = 512
    world.vm.workload_profile = "idle"
    world.vm.save()
    world.cluster.link_bandwidth_mbps = 10_000
    world.cluster.save()
    with routed_to(queue):
        migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    finished(migration)
    assert migration.state == MigrationState.SUCCEEDED, migration.error_message
    stage = migration.stages.get(stage=Stage.DESTINATION_CREATION.value)
    wall = (stage.finished_at - stage.started_at).total_seconds()
    assert abs(wall - stage.duration_s) < 0.15, (wall, stage.duration_s)
    kinds = list(migration.events.order_by("seq").values_list("kind", flat=True))
    assert kinds.index("started") < kinds.index("stage_started")
