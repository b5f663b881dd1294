"""Drains run by a real Celery worker: quick migrations end where they should."""

from __future__ import annotations

import pytest

from hvweb.inventory.models import VirtualMachine
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.drain import drain_host
from hvweb.tests.test_moves import finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_drain_quick_migrates_low_priority_and_stopped_vms(celery_worker):
    world = make_world("QUICK")
    operator = make_member(world.team, "operator")
    source = world.hosts[0]
    make_vm(source, "low-1", csv=world.csv, priority=1000, workload_profile="database",
            write_rate=20_000, working_set_pages=20_000)  # fmt: skip
    make_vm(source, "off-1", csv=world.csv, power_state="off")
    outcome = drain_host(source, operator, speed=0)
    moves = {m.vm.name: finished(m) for m in outcome.moves}
    assert [m.error_message for m in moves.values() if m.error_message] == []
    assert {n: m.state for n, m in moves.items()} == {
        "quick-web-1": MigrationState.SUCCEEDED,
        "low-1": MigrationState.SUCCEEDED,
        "off-1": MigrationState.SUCCEEDED,
    }
    assert set(moves) == {"quick-web-1", "low-1", "off-1"}
    low, off, web = moves["low-1"], moves["off-1"], moves["quick-web-1"]
    assert (low.kind, off.kind, web.kind) == ("quick", "quick", "live")
    # Saved first: one pass, the guest writes nothing, the blackout is the
    # whole transfer; the prediction said so.
    assert low.passes == 1 and low.result["workload_writes"] == 0
    assert low.downtime_s == pytest.approx(low.total_time_s)
    assert low.predicted["move_kind"] == "quick"
    assert low.downtime_s == pytest.approx(low.predicted["downtime_s"], rel=0.05)
    # An off VM has no memory contents to carry: its move is nearly free.
    assert off.bytes_sent < 1 << 20
    hosts = dict(VirtualMachine.objects.filter(
        name__in=list(moves)).values_list("name", "host__name"))  # fmt: skip
    assert source.name not in hosts.values()
    assert VirtualMachine.objects.get(name="off-1").power_state == "off"


def test_an_unpaced_demo_drain_keeps_to_its_plan(celery_worker):
    from hvweb.inventory import demo
    from hvweb.inventory.models import Host
    from hvweb.maintenance.compare import compare
    from hvweb.maintenance.plan import plan_drain
    from hvweb.maintenance.service import drain_and_record

    demo.seed(write=lambda *_: None)
    host = Host.objects.get(name="HV-PROD-1")
    plan = plan_drain(host, speed=0)
    outcome, record = drain_and_record(host, speed=0)
    planned = [(m.vm.name, m.migration.destination.name, m.migration.kind, m.queued)
               for m in plan.moves]  # fmt: skip
    done = [(m.vm.name, m.destination.name, m.kind, m.state == "queued")
            for m in outcome.moves]  # fmt: skip
    assert planned == done
    for m in outcome.moves:
        assert finished(m).state == MigrationState.SUCCEEDED, m.error_message
    found = compare(record)
    assert found.finished
    assert 0.8 <= found.ratio <= 1.2, (found.predicted_window_s, found.actual_window_s)
    for c in found.moves:
        assert 0.8 <= c.ratio <= 1.2, c.planned
    # The queued move started when a slot freed: after the first move ended.
    first_end = min(m.finished_at for m in outcome.moves[:2])
    third = outcome.moves[2]
    third.refresh_from_db()
    assert plan.moves[2].queued and third.started_at >= first_end


def test_resume_with_failback_brings_the_drained_vms_home(celery_worker, client):
    import html

    from hvweb.maintenance.failback import plan_failback, resume_with_failback
    from hvweb.maintenance.models import DrainRecord
    from hvweb.maintenance.service import drain_and_record

    world = make_world("BACK")
    operator = make_member(world.team, "operator")
    source = world.hosts[0]
    make_vm(source, "low-1", csv=world.csv, priority=1000)
    make_vm(source, "big-1", csv=world.csv, memory_mib=2048, priority=3000)
    home = set(
        VirtualMachine.objects.filter(host=source).values_list("name", flat=True)
    )
    outcome, _ = drain_and_record(source, operator, speed=0)
    for m in outcome.moves:
        assert finished(m).state == MigrationState.SUCCEEDED
    client.force_login(operator)
    page = html.unescape(client.get(source.get_absolute_url()).content.decode())
    assert 'id="resume-failback"' in page and 'id="resume"' in page
    confirm = html.unescape(
        client.get(f"/hosts/{source.pk}/failback/plan/").content.decode()
    )
    assert "Resume HV-BACK-1 and fail back?" in confirm
    assert "HV-BACK-1: 3 VMs back, about " in confirm
    plan = plan_failback(source, speed=0)
    assert [m.vm.name for m in plan.moves] == ["big-1", "back-web-1", "low-1"]
    assert {m.migration.destination for m in plan.moves} == {source}
    assert [m.migration.kind for m in plan.moves] == ["live", "live", "quick"]
    back = resume_with_failback(source, operator, speed=0)
    assert back.complete and back.record.kind == DrainRecord.FAILBACK
    assert [(m.vm.name, m.kind) for m in back.moves] == [
        (m.vm.name, m.migration.kind) for m in plan.moves
    ]
    for m in back.moves:
        assert finished(m).state == MigrationState.SUCCEEDED, m.error_message
    now = set(VirtualMachine.objects.filter(host=source).values_list("name", flat=True))
    assert now == home
    source.refresh_from_db()
    assert source.state == "up"
    text = html.unescape(client.get(source.get_absolute_url()).content.decode())
    assert "Last failback: predicted against actual" in text
