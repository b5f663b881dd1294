"""What the API refuses at the door: unknown fields and oversized bodies.

A typo must not run with the default it meant to change, and a client that
reads JSON must get JSON back, even when Django refuses the body before any
view runs.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from hvweb.api.models import ApiToken
from hvweb.api.testing import token_client
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = "Unknown field. The fields taken here are: "


@pytest.fixture
def world():
    w = make_world()
    w.vm.memory_mib = 64
    w.vm.save()
    w.operator = make_member(w.team, "operator")
    w.admin = make_member(w.team, "administrator")
    return w


def start(world, **extra):
    body = {"vm": world.vm.pk, "destination": world.hosts[1].pk} | extra
    return token_client(world.operator).post("/api/migrations/", body, format="json")


def test_a_misspelt_option_is_400_naming_it_and_starts_nothing(world, unworked_queue):
    response = start(world, sped=0)
    assert response.status_code == 400, response.content
    (message,) = response.json()["sped"]
    assert message.startswith(UNKNOWN) and "speed" in message
    assert not Migration.objects.exists()


def test_an_unknown_fault_is_400_naming_it_under_faults(world, unworked_queue):
    response = start(world, faults={"bogus": 1, "link_failure_pass": 2})
    assert response.status_code == 400, response.content
    (message,) = response.json()["faults"]["bogus"]
    assert message.startswith(UNKNOWN) and "corrupt_page" in message
    assert not Migration.objects.exists()


def test_known_fields_still_start_the_move(world, unworked_queue):
    response = start(world, speed=0, faults={"link_failure_pass": 2})
    assert response.status_code == 201, response.content
    assert response.json()["faults"] == {"link_failure_pass": 2}


def test_an_unknown_drain_option_is_400_and_leaves_the_host_up(world, unworked_queue):
    client = token_client(world.operator)
    response = client.post(
        f"/api/hosts/{world.hosts[0].pk}/drain/", {"sped": 0}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "sped" in response.json()
    world.hosts[0].refresh_from_db()
    assert world.hosts[0].state == "up"


def test_an_inventory_edit_with_an_unknown_field_changes_nothing(world):
    client = token_client(world.admin)
    url = f"/api/vms/{world.vm.pk}/"
    response = client.patch(url, {"memory_mib": 128, "memroy_mib": 1}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["memroy_mib"]
    world.vm.refresh_from_db()
    assert world.vm.memory_mib == 64
    # What the API returned may be sent back: read-only fields are known.
    record = client.get(url).json()
    assert client.put(url, record, format="json").status_code == 200


def big_body(world) -> bytes:
    padding = "x" * 3_000_000
    return json.dumps(
        {"vm": world.vm.pk, "destination": world.hosts[1].pk, "note": padding}
    ).encode()


def test_a_3_mb_body_is_a_json_400_on_the_api(world, unworked_queue):
    client = token_client(world.operator)
    for url in ("/api/migrations/", f"/api/hosts/{world.hosts[0].pk}/drain/"):
        response = client.post(url, big_body(world), content_type="application/json")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
    assert not Migration.objects.exists()


def test_a_3_mb_body_is_a_json_400_through_the_asgi_handler(world):
    # daphne runs the ASGI handler, which reads the body itself.
    _, key = ApiToken.objects.issue(world.operator)
    response = async_to_sync(AsyncClient().post)(
        "/api/migrations/",
        big_body(world),
        content_type="application/json",
        headers={"authorization": f"Token {key}"},
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]


def test_a_3_mb_form_post_to_a_page_stays_an_html_400(client, world):
    client.force_login(world.operator)
    form = {"destination": world.hosts[1].pk, "note": "x" * 3_000_000}
    response = client.post(f"/vms/{world.vm.pk}/migrate/", form)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
