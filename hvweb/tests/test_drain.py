"""Draining a host: pause it, move its running VMs away, say what stays."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from hvweb.inventory.models import Host
from hvweb.inventory.testing import make_host, make_member, make_vm, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.drain import DrainRefused, drain_host, resume_host
from hvweb.moves.models import Migration
from hvweb.moves.services import MigrationRefused, start_migration

# Moves started here wait in a queue no worker reads: the test sees them as
# recorded, and no move runs.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("unworked_queue")]


@pytest.fixture
def world():
    w = make_world()
    w.operator = make_member(w.team, "operator")
    return w


def state_of(host: Host) -> str:
    return Host.objects.values_list("state", flat=True).get(pk=host.pk)


def test_drain_pauses_the_host_and_spreads_its_vms_biggest_first(world):
    source, second, third = world.hosts
    make_vm(source, "big-1", csv=world.csv, memory_mib=12_000)
    make_vm(source, "big-2", csv=world.csv, memory_mib=12_000)
    make_vm(source, "small-1", csv=world.csv, memory_mib=2_048)
    outcome = drain_host(source, world.operator)
    assert outcome.paused_now and outcome.complete
    assert state_of(source) == "paused"
    placed = [(m.vm.name, m.destination.name, m.state) for m in outcome.moves]
    # Two moves per host at once (the cluster's limit, the source counting
    # too): the rest queue, each where most memory is left after the others.
    assert placed == [
        ("big-1", second.name, MigrationState.RUNNING),
        ("big-2", third.name, MigrationState.RUNNING),
        ("small-1", second.name, MigrationState.QUEUED),
        ("blue-web-1", third.name, MigrationState.QUEUED),
    ]
    assert all(m.requested_by == world.operator for m in outcome.moves)
    first, *_ = outcome.moves
    assert outcome.lines()[:2] == [
        "HV-BLUE-1 paused: it takes no new VMs.",
        f"big-1 → HV-BLUE-2 (move #{first.pk}, running).",
    ]
    assert outcome.lines()[-1].endswith(", waits for a slot).")


def test_vms_that_cannot_move_stay_with_the_reason(world):
    source = world.hosts[0]
    # Ranked first for its free memory, but it breaks one rule more.
    make_host(world.cluster, "HV-BLUE-9", hyperv_version="2008", memory_mib=65_536)
    make_vm(source, "local-1", csv=None, highly_available=False)
    outcome = drain_host(source, world.operator)
    assert [m.vm.name for m in outcome.moves] == ["blue-web-1"]
    assert not outcome.complete
    stayed = {s.vm.name: s for s in outcome.stayed}
    assert set(stayed) == {"local-1"}
    local = stayed["local-1"]
    assert "HIGHLY_AVAILABLE" in [f.code for f in local.failures]
    # Named by the closest host: the one with fewest failing rules, here the
    # VM's own; on a tie, the most free memory (blue-web-1 went to HV-BLUE-2).
    assert [f.code for f in local.failures] == ["HIGHLY_AVAILABLE"]
    assert str(local).startswith(
        "local-1 stays: no host of CLU-BLUE can take it; the closest, HV-BLUE-3, "
        "refuses it with HIGHLY_AVAILABLE: local-1 is not highly available"
    )
    assert str(local) in outcome.lines()
    # The host is paused all the same: the operator sees what to fix.
    assert state_of(source) == "paused"


def test_drain_moves_high_priority_first_and_quick_migrates_low_and_stopped(world):
    source = world.hosts[0]
    make_vm(source, "low-1", csv=world.csv, memory_mib=8_000, priority=1000)
    make_vm(source, "high-1", csv=world.csv, memory_mib=512, priority=3000)
    make_vm(source, "off-1", csv=world.csv, power_state="off", priority=3000)
    make_vm(source, "saved-1", csv=world.csv, power_state="saved")
    outcome = drain_host(source, world.operator)
    assert outcome.complete
    placed = [(m.vm.name, m.kind) for m in outcome.moves]
    # High first (biggest first within it), then Medium, then Low; only running
    # VMs at or above the threshold (2000, Medium) live-migrate.
    assert placed == [
        ("off-1", "quick"),
        ("high-1", "live"),
        ("blue-web-1", "live"),
        ("saved-1", "quick"),
        ("low-1", "quick"),
    ]
    quick = outcome.moves[0]
    assert f"off-1 → {quick.destination.name} (move #{quick.pk}, quick migration, " in (
        " ".join(outcome.lines())
    )


def test_the_move_type_threshold_is_the_clusters(world):
    world.cluster.move_type_threshold = 3000
    world.cluster.save()
    source = world.hosts[0]
    make_vm(source, "high-1", csv=world.csv, priority=3000)
    outcome = drain_host(source, world.operator)
    kinds = {m.vm.name: m.kind for m in outcome.moves}
    assert kinds == {"high-1": "live", "blue-web-1": "quick"}


def test_a_paused_host_takes_no_vm_until_it_is_resumed(world):
    source, target, _ = world.hosts
    vm = make_vm(target, "elsewhere-1", csv=world.csv)
    drain_host(source, world.operator)
    with pytest.raises(MigrationRefused) as refused:
        start_migration(vm, source, world.operator)
    assert "DESTINATION_PAUSED" in refused.value.codes
    assert resume_host(source, world.operator).state == "up"
    assert start_migration(vm, source, world.operator).state == "running"


def test_draining_again_reports_the_moves_under_way(world):
    source = world.hosts[0]
    first = drain_host(source, world.operator)
    again = drain_host(source, world.operator)
    assert not again.paused_now and again.moves == ()
    assert [m.pk for m in again.under_way] == [m.pk for m in first.moves]
    assert again.lines() == [
        "HV-BLUE-1 was paused already.",
        f"blue-web-1 was already moving (move #{first.moves[0].pk}).",
    ]
    assert Migration.objects.count() == 1


def test_bad_options_change_nothing(world):
    source = world.hosts[0]
    with pytest.raises(ValidationError) as bad:
        drain_host(source, world.operator, speed=-1)
    assert "speed" in bad.value.message_dict
    assert state_of(source) == "up"
    assert not Migration.objects.exists()


def test_a_viewer_may_not_drain_or_resume(world):
    viewer = make_member(world.team, "viewer")
    with pytest.raises(PermissionDenied):
        drain_host(world.hosts[0], viewer)
    assert state_of(world.hosts[0]) == "up"
    Host.objects.filter(pk=world.hosts[0].pk).update(state="paused")
    with pytest.raises(PermissionDenied):
        resume_host(world.hosts[0], viewer)
    assert state_of(world.hosts[0]) == "paused"


def test_a_down_host_is_neither_drained_nor_resumed(world):
    Host.objects.filter(pk=world.hosts[0].pk).update(state="down")
    for act in (drain_host, resume_host):
        with pytest.raises(DrainRefused) as refused:
            act(world.hosts[0], world.operator)
        assert refused.value.code == "HOST_DOWN"
    assert state_of(world.hosts[0]) == "down"
    assert not Migration.objects.exists()


# --- Through the API ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 200), ("administrator", 200)]
)
def test_draining_through_the_api_needs_the_operator_role(world, role, status):
    from hvweb.api.testing import token_client

    client = token_client(make_member(world.team, role, f"api-{role}"))
    response = client.post(
        f"/api/hosts/{world.hosts[0].pk}/drain/", {"speed": 0}, format="json"
    )
    assert response.status_code == status, response.content
    if status == 403:
        assert state_of(world.hosts[0]) == "up" and not Migration.objects.exists()
        return
    body = response.json()
    (move,) = body["moves"]
    assert move["vm"] == {"id": world.vm.pk, "name": "blue-web-1"}
    assert move["state"] == "running"
    assert Migration.objects.get(pk=move["id"]).speed == 0
    assert body["state"] == "paused" and body["paused_now"] and body["complete"]
    assert body["summary"].startswith("HV-BLUE-1 paused: it takes no new VMs. ")
    assert f"blue-web-1 → HV-BLUE-2 (move #{move['id']}, running)." in body["summary"]
    resumed = client.post(f"/api/hosts/{world.hosts[0].pk}/resume/")
    assert resumed.status_code == 200 and resumed.json()["state"] == "up"


def test_the_api_names_what_stays_and_refuses_bad_options_and_down_hosts(world):
    from hvweb.api.testing import token_client

    client = token_client(world.operator)
    host = world.hosts[0]
    bad = client.post(f"/api/hosts/{host.pk}/drain/", {"speed": "fast"}, format="json")
    assert bad.status_code == 400 and "speed" in bad.json()
    assert state_of(host) == "up"
    make_vm(host, "local-1", csv=None, highly_available=False)
    body = client.post(f"/api/hosts/{host.pk}/drain/").json()
    (stayed,) = body["stayed"]
    assert stayed["vm"]["name"] == "local-1" and not body["complete"]
    assert "HIGHLY_AVAILABLE" in [f["code"] for f in stayed["failures"]]
    Host.objects.filter(pk=host.pk).update(state="down")
    down = client.post(f"/api/hosts/{host.pk}/resume/")
    assert down.status_code == 409 and down.json()["code"] == "HOST_DOWN"


# --- From the host page -------------------------------------------------------------


def test_an_operator_drains_and_resumes_from_the_host_page(client, world):
    import html

    host = world.hosts[0]
    make_vm(host, "local-1", csv=None, highly_available=False)
    client.force_login(world.operator)
    page = client.get(host.get_absolute_url()).content.decode()
    assert 'id="drain"' in page and 'id="resume"' not in page
    response = client.post(f"/hosts/{host.pk}/drain/", follow=True)
    text = html.unescape(response.content.decode())
    assert state_of(host) == "paused"
    # Not every VM could leave: a warning beside the button says which and why.
    assert 'class="control-message warning"' in text
    assert "HV-BLUE-1 paused: it takes no new VMs." in text
    assert "blue-web-1 → HV-BLUE-2 (move #" in text
    assert "local-1 stays: no host of CLU-BLUE can take it; the closest" in text
    assert 'id="resume"' in text and 'id="drain"' not in text
    # The moves it started are listed on the host's page, each a link.
    (move,) = Migration.objects.filter(source=host)
    assert f'<a href="/migrations/{move.pk}/">#{move.pk} blue-web-1</a>' in text
    client.post(f"/hosts/{host.pk}/resume/")
    assert state_of(host) == "up"


def test_a_viewer_sees_no_drain_button_and_is_refused(client, world):
    host = world.hosts[0]
    client.force_login(make_member(world.team, "viewer"))
    assert 'id="drain"' not in client.get(host.get_absolute_url()).content.decode()
    assert client.post(f"/hosts/{host.pk}/drain/").status_code == 403
    assert client.get(f"/hosts/{host.pk}/drain/").status_code == 405
    assert state_of(host) == "up"


def test_another_teams_host_cannot_be_drained_from_a_page(client, world):
    red = make_world("RED")
    client.force_login(world.operator)
    assert client.post(f"/hosts/{red.hosts[0].pk}/drain/").status_code == 404
    assert client.post(f"/hosts/{red.hosts[0].pk}/resume/").status_code == 404
    assert state_of(red.hosts[0]) == "up"


# --- Locks ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_configuring_ha_does_not_wait_for_a_drain_holding_the_host(world):
    """A drain holds its host's row; "configure HA" locks its VM's row alone.

    Locking the VM's host and cluster too (``select_related`` rows) made the
    two deadlock on PostgreSQL; with a 2 s lock timeout, waiting fails here.
    """
    import threading

    from django.db import connection, transaction

    from hvweb.inventory.actions import configure_highly_available
    from hvweb.moves.drain import _locked

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite locks the whole file)")
    vm = make_vm(world.hosts[0], "plain-1", csv=world.csv, highly_available=False)
    held, release = threading.Event(), threading.Event()

    def drain_in_progress():
        try:
            with transaction.atomic():
                _locked(world.hosts[0])
                held.set()
                release.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=drain_in_progress)
    holder.start()
    try:
        assert held.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        (outcome,) = configure_highly_available([vm])
        assert outcome.configured
    finally:
        release.set()
        holder.join(20)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
