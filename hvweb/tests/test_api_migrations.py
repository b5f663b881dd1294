"""Live migrations through the API: start, list, detail, cancel; by role; and a
whole scripted move on a real worker."""

from __future__ import annotations

import time

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from hvweb.api.testing import token_client
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.inventory.testing import make_host, make_member, make_vm, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration
from migrator.stages import Stage

ROLES = ["viewer", "operator", "administrator"]


@pytest.fixture
def world():
    w = make_world()
    vm = w.vm
    vm.memory_mib = 64
    vm.workload_profile = "web"
    vm.write_rate = 2_000
    vm.working_set_pages = 2_000
    vm.save()
    return w


def start(client, world, **options):
    body = {"vm": world.vm.pk, "destination": world.hosts[1].pk} | options
    return client.post("/api/migrations/", body, format="json")


# --- Starting ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 201), ("administrator", 201)]
)
def test_starting_a_move_needs_the_operator_role(world, unworked_queue, role, status):
    user = make_member(world.team, role)
    response = start(token_client(user), world, speed=0, downtime_limit_ms=50)
    assert response.status_code == status, response.content
    if status != 201:
        assert not Migration.objects.exists()
        return
    body = response.json()
    migration = Migration.objects.get()
    assert response["Location"] == f"/api/migrations/{migration.pk}/"
    assert body["id"] == migration.pk
    assert (body["vm"], body["source"], body["destination"]) == (
        world.vm.pk,
        world.hosts[0].pk,
        world.hosts[1].pk,
    )
    assert body["requested_by"] == user.username
    assert (body["state"], body["downtime_limit_ms"], body["speed"]) == (
        "running",
        50,
        0.0,
    )
    assert body["performance_option"] == world.cluster.performance_option
    assert body["stages"] == [] and body["passes"] == []
    assert (body["stage"], body["pass_count"], body["failed_stage"]) == ("", None, "")


@pytest.mark.django_db
def test_a_move_the_rules_refuse_is_409_with_every_failing_rule(world, unworked_queue):
    amd = make_host(world.cluster, "HV-BLUE-AMD", cpu_vendor="amd", state="down")
    client = token_client(make_member(world.team, "operator"))
    response = client.post(
        "/api/migrations/",
        {"vm": world.vm.pk, "destination": amd.pk},
        format="json",
    )
    assert response.status_code == 409
    codes = [f["code"] for f in response.json()["failures"]]
    assert "CPU_VENDOR" in codes and len(codes) >= 2
    assert "CPU_VENDOR" in response.json()["detail"]
    assert not Migration.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"downtime_limit_ms": -1}, "downtime_limit_ms"),
        ({"downtime_limit_ms": "300"}, "downtime_limit_ms"),
        ({"speed": 5000}, "speed"),
        ({"performance_option": "carrier-pigeon"}, "performance_option"),
        ({"faults": {"link_failure_pass": 0}}, "faults"),
        ({"faults": {"unknown": 1}}, None),
        ({"vm": "1"}, "vm"),
        ({"destination": None}, "destination"),
    ],
)
def test_bad_options_are_400_naming_the_field_and_store_nothing(
    world, unworked_queue, options, field
):
    client = token_client(make_member(world.team, "operator"))
    response = start(client, world, **options)
    if field is None:  # unknown keys are ignored, as everywhere in the API
        assert response.status_code == 201
        assert response.json()["faults"] == {}
        return
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Migration.objects.exists()


@pytest.mark.django_db
def test_another_teams_vm_or_host_does_not_exist_for_a_start(world, unworked_queue):
    red = make_world("RED")
    client = token_client(make_member(world.team, "administrator"))
    response = start(client, world, vm=red.vm.pk, destination=red.hosts[1].pk)
    assert response.status_code == 400
    assert "does not exist" in response.json()["vm"][0]
    assert "does not exist" in response.json()["destination"][0]
    response = start(client, world, destination=red.hosts[1].pk)
    assert response.status_code == 400
    assert not Migration.objects.exists()


@pytest.mark.django_db
def test_a_second_move_of_the_same_vm_is_refused_while_the_first_is_active(
    world, unworked_queue
):
    client = token_client(make_member(world.team, "operator"))
    assert start(client, world, speed=0).status_code == 201
    again = start(client, world, destination=world.hosts[2].pk, speed=0)
    assert again.status_code == 409
    assert Migration.objects.count() == 1


# --- Reading -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_lists_and_reads_its_teams_moves_only(world, unworked_queue, role):
    operator = make_member(world.team, "operator", "otto")
    mine = start_migration(world.vm, world.hosts[1], operator, speed=0)
    red = make_world("RED")
    start_migration(red.vm, red.hosts[1], None, speed=0)
    client = token_client(make_member(world.team, role))
    listed = client.get("/api/migrations/").json()
    assert [m["id"] for m in listed["results"]] == [mine.pk]
    assert "stages" not in listed["results"][0]
    detail = client.get(f"/api/migrations/{mine.pk}/")
    assert detail.status_code == 200
    assert detail.json()["requested_by"] == "otto"


@pytest.mark.django_db
def test_moves_filter_by_state_vm_and_time(world, unworked_queue):
    operator = make_member(world.team, "operator")
    first = start_migration(world.vm, world.hosts[1], operator, speed=0)
    other_vm = VirtualMachine.objects.create(
        name="blue-idle", host=world.hosts[2], memory_mib=64, highly_available=False
    )
    client = token_client(operator)
    client.post(f"/api/migrations/{first.pk}/cancel/")  # no worker took it: over
    assert [m["id"] for m in client.get("/api/migrations/", {"vm": world.vm.pk})
            .json()["results"]] == [first.pk]  # fmt: skip
    assert client.get("/api/migrations/", {"vm": other_vm.pk}).json()["count"] == 0
    assert client.get("/api/migrations/", {"state": "cancelled"}).json()["count"] == 1
    assert client.get("/api/migrations/", {"state": "running"}).json()["count"] == 0
    later = client.get("/api/migrations/", {"created_after": "2999-01-01T00:00:00Z"})
    assert later.json()["count"] == 0
    assert client.get("/api/migrations/", {"created_after": "soon"}).status_code == 400


# --- Cancelling ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 200), ("administrator", 200)]
)
def test_cancelling_needs_the_operator_role(world, unworked_queue, role, status):
    migration = start_migration(world.vm, world.hosts[1], None, speed=0)
    response = token_client(make_member(world.team, role)).post(
        f"/api/migrations/{migration.pk}/cancel/"
    )
    assert response.status_code == status, response.content
    migration.refresh_from_db()
    assert migration.cancel_requested == (status == 200)
    if status == 200:
        assert response.json()["cancel_requested"] is True


@pytest.mark.django_db
def test_a_queued_move_is_cancelled_at_once(world, unworked_queue):
    operator = make_member(world.team, "operator")
    world.cluster.max_simultaneous_migrations = 1
    world.cluster.save()
    start_migration(world.vm, world.hosts[1], operator, speed=0)
    second_vm = make_vm(world.hosts[0], "blue-2", csv=world.csv, memory_mib=64)
    queued = start_migration(second_vm, world.hosts[2], operator, speed=0)
    assert queued.state == "queued"
    response = token_client(operator).post(f"/api/migrations/{queued.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert response.json()["error_code"] == "CANCELLED"


@pytest.mark.django_db
def test_cancel_is_409_once_the_vm_is_paused_for_the_switchover(world, unworked_queue):
    migration = start_migration(world.vm, world.hosts[1], None, speed=0)
    # As a worker records it when stage 4 begins (no worker runs this move).
    Migration.objects.filter(pk=migration.pk).update(
        started_at=timezone.now(), stage=Stage.STATE_TRANSFER.value
    )
    response = token_client(make_member(world.team, "operator")).post(
        f"/api/migrations/{migration.pk}/cancel/"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "CANCEL_TOO_LATE"
    assert not Migration.objects.get(pk=migration.pk).cancel_requested


# --- The audit trail of moves --------------------------------------------------------


@pytest.mark.django_db
def test_starting_and_cancelling_are_recorded_with_the_person(world, unworked_queue):
    operator = make_member(world.team, "operator", "otto")
    admin = make_member(world.team, "administrator", "ann")
    started = start(token_client(operator), world, speed=0)
    migration = Migration.objects.get(pk=started.json()["id"])
    token_client(admin).post(f"/api/migrations/{migration.pk}/cancel/")
    entries = LogEntry.objects.get_for_object(migration).order_by("pk")
    created = entries.get(action=LogEntry.Action.CREATE)
    assert created.actor == operator
    changes = created.changes_dict
    assert changes["vm"] == [None, world.vm.pk]
    assert changes["destination"] == [None, world.hosts[1].pk]
    assert changes["requested_by"] == [None, operator.pk]
    assert changes["state"] == [None, "running"]
    cancelled = entries.get(action=LogEntry.Action.UPDATE)
    assert cancelled.actor == admin
    assert cancelled.changes_dict["cancel_requested"] == [False, True]
    assert cancelled.changes_dict["state"] == ["running", "cancelled"]


# --- A scripted move, as the README shows it ----------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_script_moves_a_vm_with_a_token_and_watches_it_finish(celery_worker):
    world = make_world()
    Host.objects.filter(pk__in=[h.pk for h in world.hosts]).update(memory_mib=4096)
    VirtualMachine.objects.filter(pk=world.vm.pk).update(
        memory_mib=64, write_rate=2_000, working_set_pages=2_000
    )
    operator = make_member(world.team, "operator", "ops")
    client = APIClient()
    token = client.post(
        "/api/token/", {"username": "ops", "password": "pw"}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    readiness = client.get(
        f"/api/vms/{world.vm.pk}/readiness/", {"operational": "true"}
    ).json()
    destination = next(d["host"]["id"] for d in readiness["destinations"] if d["ready"])
    started = client.post(
        "/api/migrations/",
        {"vm": world.vm.pk, "destination": destination, "speed": 0},
        format="json",
    )
    assert started.status_code == 201, started.content
    url = started["Location"]
    deadline = time.monotonic() + 60
    while (body := client.get(url).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["state"] == "succeeded", body["error_message"]
    assert [s["stage"] for s in body["stages"]] == [s.value for s in Stage]
    assert all(s["outcome"] == "finished" for s in body["stages"])
    assert [p["pass_no"] for p in body["passes"]] == list(
        range(1, body["pass_count"] + 1)
    )
    assert body["verified"] is True
    assert client.get(f"/api/vms/{world.vm.pk}/").json()["host"] == destination
    assert VirtualMachine.objects.get(pk=world.vm.pk).host_id == destination
    # The owner change at "online" (made by the worker) is in the audit trail
    # on behalf of the person who asked for the move.
    (moved,) = [
        entry
        for entry in LogEntry.objects.get_for_object(world.vm).filter(
            action=LogEntry.Action.UPDATE
        )
        if "host" in entry.changes_dict
    ]
    assert moved.changes_dict["host"] == [world.hosts[0].pk, destination]
    assert moved.actor == operator
    assert moved.additional_data == {
        "migration": body["id"],
        "team": world.team.pk,
        "via": "worker",
    }
    started_by = LogEntry.objects.get_for_object(
        Migration.objects.get(pk=body["id"])
    ).get(action=LogEntry.Action.CREATE)
    assert started_by.actor == get_user_model().objects.get(pk=operator.pk)
