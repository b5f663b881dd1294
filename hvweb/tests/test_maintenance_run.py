"""Rolling maintenance of a cluster, run by a real worker and its beat."""

from __future__ import annotations

import uuid

import pytest

from hvweb.inventory import demo
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from hvweb.maintenance.models import DrainRecord, MaintenanceRun
from hvweb.maintenance.rolling import RunRefused, n_minus_one, start_run
from hvweb.moves.choices import MigrationState
from hvweb.tests.test_moves import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def layout() -> dict[str, str]:
    return dict(VirtualMachine.objects.values_list("name", "host__name"))


def story(run: MaintenanceRun) -> str:
    """The run's journal and every move of its drains: what a failure shows."""
    from hvweb.moves.models import Migration

    run.refresh_from_db()
    moves = Migration.objects.filter(drains__runs=run).select_related("vm")
    return "\n".join([
        *(f"{line['at'][11:23]} {line['text']}" for line in run.journal),
        *(f"#{m.pk} {m.vm.name} {m.source_id}->{m.destination_id} {m.state} "
          f"{m.stage} switched={m.switched_over} {m.error_code} {m.error_message}"
          for m in moves.order_by("pk")),
    ])  # fmt: skip


def ended(run: MaintenanceRun, timeout: float = 120) -> MaintenanceRun:
    """The run once it ended; on a timeout, fail with its story."""

    def done():
        run.refresh_from_db()
        return run if not run.active else None

    try:
        return wait_for(done, timeout, every=0.25)
    except AssertionError:
        pytest.fail(f"the run did not end within {timeout} s:\n{story(run)}")


@pytest.mark.slow
def test_a_rolling_maintenance_of_clu_prod_brings_every_vm_home(celery_worker):
    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    before = layout()
    run = start_run(cluster, None, hold_s=0.5, speed=0)
    assert [h["host"] for h in run.plan["steps"]] == ["HV-PROD-1", "HV-PROD-2",
                                                     "HV-PROD-3"]  # fmt: skip
    run = ended(run, 240)
    assert run.state == MaintenanceRun.SUCCEEDED, story(run)
    assert layout() == before, story(run)
    assert set(
        Host.objects.filter(cluster=cluster).values_list("state", flat=True)
    ) == {"up"}
    kinds = list(
        run.records.order_by("created_at", "pk").values_list("host__name", "kind")
    )
    assert kinds == [
        ("HV-PROD-1", "drain"), ("HV-PROD-1", "failback"),
        ("HV-PROD-2", "drain"), ("HV-PROD-2", "failback"),
        ("HV-PROD-3", "drain"), ("HV-PROD-3", "failback"),
    ]  # fmt: skip
    for record in run.records.all():
        assert all(m.state == MigrationState.SUCCEEDED for m in record.migrations.all())
    # Each VM left its host once and came back once: no move twice.
    for record in DrainRecord.objects.filter(kind="drain"):
        names = [m["vm"] for m in record.plan["moves"]]
        assert len(names) == len(set(names))
    texts = [line["text"] for line in run.journal]
    assert texts[-1] == "Done: HV-PROD-1, HV-PROD-2, HV-PROD-3."


def test_a_run_is_refused_when_the_cluster_cannot_lose_a_host(celery_worker):
    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    # Shrink two hosts: with HV-PROD-1 out, the others lack the room.
    Host.objects.filter(name__in=["HV-PROD-2", "HV-PROD-3"]).update(memory_mib=4096)
    problems = n_minus_one(cluster, Host.objects.filter(name="HV-PROD-1"))
    assert problems and problems[0].startswith("HV-PROD-1 out: its VMs hold 3,840 MiB")
    with pytest.raises(RunRefused) as refused:
        start_run(cluster, None, hold_s=0, speed=0)
    assert refused.value.code == "N_MINUS_ONE"
    assert "HV-PROD-2, HV-PROD-3" in refused.value.message
    assert not MaintenanceRun.objects.exists()


@pytest.mark.slow
def test_one_run_per_cluster(celery_worker):
    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    first = start_run(cluster, None, hold_s=1, speed=0)
    with pytest.raises(RunRefused) as refused:
        start_run(cluster, None, hold_s=0, speed=0)
    assert refused.value.code == "RUN_ACTIVE"
    from hvweb.maintenance.rolling import cancel_run

    cancel_run(first, "demo-operator")
    first = ended(first)
    assert first.state == MaintenanceRun.CANCELLED
    assert first.error == "Cancelled after HV-PROD-1 was resumed; done: HV-PROD-1."
    assert Host.objects.get(name="HV-PROD-1").state == "up"


@pytest.mark.slow
@pytest.mark.timeout(600)  # about 2 min quiet: up to 4 min to the kill, 5 after
def test_a_run_survives_its_worker_being_killed_mid_host(start_worker):
    from conftest import REAPER_TIMEOUT_S, routed_to
    from hvweb.moves.models import Migration

    queue = f"maint-{uuid.uuid4().hex[:8]}"
    env = {
        "HVWEB_QUEUE": queue,
        "HVWEB_HEARTBEAT_S": "1",
        "HVWEB_REAPER_INTERVAL_S": "1",
        # Longer than the suite's 6 s: on a loaded machine a live worker's
        # heartbeat can lag that long, and a move reaped while its worker
        # still runs it would muddle what this test counts.
        "HVWEB_HEARTBEAT_TIMEOUT_S": str(max(REAPER_TIMEOUT_S, 15)),
        "HVWEB_MAINTENANCE_TICK_S": "1",
    }
    victim = start_worker("maint-victim", queue=queue, beat=True, **env)
    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    before = layout()
    with routed_to(queue):
        run = start_run(cluster, None, hold_s=0.5, speed=1)

    def second_host_moving():
        run.refresh_from_db()
        if not run.active:  # ended before the kill: say how, in its journal
            pytest.fail(story(run))
        if run.step != 1 or run.phase != MaintenanceRun.DRAINING:
            return None
        # A move a worker has taken and not yet switched over: the kill
        # loses it with the VM still on HV-PROD-2.
        return Migration.objects.filter(
            drains=run.current_id, state="running", started_at__isnull=False,
            switched_over=False,
        )  # fmt: skip

    wait_for(lambda: (found := second_host_moving()) and found.exists(), 240, 0.1)
    victim.kill()
    after = start_worker("maint-after", queue=queue, beat=True, **env)
    try:
        try:
            run = ended(run, 300)
        except BaseException:
            print(story(run))
            raise
        assert run.state == MaintenanceRun.SUCCEEDED, story(run)
        assert layout() == before, story(run)
    finally:
        # Its beat would go on querying while the next test's flush truncates.
        after.stop()
    moves = Migration.objects.filter(drains__runs=run)
    lost = moves.filter(error_code="WORKER_LOST")
    assert lost.exists(), "the kill took no move with it"
    assert any("lost with a worker" in line["text"] for line in run.journal)
    # No VM moved twice: per host and direction, one move that succeeded.
    seen: dict = {}
    for m in moves.filter(state="succeeded").select_related("vm"):
        (record,) = m.drains.all()
        key = (record.host_id, record.kind, m.vm.name)
        assert key not in seen, f"{m.vm.name} moved twice: #{seen.get(key)}, #{m.pk}"
        seen[key] = m.pk


@pytest.mark.slow
def test_a_scheduled_drain_starts_at_its_time_from_the_beat(celery_worker):
    from datetime import timedelta

    from django.utils import timezone

    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    host = Host.objects.get(name="HV-PROD-1")
    at = timezone.now() + timedelta(seconds=4)
    run = start_run(cluster, None, [host.pk], drain_only=True, start_at=at,
                    time_zone="Europe/Berlin", speed=0)  # fmt: skip
    assert run.journal[0]["text"].startswith("Scheduled for ")
    assert (
        run.journal[0]["text"].endswith(("CET.", "CEST."))
        or " CE" in run.journal[0]["text"]
    )
    run.refresh_from_db()
    assert run.state == MaintenanceRun.PENDING  # not before its time
    run = ended(run, 120)
    assert run.state == MaintenanceRun.SUCCEEDED, (run.error, run.journal)
    opened = next(line for line in run.journal if "Window opened" in line["text"])
    late = float(opened["text"].split("started ")[1].split(" s after")[0])
    assert 0 <= late < 30
    host.refresh_from_db()
    assert host.state == "paused"
    assert not VirtualMachine.objects.filter(host=host).exists()


@pytest.mark.slow
def test_a_window_that_closes_leaves_the_remaining_moves_unstarted(celery_worker):
    from datetime import timedelta

    from django.utils import timezone

    from hvweb.moves.models import Migration

    demo.seed(write=lambda *_: None)
    cluster = Cluster.objects.get(name="CLU-PROD")
    host = Host.objects.get(name="HV-PROD-1")
    end = timezone.now() + timedelta(seconds=3)
    run = start_run(cluster, None, [host.pk], hold_s=0, end_by=end, speed=1)
    run = ended(run, 120)
    assert run.state == MaintenanceRun.CANCELLED
    assert run.error.startswith("The window closed at ")
    assert "done no host; HV-PROD-1 is left paused, part drained; moves not " \
        "started: prod-batch-1." in run.error  # fmt: skip
    batch = Migration.objects.get(vm__name="prod-batch-1")
    assert batch.state == "cancelled" and batch.started_at is None
    assert VirtualMachine.objects.get(name="prod-batch-1").host == host
    for m in Migration.objects.exclude(pk=batch.pk):
        m = wait_for(lambda m=m: (m.refresh_from_db() or not m.active) and m, 60)
        assert m.state == "succeeded"


def test_a_listener_that_fails_does_not_stop_a_run(unworked_queue):
    """What a step did is told to listeners (the webhooks) inside the step; a
    listener's error is logged and the run goes on. Advanced here, in the test's
    process: a drain-only run over a host with no VM needs no worker."""
    from hvweb.inventory.testing import make_world
    from hvweb.maintenance.rolling import advance, run_event

    world = make_world()
    empty = world.hosts[2]
    told = []

    def broken(sender, event, **kwargs):
        told.append(event)
        raise RuntimeError("a listener's bug")

    run_event.connect(broken, sender=MaintenanceRun)
    try:
        run = start_run(world.cluster, None, [empty.pk], drain_only=True, speed=0)
        run = advance(run.pk)
    finally:
        run_event.disconnect(broken, sender=MaintenanceRun)
    assert run.state == MaintenanceRun.SUCCEEDED, story(run)
    assert told == ["started", "host.completed", "succeeded"]
    empty.refresh_from_db()
    assert empty.state == "paused"
