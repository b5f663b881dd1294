"""API tokens are stored as digests: a key is shown once, at creation, and the
database (the file itself), the admin and the CLI show only its prefix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from hvweb.api.models import ApiToken, digest
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def _issue(username="ops") -> dict:
    response = APIClient().post(
        "/api/token/", {"username": username, "password": "pw"}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db(transaction=True)
def test_the_database_file_never_holds_a_key():
    world = make_world()
    make_member(world.team, "operator", "ops")
    body = _issue()
    key = body["token"]
    assert body["prefix"] == key[:8] and len(key) >= 40
    token = ApiToken.objects.get()
    assert token.digest == digest(key) and key not in token.digest
    if connection.vendor == "sqlite":
        connection.close()  # checkpoint: the rows are in the main file or the WAL
        name = Path(connection.settings_dict["NAME"])
        for path in (name, Path(f"{name}-wal")):
            if path.exists():
                assert key.encode() not in path.read_bytes()


def test_each_post_issues_a_new_key_and_delete_revokes_the_one_used(world):
    make_member(world.team, "operator", "ops")
    first, second = _issue()["token"], _issue()["token"]
    assert first != second
    assert _client(first).get("/api/vms/").status_code == 200
    assert _client(second).get("/api/vms/").status_code == 200
    assert _client(first).delete("/api/token/").status_code == 204
    assert _client(first).get("/api/vms/").status_code == 401
    assert _client(second).get("/api/vms/").status_code == 200


def test_a_wrong_key_and_an_inactive_users_key_are_401(world):
    user = make_member(world.team, "operator", "ops")
    key = _issue()["token"]
    assert (
        _client(key[:-1] + ("A" if key[-1] != "A" else "B"))
        .get("/api/vms/")
        .status_code
        == 401
    )
    user.is_active = False
    user.save()
    assert _client(key).get("/api/vms/").status_code == 401


def test_the_admin_shows_a_prefix_never_the_key(client, world):
    make_member(world.team, "operator", "ops")
    key = _issue()["token"]
    root = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(root)
    listing = client.get(reverse("admin:api_apitoken_changelist")).content.decode()
    assert key[:8] in listing and key not in listing
    token = ApiToken.objects.get()
    detail = client.get(reverse("admin:api_apitoken_change", args=[token.pk]))
    assert key not in detail.content.decode() and token.digest not in listing


def test_team_staff_cannot_reach_the_tokens_in_the_admin(client, world):
    client.force_login(make_member(world.team, "administrator"))
    url = reverse("admin:api_apitoken_changelist")
    assert client.get(url).status_code == 403


def test_the_cli_prints_a_new_key_once_and_lists_prefixes(world):
    make_member(world.team, "operator", "ops")
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", "create", "ops", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert "shown this once" in err.getvalue()
    assert _client(key).get("/api/vms/").status_code == 200
    listed = io.StringIO()
    call_command("api_token", "list", stdout=listed)
    assert key[:8] in listed.getvalue() and key not in listed.getvalue()
    call_command("api_token", "revoke", key[:8], stdout=io.StringIO())
    assert _client(key).get("/api/vms/").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_the_clear_keys_scripts_already_hold():
    world = make_world()
    user = make_member(world.team, "operator", "ops")
    key = "0123456789abcdef0123456789abcdef01234567"
    call_command("migrate", "api", "zero", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, CURRENT_TIMESTAMP, %s)",
            [key, user.pk],
        )
    call_command("migrate", "api", verbosity=0)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert ApiToken.objects.get().digest == digest(key)
    assert _client(key).get("/api/vms/").status_code == 200
