"""The audit trail: every inventory change (API and admin) and every failed login
is recorded with who, when and what changed, and the admin shows and filters it."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from hvweb.api.testing import token_client
from hvweb.inventory.models import Cluster, Host, Membership, VirtualMachine
from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.tests.test_inventory_admin import admin_url, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def entries_for(obj, action=None):
    entries = LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk")
    return entries if action is None else entries.filter(action=action)


def test_an_api_change_records_the_token_user_and_before_and_after(world):
    admin = make_member(world.team, "administrator", "ann")
    response = token_client(admin).patch(
        f"/api/clusters/{world.cluster.pk}/",
        {"max_simultaneous_migrations": 4, "description": "rack 7"},
        format="json",
    )
    assert response.status_code == 200
    entry = entries_for(world.cluster, LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert entry.remote_addr == "127.0.0.1"
    assert entry.timestamp is not None
    assert entry.changes_dict == {
        "max_simultaneous_migrations": [2, 4],
        "description": ["", "rack 7"],
    }


def test_api_creations_and_deletions_are_recorded_with_their_actor(world):
    admin = make_member(world.team, "administrator", "ann")
    client = token_client(admin)
    response = client.post(
        "/api/hosts/",
        {
            "name": "HV-NEW",
            "cluster": world.cluster.pk,
            "hyperv_version": "2019",
            "cpu_vendor": "intel",
            "memory_mib": 4096,
        },
        format="json",
    )
    assert response.status_code == 201
    host = Host.objects.get(name="HV-NEW")
    created = entries_for(host, LogEntry.Action.CREATE).get()
    assert created.actor == admin
    assert created.changes_dict["name"] == [None, "HV-NEW"]

    assert client.delete(f"/api/hosts/{host.pk}/").status_code == 204
    deleted = LogEntry.objects.get(
        action=LogEntry.Action.DELETE, object_pk=str(host.pk), object_repr="HV-NEW"
    )
    assert deleted.actor == admin


def test_configuring_ha_through_the_api_is_recorded_for_the_operator(world):
    operator = make_member(world.team, "operator", "otto")
    vm = make_vm(world.hosts[1], "blue-new", csv=world.csv, highly_available=False)
    response = token_client(operator).post(f"/api/vms/{vm.pk}/configure-ha/")
    assert response.status_code == 200
    entry = entries_for(vm, LogEntry.Action.UPDATE).get()
    assert (entry.actor, entry.changes_dict) == (
        operator,
        {"highly_available": [False, True]},
    )


def test_a_refused_change_leaves_no_entry(world):
    client = token_client(make_member(world.team, "administrator", "ann"))
    before = LogEntry.objects.count()
    response = client.patch(
        f"/api/vms/{world.vm.pk}/",
        {"automatic_start_action": "always_start"},
        format="json",
    )
    assert response.status_code == 400
    assert LogEntry.objects.count() == before


def test_an_admin_change_records_the_signed_in_user(client, world):
    admin = make_member(world.team, "administrator", "ann")
    client.force_login(admin)
    vm = make_vm(world.hosts[1], "blue-new", csv=world.csv, highly_available=False)
    url = admin_url(VirtualMachine, "change", vm.pk)
    data = form_data(client.get(url))
    data["highly_available"] = "on"
    data["memory_mib"] = "2048"
    assert client.post(url, data).status_code == 302
    entry = entries_for(vm, LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert entry.changes_dict == {
        "memory_mib": [1024, 2048],
        "highly_available": [False, True],
    }


def test_a_role_change_is_recorded(client, world):
    viewer = make_member(world.team, "viewer", "vic")
    membership = Membership.objects.get(user=viewer)
    admin = make_member(world.team, "administrator", "ann")
    client.force_login(admin)
    url = reverse("admin:inventory_membership_change", args=[membership.pk])
    data = form_data(client.get(url))
    data["role"] = "operator"
    assert client.post(url, data).status_code == 302
    entry = entries_for(membership, LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert entry.changes_dict == {"role": ["viewer", "operator"]}


def test_changes_made_by_code_are_recorded_without_an_actor(world):
    Cluster.objects.get(pk=world.cluster.pk).save()  # no change: no entry
    cluster = Cluster.objects.get(pk=world.cluster.pk)
    cluster.description = "by a script on the server"
    cluster.save()
    entry = entries_for(cluster, LogEntry.Action.UPDATE).get()
    assert entry.actor is None


def test_user_changes_are_recorded_without_the_password(world):
    user = get_user_model().objects.create_user("eve", password="first")
    user.set_password("second")
    user.is_staff = True
    user.save()
    entry = entries_for(user, LogEntry.Action.UPDATE).get()
    assert entry.changes_dict == {"is_staff": [False, True]}


# --- Failed logins -------------------------------------------------------------------


def test_a_failed_login_on_the_page_is_recorded_with_name_address_and_time(
    client, world
):
    make_member(world.team, "viewer", "vic")
    response = client.post(reverse("login"), {"username": "vic", "password": "bad"})
    assert response.status_code == 200  # the form again, with its error
    failure = AccessFailureLog.objects.get()
    assert failure.username == "vic"
    assert failure.ip_address == "127.0.0.1"
    assert failure.attempt_time is not None
    assert failure.path_info == reverse("login")
    assert AccessAttempt.objects.get().failures_since_start == 1


def test_a_failed_token_request_is_recorded_as_a_failed_login(world):
    make_member(world.team, "viewer", "vic")
    response = APIClient().post(
        "/api/token/", {"username": "vic", "password": "bad"}, format="json"
    )
    assert response.status_code == 400
    failure = AccessFailureLog.objects.get()
    assert (failure.username, failure.path_info) == ("vic", "/api/token/")


# --- The audit trail in the admin ----------------------------------------------------


def test_a_superuser_sees_and_filters_the_trail_in_the_admin(client, world):
    ann = make_member(world.team, "administrator", "ann")
    bob = make_member(world.team, "administrator", "bob")
    token_client(ann).patch(
        f"/api/hosts/{world.hosts[1].pk}/", {"memory_mib": 32768}, format="json"
    )
    token_client(bob).patch(
        f"/api/hosts/{world.hosts[2].pk}/", {"memory_mib": 65536}, format="json"
    )
    root = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(root)
    url = reverse("admin:auditlog_logentry_changelist")
    page = client.get(url).content.decode()
    assert "HV-BLUE-2" in page and "HV-BLUE-3" in page
    only_ann = client.get(url, {"actor__id__exact": ann.pk})
    assert only_ann.status_code == 200
    listed = list(only_ann.context["cl"].result_list)
    assert {e.object_repr for e in listed} == {"HV-BLUE-2"}
    assert all(e.actor == ann for e in listed)
    entry = listed[0]
    detail = client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk]))
    assert detail.status_code == 200
    assert "32768" in detail.content.decode()


def test_failed_logins_are_listed_in_the_admin(client, world):
    client.post(reverse("login"), {"username": "mallory", "password": "guess"})
    root = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(root)
    page = client.get(reverse("admin:axes_accessfailurelog_changelist"))
    assert page.status_code == 200
    assert "mallory" in page.content.decode()


def test_a_team_administrator_reads_only_their_teams_trail(client, world):
    red = make_world("RED")
    ann = make_member(world.team, "administrator", "ann")
    rex = make_member(red.team, "administrator", "rex")
    token_client(ann).patch(
        f"/api/hosts/{world.hosts[1].pk}/", {"memory_mib": 32768}, format="json"
    )
    token_client(rex).patch(
        f"/api/hosts/{red.hosts[1].pk}/", {"memory_mib": 65536}, format="json"
    )
    gone = red.hosts[2]
    token_client(rex).delete(f"/api/hosts/{gone.pk}/")
    client.force_login(ann)
    url = reverse("admin:auditlog_logentry_changelist")
    page = client.get(url)
    assert page.status_code == 200
    listed = {e.object_repr for e in page.context["cl"].result_list}
    assert "HV-BLUE-2" in listed
    assert not any("RED" in name for name in listed)
    assert "rex" not in page.content.decode()  # not even in the actor filter
    red_entries = LogEntry.objects.filter(object_repr__startswith="HV-RED")
    assert red_entries.count() >= 2  # the change and the deletion, both tagged
    for entry in red_entries:
        assert entry.additional_data["team"] == red.team.pk
        detail = client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk]))
        assert detail.status_code == 404
    client.force_login(rex)
    listed = {e.object_repr for e in client.get(url).context["cl"].result_list}
    assert {"HV-RED-2", "HV-RED-3"} <= listed and "HV-BLUE-2" not in listed


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_do_not_read_the_trail(client, world, role):
    client.force_login(make_member(world.team, role))
    url = reverse("admin:auditlog_logentry_changelist")
    assert client.get(url).status_code == 403


def test_a_journal_entry_changing_nothing_audited_does_not_read_the_move_back(world):
    """auditlog reads a registered row back before every save to diff it: the
    journal skips that for what the audit does not record (progress, stages,
    the sequence: five frames a second per move), and keeps it for the rest."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hvweb.moves import journal
    from hvweb.moves.lifecycle import Kind
    from hvweb.moves.services import start_migration

    operator = make_member(world.team, "operator")
    move = start_migration(world.vm, world.hosts[1], operator, speed=0)

    def reads_of_the_move(kind, **changes) -> int:
        with CaptureQueriesContext(connection) as seen:
            journal.record(move.pk, kind, {"by": "test"}, **changes)
        return sum(
            q["sql"].lstrip().startswith("SELECT") and '"moves_migration"' in
            q["sql"].split("WHERE")[0]
            for q in seen.captured_queries
        )  # fmt: skip

    # None: one UPDATE locks the row and returns what the frame needs.
    assert reads_of_the_move(Kind.PROGRESS, progress={"t": 1.0}) == 0
    before = LogEntry.objects.get_for_object(move).count()
    # A cancel is audited: auditlog reads the row back (and the entry's team
    # is looked up) and writes an entry.
    assert reads_of_the_move(Kind.CANCEL_REQUESTED, cancel_requested=True) > 1
    entry = LogEntry.objects.get_for_object(move).latest("timestamp")
    assert LogEntry.objects.get_for_object(move).count() == before + 1
    assert entry.changes_dict["cancel_requested"] == [False, True]
