"""The inventory through the API: what each role reads and changes, and how a
change the rules refuse is answered."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from hvweb.api.testing import token_client
from hvweb.inventory.models import Cluster, Host, Membership, VirtualMachine
from hvweb.inventory.testing import make_host, make_member, make_vm, make_world

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "operator", "administrator"]


@pytest.fixture
def blue():
    return make_world("BLUE")


@pytest.fixture
def red():
    return make_world("RED")


def as_role(world, role):
    return token_client(make_member(world.team, role))


def names(response):
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["results"])


# --- Authentication --------------------------------------------------------------


def test_anonymous_requests_are_401_and_name_the_token_scheme(blue):
    response = APIClient().get("/api/clusters/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_script_trades_its_password_for_a_token_and_uses_it(blue):
    make_member(blue.team, "operator", "ops")
    client = APIClient()
    response = client.post(
        "/api/token/", {"username": "ops", "password": "pw"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["username"] == "ops"
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert names(client.get("/api/clusters/")) == ["CLU-BLUE"]

    assert client.delete("/api/token/").status_code == 204
    assert client.get("/api/clusters/").status_code == 401


def test_a_wrong_password_gets_no_token(blue):
    make_member(blue.team, "operator", "ops")
    response = APIClient().post(
        "/api/token/", {"username": "ops", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


def test_an_invalid_token_is_401(blue):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert client.get("/api/clusters/").status_code == 401


# --- Reading: members see their teams' objects and nothing else -------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_lists_its_teams_objects_only(blue, red, role):
    client = as_role(blue, role)
    assert names(client.get("/api/teams/")) == ["Blue"]
    assert client.get("/api/teams/").json()["results"][0]["role"] == role
    assert names(client.get("/api/clusters/")) == ["CLU-BLUE"]
    assert names(client.get("/api/hosts/")) == ["HV-BLUE-1", "HV-BLUE-2", "HV-BLUE-3"]
    assert names(client.get("/api/csvs/")) == ["Volume1"]
    assert names(client.get("/api/vms/")) == ["blue-web-1"]


def test_a_user_without_a_team_sees_empty_lists(blue):
    from django.contrib.auth import get_user_model

    loner = get_user_model().objects.create_user("loner", password="pw")
    client = token_client(loner)
    for route in ("teams", "clusters", "hosts", "csvs", "vms"):
        response = client.get(f"/api/{route}/")
        assert response.status_code == 200
        assert response.json()["count"] == 0


def test_a_vm_shows_its_cluster_disks_and_adapters(blue):
    body = as_role(blue, "viewer").get(f"/api/vms/{blue.vm.pk}/").json()
    assert body["host"] == blue.hosts[0].pk
    assert body["cluster"] == blue.cluster.pk
    assert body["highly_available"] is True
    assert [d["csv"] for d in body["disks"]] == [blue.csv.pk]
    assert len(body["adapters"]) == 1


def test_filters_and_pagination(blue):
    make_vm(blue.hosts[1], "blue-db-1", csv=blue.csv, power_state="off")
    client = as_role(blue, "viewer")
    assert names(client.get("/api/vms/", {"power_state": "off"})) == ["blue-db-1"]
    assert names(client.get("/api/vms/", {"host": blue.hosts[0].pk})) == ["blue-web-1"]
    assert names(client.get("/api/vms/", {"name": "DB"})) == ["blue-db-1"]
    assert names(client.get("/api/hosts/", {"cluster": blue.cluster.pk})) == [
        "HV-BLUE-1",
        "HV-BLUE-2",
        "HV-BLUE-3",
    ]
    first = client.get("/api/hosts/", {"page_size": 2, "ordering": "-name"}).json()
    assert first["count"] == 3
    assert [h["name"] for h in first["results"]] == ["HV-BLUE-3", "HV-BLUE-2"]
    assert "page=2" in first["next"]
    assert client.get("/api/hosts/", {"page": 9}).status_code == 404
    assert client.get("/api/hosts/", {"cluster": "abc"}).status_code == 400


def test_filtering_by_another_teams_cluster_is_an_empty_page_like_a_missing_one(
    blue, red
):
    client = as_role(blue, "administrator")
    for cluster_id in (red.cluster.pk, 999_999):
        response = client.get("/api/hosts/", {"cluster": cluster_id})
        assert response.status_code == 200
        assert response.json()["count"] == 0


# --- Writing: administrators, through the models' validation ---------------------


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("administrator", 200)]
)
def test_changing_a_cluster_needs_the_administrator_role(blue, role, status):
    response = as_role(blue, role).patch(
        f"/api/clusters/{blue.cluster.pk}/",
        {"max_simultaneous_migrations": 4},
        format="json",
    )
    assert response.status_code == status, response.content
    blue.cluster.refresh_from_db()
    assert blue.cluster.max_simultaneous_migrations == (4 if status == 200 else 2)


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("administrator", 201)]
)
def test_adding_a_host_needs_the_administrator_role(blue, role, status):
    response = as_role(blue, role).post(
        "/api/hosts/",
        {
            "name": "HV-BLUE-4",
            "cluster": blue.cluster.pk,
            "hyperv_version": "2019",
            "cpu_vendor": "intel",
            "memory_mib": 8192,
        },
        format="json",
    )
    assert response.status_code == status, response.content
    assert Host.objects.filter(name="HV-BLUE-4").exists() == (status == 201)
    if status == 201:
        assert response.json()["boot_drive"] == "C"


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("administrator", 200)]
)
def test_replacing_a_csv_needs_the_administrator_role(blue, role, status):
    response = as_role(blue, role).put(
        f"/api/csvs/{blue.csv.pk}/",
        {
            "name": "Volume1",
            "cluster": blue.cluster.pk,
            "path": "C:\\ClusterStorage\\Volume1",
            "capacity_gib": 1024,
            "owner": blue.hosts[1].pk,
            "state": "online",
        },
        format="json",
    )
    assert response.status_code == status, response.content
    blue.csv.refresh_from_db()
    assert blue.csv.capacity_gib == (1024 if status == 200 else 512)


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 403), ("administrator", 204)]
)
def test_deleting_a_vm_needs_the_administrator_role(blue, role, status):
    response = as_role(blue, role).delete(f"/api/vms/{blue.vm.pk}/")
    assert response.status_code == status, response.content
    assert VirtualMachine.objects.filter(pk=blue.vm.pk).exists() == (status != 204)


def test_a_change_the_rules_refuse_names_the_rule_and_changes_nothing(blue):
    client = as_role(blue, "administrator")
    response = client.patch(
        f"/api/vms/{blue.vm.pk}/",
        {"automatic_start_action": "always_start", "memory_mib": 2048},
        format="json",
    )
    assert response.status_code == 400
    (message,) = response.json()["automatic_start_action"]
    assert message.startswith("AUTO_START_ACTION: ")
    blue.vm.refresh_from_db()
    assert (blue.vm.automatic_start_action, blue.vm.memory_mib) == ("nothing", 1024)

    response = client.patch(
        f"/api/hosts/{blue.hosts[1].pk}/", {"boot_drive": "D"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["boot_drive"][0].startswith("BOOT_DRIVE: ")
    assert Host.objects.get(pk=blue.hosts[1].pk).boot_drive == "C"


def test_single_field_and_constraint_errors_come_from_the_model(blue):
    client = as_role(blue, "administrator")
    response = client.patch(
        f"/api/csvs/{blue.csv.pk}/", {"path": "D:\\Data"}, format="json"
    )
    assert response.status_code == 400
    assert "C:\\ClusterStorage\\Volume1" in response.json()["path"][0]
    response = client.patch(
        f"/api/vms/{blue.vm.pk}/", {"working_set_pages": 10**9}, format="json"
    )
    assert response.status_code == 400
    assert "working set" in response.json()["working_set_pages"][0]
    response = client.post(
        "/api/csvs/",
        {
            "name": "Volume1",
            "cluster": blue.cluster.pk,
            "path": "C:\\ClusterStorage\\Volume9",
            "capacity_gib": 10,
        },
        format="json",
    )
    assert response.status_code == 400
    assert "already has a CSV of that name" in str(response.json())


def test_a_cluster_still_holding_hosts_cannot_be_deleted(blue):
    response = as_role(blue, "administrator").delete(
        f"/api/clusters/{blue.cluster.pk}/"
    )
    assert response.status_code == 409
    assert "HV-BLUE-1" in response.json()["detail"]
    assert Cluster.objects.filter(pk=blue.cluster.pk).exists()


def test_a_new_object_must_go_into_a_team_one_administers(blue, red):
    user = make_member(blue.team, "administrator", "ann")
    Membership.objects.create(user=user, team=red.team, role="viewer")
    client = token_client(user)
    body = {
        "name": "HV-X",
        "hyperv_version": "2019",
        "cpu_vendor": "intel",
        "memory_mib": 8192,
    }
    # A team where ann is only a viewer: she may see the cluster, not add to it.
    response = client.post(
        "/api/hosts/", body | {"cluster": red.cluster.pk}, format="json"
    )
    assert response.status_code == 403
    # Moving her own host there is the same refusal.
    response = client.patch(
        f"/api/hosts/{blue.hosts[2].pk}/", {"cluster": red.cluster.pk}, format="json"
    )
    assert response.status_code == 403
    assert not Host.objects.filter(name="HV-X").exists()
    assert Host.objects.get(pk=blue.hosts[2].pk).cluster == blue.cluster


def test_another_teams_cluster_does_not_exist_for_a_new_host(blue, red):
    response = as_role(blue, "administrator").post(
        "/api/hosts/",
        {
            "name": "HV-X",
            "cluster": red.cluster.pk,
            "hyperv_version": "2019",
            "cpu_vendor": "intel",
            "memory_mib": 8192,
        },
        format="json",
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["cluster"][0]
    assert not Host.objects.filter(name="HV-X").exists()


# --- Readiness and "Configure as highly available" --------------------------------


def test_readiness_lists_every_destination_with_its_failing_rules(blue):
    amd = make_host(blue.cluster, "HV-BLUE-AMD", cpu_vendor="amd")
    body = as_role(blue, "viewer").get(f"/api/vms/{blue.vm.pk}/readiness/").json()
    assert body["source"] == {"id": blue.hosts[0].pk, "name": "HV-BLUE-1"}
    assert body["operational"] is False
    by_host = {d["host"]["name"]: d for d in body["destinations"]}
    assert set(by_host) == {"HV-BLUE-2", "HV-BLUE-3", "HV-BLUE-AMD"}
    assert by_host["HV-BLUE-2"] == {
        "host": {"id": blue.hosts[1].pk, "name": "HV-BLUE-2"},
        "ready": True,
        "failures": [],
    }
    (failure,) = by_host["HV-BLUE-AMD"]["failures"]
    assert failure["code"] == "CPU_VENDOR"
    assert failure["seed"] and failure["message"]
    assert by_host["HV-BLUE-AMD"]["host"]["id"] == amd.pk
    assert (body["ready_hosts"], body["candidates"]) == (2, 3)


def test_operational_readiness_adds_the_checks_for_moving_now(blue):
    Host.objects.filter(pk=blue.hosts[2].pk).update(state="down")
    client = as_role(blue, "viewer")
    url = f"/api/vms/{blue.vm.pk}/readiness/"
    plain = {d["host"]["name"]: d for d in client.get(url).json()["destinations"]}
    assert plain["HV-BLUE-3"]["ready"] is True
    now = client.get(url, {"operational": "true"}).json()
    assert now["operational"] is True
    by_host = {d["host"]["name"]: d for d in now["destinations"]}
    assert by_host["HV-BLUE-3"]["ready"] is False
    assert by_host["HV-BLUE-2"]["ready"] is True
    assert client.get(url, {"operational": "maybe"}).status_code == 400


@pytest.mark.parametrize(
    ("role", "status"), [("viewer", 403), ("operator", 200), ("administrator", 200)]
)
def test_configuring_ha_needs_the_operator_role(blue, role, status):
    vm = make_vm(blue.hosts[1], "blue-new", csv=blue.csv, highly_available=False)
    response = as_role(blue, role).post(f"/api/vms/{vm.pk}/configure-ha/")
    assert response.status_code == status, response.content
    vm.refresh_from_db()
    assert vm.highly_available == (status == 200)
    if status == 200:
        assert response.json()["configured"] is True


def test_configuring_ha_refused_by_the_rules_is_409_naming_them(blue):
    vm = make_vm(blue.hosts[1], "blue-local", csv=None, highly_available=False)
    response = as_role(blue, "operator").post(f"/api/vms/{vm.pk}/configure-ha/")
    assert response.status_code == 409
    body = response.json()
    assert body["highly_available"] is False
    assert [f["code"] for f in body["failures"]] == ["HIGHLY_AVAILABLE"]
    vm.refresh_from_db()
    assert vm.highly_available is False
