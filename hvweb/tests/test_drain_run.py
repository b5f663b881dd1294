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
