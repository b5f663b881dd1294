"""A drain's timed plan equals what the drain and the dispatch then do."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from hvweb.inventory import demo
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.maintenance.models import DrainRecord
from hvweb.maintenance.plan import plan_drain
from hvweb.moves.drain import DrainRefused, drain_host
from hvweb.moves.models import Migration

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("unworked_queue")]


def placed(moves):
    return [(m.vm.name, m.kind, m.destination.name, m.state) for m in moves]


def test_the_demo_plan_is_what_the_drain_does():
    demo.seed(write=lambda *_: None)
    host = Host.objects.get(name="HV-PROD-1")
    plan = plan_drain(host, speed=0)
    assert Migration.objects.count() == 0
    assert Host.objects.get(pk=host.pk).state == "up"  # a plan changes nothing
    outcome = drain_host(host, speed=0)
    assert placed(m.migration for m in plan.moves) == placed(outcome.moves)
    # Two slots on HV-PROD-1 (the cluster's limit): the third VM waits for
    # the first move to end, in the slot that move frees.
    first, second, third = plan.moves
    assert (first.queued, second.queued, third.queued) == (False, False, True)
    assert (first.slot, second.slot) == (1, 2)
    assert third.start_s == pytest.approx(min(first.end_s, second.end_s))
    assert third.slot == (1 if first.end_s <= second.end_s else 2)
    assert plan.window_s == pytest.approx(max(m.end_s for m in plan.moves))
    assert plan.summary.startswith("HV-PROD-1: 3 VMs, about ")
    assert "longest blackout" in plan.summary


def test_a_sixteen_host_cluster_plans_as_it_drains():
    world = make_world("WIDE", hosts=16)
    source = world.hosts[0]
    for i in range(30):
        make_vm(source, f"vm-{i:02}", csv=world.csv, memory_mib=256 + 64 * (i % 7),
                priority=(3000, 2000, 1000)[i % 3])  # fmt: skip
    plan = plan_drain(source, speed=0)
    outcome = drain_host(source, speed=0)
    assert placed(m.migration for m in plan.moves) == placed(outcome.moves)
    assert [m.migration.kind for m in plan.moves[:10]] == ["live"] * 10  # High
    assert {m.migration.kind for m in plan.moves[-10:]} == {"quick"}  # Low
    # The source holds two slots: never more than two of its moves at once.
    for m in plan.moves:
        at_once = [o for o in plan.moves if o.start_s <= m.start_s < o.end_s]
        assert len(at_once) <= 2
    assert sorted({m.slot for m in plan.moves}) == [1, 2]


def test_the_host_pages_powershell_is_the_drains_own_plan(client):
    """The PowerShell a host page offers makes the moves hvweb's drain would:
    the same VMs, destinations and order, quick for a Low one, and the VMs
    that stay with the drain's reason."""
    from hvweb.inventory.readiness_report import drain_plan

    world = make_world("PS", hosts=3)
    source = world.hosts[0]
    make_vm(source, "ps-low", csv=world.csv, memory_mib=256, priority=1000)
    plan = plan_drain(source, speed=0)
    _, steps = drain_plan(source)
    assert [(s.vm.name, s.destination) for s in steps] == [
        (m.vm.name, m.migration.destination.name) for m in plan.moves
    ]
    low = next(s for s in steps if s.vm.name == "ps-low")
    assert low.command.text.endswith("-MigrationType Quick")
    client.force_login(make_member(world.team, "viewer"))
    body = client.get(source.get_absolute_url()).content.decode()
    assert (f"-Name ps-low -Node {low.destination} -MigrationType Quick") in body
    # Every other host full: the VM stays, and the page says the drain's why.
    Host.objects.filter(pk__in=[h.pk for h in world.hosts[1:]]).update(memory_mib=1)
    _, steps = drain_plan(source)
    assert all(s.command is None and s.reason for s in steps)
    body = client.get(source.get_absolute_url()).content.decode()
    assert f"{steps[0].vm.name} stays: {steps[0].reason}" in body


def test_the_plan_names_what_stays_and_why():
    world = make_world()
    make_vm(world.hosts[0], "local-1", csv=None, highly_available=False)
    plan = plan_drain(world.hosts[0])
    assert [m.vm.name for m in plan.moves] == ["blue-web-1"]
    (stays,) = plan.to_dict()["stayed"]
    assert stays["vm"] == "local-1" and stays["codes"] == ["HIGHLY_AVAILABLE"]
    assert plan.summary.endswith("; 1 stays")


def test_a_down_host_has_no_plan():
    world = make_world()
    Host.objects.filter(pk=world.hosts[0].pk).update(state="down")
    with pytest.raises(DrainRefused):
        plan_drain(world.hosts[0])


def test_the_api_dry_run_returns_the_plan_and_changes_nothing():
    from hvweb.api.testing import token_client

    world = make_world()
    make_vm(world.hosts[0], "low-1", csv=world.csv, priority=1000)
    client = token_client(make_member(world.team, "operator", "api-operator"))
    url = f"/api/hosts/{world.hosts[0].pk}/drain/"
    response = client.post(f"{url}?dry_run=true", {"speed": 0}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert not Migration.objects.exists()
    assert Host.objects.get(pk=world.hosts[0].pk).state == "up"
    assert [(m["vm"], m["kind"], m["order"]) for m in body["moves"]] == [
        ("blue-web-1", "live", 1),
        ("low-1", "quick", 2),
    ]
    quick = body["moves"][1]
    assert quick["downtime_s"] == pytest.approx(quick["total_time_s"])
    assert body["window_s"] == max(m["end_s"] for m in body["moves"])
    assert body["wall_window_s"] is None  # unpaced
    # The same shape as the CLI's --json.
    out = StringIO()
    call_command("drain_host", world.hosts[0].name, "--plan", "--json",
                 "--speed", "0", stdout=out)  # fmt: skip
    cli = json.loads(out.getvalue())
    assert set(cli) == set(body) and cli["moves"] == body["moves"]
    bad = client.post(f"{url}?dry_run=maybe", {}, format="json")
    assert bad.status_code == 400 and "dry_run" in bad.json()
    viewer = token_client(make_member(world.team, "viewer", "api-viewer"))
    assert viewer.post(f"{url}?dry_run=true", {}, format="json").status_code == 403


def test_the_cli_prints_the_plan_line_by_line():
    world = make_world()
    out = StringIO()
    call_command("drain_host", world.hosts[0].name, "--plan", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("HV-BLUE-1: 1 VM, about ")
    assert lines[1].startswith("1. blue-web-1 → HV-BLUE-2 (live, slot 1): 0 s → ")
    assert not Migration.objects.exists()


# --- The confirmation page and the record -------------------------------------------


def test_pause_and_drain_asks_first_with_the_plan_then_checks_the_drain(client):
    import html

    world = make_world()
    host = world.hosts[0]
    make_vm(host, "low-1", csv=world.csv, priority=1000)
    make_vm(host, "local-1", csv=None, highly_available=False)
    client.force_login(make_member(world.team, "operator"))
    page = client.get(host.get_absolute_url()).content.decode()
    assert f'href="/hosts/{host.pk}/drain/plan/"' in page
    confirm = html.unescape(
        client.get(f"/hosts/{host.pk}/drain/plan/").content.decode()
    )
    assert Host.objects.get(pk=host.pk).state == "up"  # asking changes nothing
    assert 'id="plan-summary"' in confirm and "HV-BLUE-1: 2 VMs, about " in confirm
    assert 'data-vm="blue-web-1" data-kind="live"' in confirm
    assert 'data-vm="low-1" data-kind="quick"' in confirm
    assert "local-1 stays: no host of CLU-BLUE can take it" in confirm
    assert 'id="drain-confirm"' in confirm
    client.post(f"/hosts/{host.pk}/drain/")
    (record,) = DrainRecord.objects.all()
    assert record.host == host and record.migrations.count() == 2
    assert [m["vm"] for m in record.plan["moves"]] == ["blue-web-1", "low-1"]
    ids = {m["migration"] for m in record.plan["moves"]}
    assert ids == set(record.migrations.values_list("pk", flat=True))
    text = html.unescape(client.get(host.get_absolute_url()).content.decode())
    assert "Last drain: predicted against actual" in text
    assert 'data-vm="low-1"' in text
    listing = client.get("/drains/").content.decode()
    assert record.get_absolute_url() in listing
    quick = Migration.objects.get(vm__name="low-1")
    detail = client.get(quick.get_absolute_url()).content.decode()
    assert '<dd id="kind">Quick migration <span' in detail
    assert (
        'low-1 <span class="tag warn">quick</span>'
        in client.get("/migrations/").content.decode()
    )
    assert client.get(record.get_absolute_url()).status_code == 200


def test_the_plan_page_is_for_operators_of_the_hosts_team(client):
    world = make_world()
    red = make_world("RED")
    client.force_login(make_member(world.team, "viewer"))
    assert client.get(f"/hosts/{world.hosts[0].pk}/drain/plan/").status_code == 403
    assert client.get(f"/hosts/{red.hosts[0].pk}/drain/plan/").status_code == 404
    client.logout()
    operator = make_member(world.team, "operator")
    client.force_login(operator)
    call_command("drain_host", red.hosts[0].name, "--speed", "0", stdout=StringIO(),
                 stderr=StringIO())  # fmt: skip
    (record,) = DrainRecord.objects.all()
    assert client.get(record.get_absolute_url()).status_code == 404
    assert record.get_absolute_url() not in client.get("/drains/").content.decode()


def test_the_api_resumes_with_or_without_failback():
    from hvweb.api.testing import token_client

    world = make_world()
    host = world.hosts[0]
    client = token_client(make_member(world.team, "operator", "api-operator"))
    url = f"/api/hosts/{host.pk}/resume/"
    Host.objects.filter(pk=host.pk).update(state="paused")
    bad = client.post(f"{url}?dry_run=true", {}, format="json")
    assert bad.status_code == 400 and "dry_run" in bad.json()
    wrong = client.post(url, {"failback": "policy"}, format="json")
    assert wrong.status_code == 400 and "failback" in wrong.json(), wrong.json()
    plan = client.post(f"{url}?dry_run=true", {"failback": "immediate"}, format="json")
    assert plan.status_code == 200 and plan.json()["failback"] is True
    assert plan.json()["moves"] == []
    assert Host.objects.get(pk=host.pk).state == "paused"
    done = client.post(url, {"failback": "immediate"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "up"
    assert "No VM to fail back" in done.json()["summary"]


def test_the_api_plans_and_refuses_rolling_maintenance():
    from hvweb.api.testing import token_client
    from hvweb.maintenance.models import MaintenanceRun

    world = make_world()
    url = f"/api/clusters/{world.cluster.pk}/maintenance/"
    operator = token_client(make_member(world.team, "operator", "api-operator"))
    plan = operator.post(f"{url}?dry_run=true", {"hold_s": 60, "speed": 0},
                         format="json")  # fmt: skip
    assert plan.status_code == 200, plan.content
    body = plan.json()
    assert body["hosts"] == ["HV-BLUE-1", "HV-BLUE-2", "HV-BLUE-3"]
    assert body["n_minus_one"] == [] and body["steps"][0]["vms"] == 1
    assert body["total_s"] == pytest.approx(body["steps"][-1]["end_s"])
    assert not MaintenanceRun.objects.exists()
    bad = operator.post(url, {"hold_s": -1}, format="json")
    assert bad.status_code == 400 and "hold_s" in bad.json()
    for field, value in [("start_at", "tomorrow"), ("time_zone", "Mars/Olympus"),
                         ("time_zone", 0), ("end_by", "2000-01-01 00:00")]:  # fmt: skip
        bad = operator.post(url, {field: value}, format="json")
        assert bad.status_code == 400 and field in bad.json(), (field, bad.json())
    raw = b'{"start_at": "\\udae0\\udd8f"}'
    odd = operator.generic("POST", url, raw, content_type="application/json")
    assert odd.status_code == 400 and "start_at" in odd.json()
    Host.objects.filter(pk__in=[h.pk for h in world.hosts[1:]]).update(memory_mib=400)
    refused = operator.post(url, {"hold_s": 0, "speed": 0}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "N_MINUS_ONE"
    assert "HV-BLUE-1 out: its VMs hold 1,024 MiB" in refused.json()["detail"]
    assert not MaintenanceRun.objects.exists()
    viewer = token_client(make_member(world.team, "viewer", "api-viewer"))
    assert viewer.post(url, {}, format="json").status_code == 403


def test_the_cli_plans_a_rolling_maintenance():
    world = make_world()
    out = StringIO()
    with pytest.raises(SystemExit) as done:
        call_command("maintain_cluster", world.cluster.name, "--plan", "--hold",
                     "2m", "--speed", "0", stdout=out)  # fmt: skip
    assert done.value.code == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("CLU-BLUE: 3 hosts, about 6 min")
    assert lines[1].startswith("HV-BLUE-1: 0 s → ")
    assert "hold 2 min" in lines[1]


def test_rolling_maintenance_from_the_cluster_page(client):
    import html

    from hvweb.maintenance.models import MaintenanceRun

    world = make_world()
    client.force_login(make_member(world.team, "operator"))
    page = client.get(world.cluster.get_absolute_url()).content.decode()
    new = f"/clusters/{world.cluster.pk}/maintenance/"
    assert f'href="{new}"' in page
    first, second, _ = world.hosts
    planned = html.unescape(
        client.get(
            f"{new}?hosts={second.pk}&hosts={first.pk}&hold_s=60"
        ).content.decode()
    )
    assert 'id="run-summary"' in planned and "CLU-BLUE: 2 hosts, about " in planned
    assert planned.index('data-host="HV-BLUE-2"') < planned.index(
        'data-host="HV-BLUE-1"'
    )
    assert 'id="run-start"' in planned
    response = client.post(new, {"hosts": [second.pk, first.pk], "hold_s": "60"})
    run = MaintenanceRun.objects.get()
    assert response.url == run.get_absolute_url()
    assert run.hosts == [second.pk, first.pk] and run.hold_s == 60
    detail = html.unescape(client.get(run.get_absolute_url()).content.decode())
    assert '<meta http-equiv="refresh" content="2">' in detail
    assert 'id="run-cancel"' in detail
    client.post(f"/maintenance/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.cancel_requested
    # While it runs, the cluster page links to it instead of starting another.
    page = client.get(world.cluster.get_absolute_url()).content.decode()
    assert 'id="run-active"' in page and 'id="maintain"' not in page
    # The N-1 check on the page, with the figures, and no start button.
    Host.objects.filter(pk__in=[second.pk, world.hosts[2].pk]).update(memory_mib=400)
    refused = html.unescape(client.get(f"{new}?hosts={first.pk}").content.decode())
    assert "N_MINUS_ONE: HV-BLUE-1 out: its VMs hold 1,024 MiB" in refused
    assert 'id="run-start"' not in refused


def test_a_viewer_sees_runs_but_cannot_start_or_cancel_them(client):
    from hvweb.maintenance.models import MaintenanceRun

    world = make_world()
    run = MaintenanceRun.objects.create(
        cluster=world.cluster, hosts=[h.pk for h in world.hosts], state="running"
    )
    client.force_login(make_member(world.team, "viewer"))
    assert client.get(run.get_absolute_url()).status_code == 200
    assert 'id="run-cancel"' not in client.get(run.get_absolute_url()).content.decode()
    assert client.post(f"/maintenance/{run.pk}/cancel/").status_code == 403
    new = f"/clusters/{world.cluster.pk}/maintenance/"
    assert client.get(new).status_code == 403


def test_history_lists_runs_and_scheduled_work(client):
    from datetime import timedelta

    from django.utils import timezone

    from hvweb.maintenance.rolling import start_run

    world = make_world()
    red = make_world("RED")
    at = timezone.now() + timedelta(days=1)
    start_run(world.cluster, None, [world.hosts[0].pk], drain_only=True,
              start_at=at, time_zone="Asia/Tokyo", speed=0)  # fmt: skip
    start_run(red.cluster, None, [red.hosts[0].pk], hold_s=0, speed=0)
    client.force_login(make_member(world.team, "viewer"))
    assert 'id="runs-link"' in client.get("/migrations/").content.decode()
    page = client.get("/maintenance/").content.decode()
    assert page.count('data-state="pending"') == 1  # the other team's is hidden
    assert "CLU-BLUE" in page and "CLU-RED" not in page
    assert "JST" in page and "scheduled" in page


# --- Balance --------------------------------------------------------------------------


def crowded():
    world = make_world("BAL")
    Host.objects.filter(cluster=world.cluster).update(memory_mib=10_000)
    source = world.hosts[0]
    VirtualMachine.objects.filter(pk=world.vm.pk).update(memory_mib=2_000)
    make_vm(source, "big-1", csv=world.csv, memory_mib=4_000)
    make_vm(source, "mid-1", csv=world.csv, memory_mib=3_000)
    return world


def test_balance_plans_the_fewest_moves_that_bring_every_host_under_the_level():
    from hvweb.maintenance.balance import balance_cluster, plan_balance

    world = crowded()  # HV-BAL-1 at 90 %
    plan = plan_balance(world.cluster, speed=0)
    assert [(m.vm.name, m.migration.destination.name) for m in plan.moves] == [
        ("big-1", "HV-BAL-2")
    ]
    assert plan.hosts == ({"host": "HV-BAL-1", "before_pct": 90.0, "after_pct": 50.0},)
    assert not Migration.objects.exists()
    # At 40 %: two moves, and the second goes where the first did not.
    tight = plan_balance(world.cluster, 40, speed=0)
    assert [(m.vm.name, m.migration.destination.name) for m in tight.moves] == [
        ("big-1", "HV-BAL-2"), ("mid-1", "HV-BAL-3")
    ]  # fmt: skip
    assert tight.stays == ()
    done = balance_cluster(world.cluster, None, speed=0)
    assert [(m.vm.name, m.destination.name) for m in Migration.objects.all()] == [
        ("big-1", "HV-BAL-2")
    ]
    assert [m.vm.name for m in done.moves] == ["big-1"]


def test_balance_through_the_api_and_the_page(client):
    from hvweb.api.testing import token_client

    world = crowded()
    operator = make_member(world.team, "operator", "bal-operator")
    api = token_client(operator)
    url = f"/api/clusters/{world.cluster.pk}/balance/"
    dry = api.post(f"{url}?dry_run=true", {"speed": 0}, format="json")
    assert dry.status_code == 200, dry.content
    assert [m["vm"] for m in dry.json()["moves"]] == ["big-1"]
    assert dry.json()["summary"].startswith(
        "CLU-BAL: 1 move bring 1 of 1 host under 80 %"
    )
    bad = api.post(url, {"level_pct": 0}, format="json")
    assert bad.status_code == 400 and "level_pct" in bad.json()
    assert not Migration.objects.exists()
    client.force_login(operator)
    page = client.get(f"/clusters/{world.cluster.pk}/balance/").content.decode()
    assert 'id="balance-summary"' in page and 'data-vm="big-1"' in page
    client.post(f"/clusters/{world.cluster.pk}/balance/", {"level_pct": "80"})
    assert [m.vm.name for m in Migration.objects.all()] == ["big-1"]
    viewer = token_client(make_member(world.team, "viewer", "bal-viewer"))
    assert viewer.post(url, {}, format="json").status_code == 403
