"""Inputs that crashed (500, 1011) are refused with a 4xx naming the field or rule,
with nothing written, and the schema says what the server accepts."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from hvweb.api.testing import token_client
from hvweb.asgi import application
from hvweb.core import jsonlimits
from hvweb.core.testing import WebsocketCommunicator
from hvweb.core.wsorigin import origin_allowed
from hvweb.inventory.limits import MAX_VM_MEMORY_MIB, MAX_VM_VCPUS
from hvweb.inventory.models import VirtualMachine
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration
from hvweb.webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

#: 2 KB that nests a thousand levels: RecursionError in Python's json module.
DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture
def world():
    return make_world()


def _schema() -> dict:
    response = Client().get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    return response.json()


def _json_operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API that reads a JSON body, from the schema."""
    operations = []
    for path, methods in _schema()["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                operations.append((method, path))
    return operations


# --- Deep JSON --------------------------------------------------------------------


def test_the_depth_check_counts_brackets_outside_strings_only():
    jsonlimits.check_depth('["' + "[" * 500 + '"]')
    jsonlimits.check_depth("[" * 64 + "]" * 64)
    with pytest.raises(jsonlimits.TooDeep):
        jsonlimits.check_depth("[" * 65 + "]" * 65)
    with pytest.raises(jsonlimits.TooDeep):
        jsonlimits.check_depth('{"a":' * 65 + "1" + "}" * 65)
    assert jsonlimits.loads('{"a": ["\\"[[[", 1]}') == {"a": ['"[[[', 1]}
    # Wide but shallow is fine; depth counts, not the number of brackets.
    jsonlimits.check_depth("[" + ",".join(["[[1]]"] * 10_000) + "]")
    jsonlimits.check_depth("[" * 64 + "]" * 64 + "[" * 64 + "]" * 64)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000,  # never closed
        "[" * 1000 + "]" * 999,
        "]" * 5 + "[" * 70,
        '{"a":' * 1000,
        "[" * 40 + "{" * 40 + "}" * 40 + "]" * 40,
        "[" * 63 + "[" * 2000 + "]",
    ],
)
def test_malformed_deep_text_is_refused_before_the_parser_recurses(text):
    with pytest.raises(jsonlimits.TooDeep):
        jsonlimits.loads(text)


@pytest.mark.parametrize("text", ["[" * 10 + "]" * 3, "]]][[[", "[}", "[1,]"])
def test_malformed_shallow_text_is_the_parsers_error(text):
    with pytest.raises(ValueError) as caught:
        jsonlimits.loads(text)
    assert not isinstance(caught.value, jsonlimits.TooDeep)


def test_every_json_endpoint_refuses_a_deeply_nested_body_with_a_400(world):
    operations = _json_operations()
    assert ("post", "/api/token/") in operations and len(operations) >= 8
    admin = token_client(make_member(world.team, "administrator"))
    # Each path's own object, so a 400 is the body's fault and not a 404's.
    finished = Migration.objects.create(
        vm=world.vm, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[1], performance_option="tcpip", speed=0,
        reserved_memory_mib=world.vm.memory_mib, state="succeeded",
        finished_at=timezone.now(),
    )  # fmt: skip
    hook = Endpoint.objects.create(
        team=world.team, url="https://93.184.215.14/hook", events=["migration.failed"]
    )
    ids = {
        "/api/migrations/": finished.pk,
        "/api/webhooks/": hook.pk,
        "/api/hosts/": world.hosts[0].pk,
        "/api/clusters/": world.cluster.pk,
        "/api/csvs/": world.csv.pk,
        "/api/teams/": world.team.pk,
    }
    before = (VirtualMachine.objects.count(), Migration.objects.count())
    for method, path in operations:
        pk = next((v for k, v in ids.items() if path.startswith(k)), world.vm.pk)
        url = path.replace("{id}", str(pk))
        client = APIClient() if path == "/api/token/" else admin
        response = getattr(client, method)(
            url, data=DEEP, content_type="application/json"
        )
        assert response.status_code == 400, (method, url, response.content)
        assert "nested deeper than 64 levels" in response.json()["detail"]
    assert (VirtualMachine.objects.count(), Migration.objects.count()) == before


def test_an_anonymous_deep_body_to_the_token_endpoint_is_a_400():
    response = APIClient().post(
        "/api/token/", data=DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested deeper than 64" in response.json()["detail"]


def test_a_body_at_the_depth_limit_still_parses_to_a_field_error(world):
    admin = token_client(make_member(world.team, "administrator"))
    body = json.dumps({"name": json.loads("[" * 63 + "]" * 63)})
    response = admin.patch(
        f"/api/vms/{world.vm.pk}/", data=body, content_type="application/json"
    )
    assert response.status_code == 400 and "name" in response.json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_url")
def test_a_deep_websocket_frame_gets_an_error_frame_and_the_socket_lives_on(client):
    world = make_world()
    viewer = make_member(world.team, "viewer")
    client.force_login(viewer)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]

    async def scenario():
        ws = WebsocketCommunicator(
            application, f"/ws/clusters/{world.cluster.pk}/", headers=headers
        )
        connected, _ = await ws.connect(timeout=10)
        assert connected
        snapshot = await ws.receive_json_from(timeout=10)
        await ws.send_to(text_data=DEEP)
        error = await ws.receive_json_from(timeout=10)
        await ws.send_to(text_data='{"type": "ping"}')
        pong = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return snapshot, error, pong

    snapshot, error, pong = asyncio.run(scenario())
    assert snapshot["type"] == "snapshot"
    assert error["type"] == "error" and "nested deeper than 64" in error["error"]
    assert pong == {"type": "pong"}


# --- The migrate form's destination ------------------------------------------------


@pytest.mark.parametrize("destination", ["abc", "1.5", "-1", "1e3", " 2", "9" * 30])
def test_a_malformed_destination_is_a_400_naming_it_and_starts_nothing(
    client, world, destination
):
    client.force_login(make_member(world.team, "operator"))
    response = client.post(f"/vms/{world.vm.pk}/migrate/", {"destination": destination})
    assert response.status_code == 400
    assert response.content.decode().startswith("destination: Give a whole number")
    assert not Migration.objects.exists()


# --- Unknown websocket paths ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ws/nope/", "/ws/clusters/abc/", "/", "/ws/clusters/" + "9" * 30 + "/"]
)
def test_an_unknown_websocket_path_is_refused_cleanly(path):
    async def scenario():
        ws = WebsocketCommunicator(
            application,
            path,
            headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
        )
        return await ws.connect(timeout=10)

    connected, code = asyncio.run(scenario())
    assert connected is False and code == 4404


# --- A VM's bounds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vcpus", 2**31),
        ("vcpus", MAX_VM_VCPUS + 1),
        ("memory_mib", 2**31),
        ("memory_mib", MAX_VM_MEMORY_MIB + 1),
    ],
)
def test_a_vm_beyond_hyperv_bounds_is_refused_naming_the_field(world, field, value):
    admin = token_client(make_member(world.team, "administrator"))
    response = admin.patch(
        f"/api/vms/{world.vm.pk}/", data={field: value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()
    world.vm.refresh_from_db()
    assert getattr(world.vm, field) != value


def test_a_vm_at_hyperv_bounds_is_accepted(world):
    admin = token_client(make_member(world.team, "administrator"))
    response = admin.patch(
        f"/api/vms/{world.vm.pk}/",
        data={"vcpus": MAX_VM_VCPUS, "memory_mib": MAX_VM_MEMORY_MIB},
        format="json",
    )
    assert response.status_code == 200, response.content
    world.vm.refresh_from_db()
    assert (world.vm.vcpus, world.vm.memory_mib) == (MAX_VM_VCPUS, MAX_VM_MEMORY_MIB)


def test_the_schema_states_the_vm_bounds():
    vm = _schema()["components"]["schemas"]["PatchedVirtualMachineRequest"]
    assert vm["properties"]["vcpus"]["maximum"] == MAX_VM_VCPUS
    assert vm["properties"]["memory_mib"]["maximum"] == MAX_VM_MEMORY_MIB


# --- Integer query parameters -----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page=last",
        "page=1.0",
        "page=%2B1",
        "page=0",
        "cluster=1.0",
        "cluster=3.0",
        "cluster=%2B1",
        "host=1e2",
        "page=",
        "page=1&page=2",
        "cluster=1.0&page=",
    ],
)
def test_integer_query_parameters_take_digits_only(world, query):
    client = token_client(make_member(world.team, "viewer"))
    response = client.get(f"/api/vms/?{query}")
    assert response.status_code == 400, response.content
    assert query.split("=")[0] in response.json()


def test_a_well_formed_page_and_cluster_still_work(world):
    client = token_client(make_member(world.team, "viewer"))
    response = client.get(f"/api/vms/?page=1&cluster={world.cluster.pk}")
    assert response.status_code == 200
    assert [v["name"] for v in response.json()["results"]] == [world.vm.name]
    assert client.get("/api/vms/?page=2").status_code == 404  # past the end


def test_the_schema_says_id_filters_are_integers():
    schema = _schema()
    for path in ("/api/vms/", "/api/hosts/", "/api/migrations/"):
        for parameter in schema["paths"][path]["get"]["parameters"]:
            if parameter["name"] in {
                "cluster",
                "host",
                "source",
                "destination",
                "page",
            }:
                assert parameter["schema"]["type"] == "integer", (path, parameter)


# --- The websocket origin, port included -----------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://127.0.0.1", "127.0.0.1", True),
        ("http://127.0.0.1:80", "127.0.0.1", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://127.0.0.1:1", "127.0.0.1:8000", False),
        ("http://127.0.0.1:1", "127.0.0.1", False),
        ("http://localhost:8000", "127.0.0.1:8000", False),
        ("http://evil.example:8000", "evil.example:8000", False),  # not allowed
        ("null", "127.0.0.1", False),
        (None, "127.0.0.1", False),
        ("http://127.0.0.1:99999", "127.0.0.1:99999", False),
    ],
)
def test_the_origin_must_be_the_sites_own_port_included(origin, host, allowed):
    assert origin_allowed(origin, host) is allowed


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_an_import_file_nested_too_deep_is_refused_not_a_crash(depth):
    from hvweb.inventory.importers.document import ImportRefused, parse

    with pytest.raises(ImportRefused) as refused:
        parse(("[" * depth + "]" * depth).encode())
    assert "nests too deeply" in str(refused.value)
