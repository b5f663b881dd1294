"""The hardened surface: login rate limiting, CSRF, production cookies and HSTS,
a locally served API docs page, and 4xx (never 5xx) for malformed requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from hvweb.api.testing import token_client
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world():
    return make_world()


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Login rate limiting -------------------------------------------------------------


def test_five_failures_lock_the_login_page_even_for_the_right_password(client, world):
    make_member(world.team, "viewer", "vic")
    for _ in range(4):
        response = client.post(reverse("login"), {"username": "vic", "password": "x"})
        assert response.status_code == 200
    fifth = client.post(reverse("login"), {"username": "vic", "password": "x"})
    assert fifth.status_code == 429
    response = client.post(reverse("login"), {"username": "vic", "password": "pw"})
    assert response.status_code == 429
    assert not logged_in(client)


def test_four_failures_then_the_right_password_logs_in_and_resets_the_count(
    client, world
):
    make_member(world.team, "viewer", "vic")
    for _ in range(4):
        client.post(reverse("login"), {"username": "vic", "password": "x"})
    response = client.post(reverse("login"), {"username": "vic", "password": "pw"})
    assert response.status_code == 302 and logged_in(client)
    client.logout()
    for _ in range(4):
        client.post(reverse("login"), {"username": "vic", "password": "x"})
    assert (
        client.post(reverse("login"), {"username": "vic", "password": "pw"}).status_code
        == 302
    )


def test_a_lockout_holds_one_user_name_from_one_address_only(client, world):
    make_member(world.team, "viewer", "vic")
    make_member(world.team, "operator", "otto")
    for _ in range(5):
        client.post(reverse("login"), {"username": "vic", "password": "x"})
    other_user = client.post(reverse("login"), {"username": "otto", "password": "pw"})
    assert other_user.status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    response = elsewhere.post(reverse("login"), {"username": "vic", "password": "pw"})
    assert response.status_code == 302


def test_the_token_endpoint_is_rate_limited_like_the_login_page(world):
    make_member(world.team, "operator", "ops")
    client = APIClient()
    for attempt in range(1, 6):
        response = client.post(
            "/api/token/", {"username": "ops", "password": "x"}, format="json"
        )
        assert response.status_code == (429 if attempt == 5 else 400)
    response = client.post(
        "/api/token/", {"username": "ops", "password": "pw"}, format="json"
    )
    assert response.status_code == 429
    assert "token" not in response.json()


def test_the_admin_login_is_rate_limited_too(client, world):
    make_member(world.team, "administrator", "ann")
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "ann", "password": "x"})
    response = client.post(url, {"username": "ann", "password": "pw"})
    assert response.status_code == 429
    assert not logged_in(client)


def test_code_that_logs_in_without_a_request_still_can(client, world):
    # Django's test client authenticates without a request: axes has no
    # address to count, and the rate-limiting backend lets it through.
    make_member(world.team, "viewer", "vic")
    assert client.login(username="vic", password="pw") is True
    assert client.get("/").status_code == 200
    assert client.login(username="vic", password="wrong") is False


# --- CSRF ----------------------------------------------------------------------------


def test_the_login_page_refuses_a_post_without_its_csrf_token(world):
    make_member(world.team, "viewer", "vic")
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "vic", "password": "pw"})
    assert response.status_code == 403
    assert not logged_in(client)


def test_a_browser_session_writes_to_the_api_only_with_the_csrf_token(world):
    admin = make_member(world.team, "administrator", "ann")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = f"/api/clusters/{world.cluster.pk}/"
    body = json.dumps({"description": "from the browser"})
    refused = client.patch(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get(reverse("login"))  # sets the csrftoken cookie, as a page would
    token = client.cookies["csrftoken"].value
    accepted = client.patch(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 200
    world.cluster.refresh_from_db()
    assert world.cluster.description == "from the browser"


def test_token_authenticated_scripts_need_no_csrf_token(world):
    admin = make_member(world.team, "administrator", "ann")
    client = token_client(admin)
    client.enforce_csrf_checks = True
    response = client.patch(
        f"/api/clusters/{world.cluster.pk}/", {"description": "x"}, format="json"
    )
    assert response.status_code == 200


# --- Production settings -------------------------------------------------------------

PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
plain = Client().get("/login/")
secure = Client().get("/login/", secure=True)
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "redirect": [plain.status_code, plain.get("Location")],
    "hsts": secure.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(cookie["secure"]),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "frame": secure.get("X-Frame-Options"),
    "nosniff": secure.get("X-Content-Type-Options"),
}))
"""


def test_production_settings_send_hsts_secure_cookies_and_redirect_to_https(
    tmp_path,
):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(
        HVWEB_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="hvweb.settings",
        SECRET_KEY="k" * 20 + "-production-secret-" + "z" * 30,
        ALLOWED_HOSTS="testserver",
        HVWEB_HTTPS="1",
    )
    out = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["redirect"] == [301, "https://testserver/login/"]
    assert found["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert found["csrf_cookie_secure"] is True
    assert found["session_cookie_secure"] is True
    assert found["session_cookie_httponly"] is True
    assert (found["frame"], found["nosniff"]) == ("DENY", "nosniff")


# --- The API's docs, served from here ------------------------------------------------


def test_the_docs_page_loads_its_scripts_from_this_server_only(client):
    for url in ("/api/docs/",):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in page
        for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs", "http://", "https://"):
            assert cdn not in page, (url, cdn)
    script = client.get(
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    )
    assert script.status_code == 200
    assert b"SwaggerUI" in b"".join(script.streaming_content)


def test_the_schema_describes_every_route_and_its_errors(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/api/token/", "/api/vms/{id}/readiness/", "/api/clusters/"} <= set(paths)
    patch = paths["/api/vms/{id}/"]["patch"]
    assert {"200", "400", "401", "403", "404"} <= set(patch["responses"])


# --- Malformed requests are 4xx, never 5xx -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("post", "/api/hosts/", "{not json", "application/json", 400),
        ("post", "/api/hosts/", "name=x", "application/x-www-form-urlencoded", 415),
        ("post", "/api/hosts/", "[1, 2]", "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"memory_mib": "lots"}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"memory_mib": 1e400}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"host": [1]}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"name": "\\u0000"}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"memory_mib": "2048"}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"highly_available": 0}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"host": "1"}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"name": 5}', "application/json", 400),
        ("patch", "/api/vms/{vm}/", '{"power_state": 1}', "application/json", 400),
        ("get", "/api/vms/abc/", None, None, 404),
        ("get", "/api/vms/99999999999999999999999/", None, None, 404),
        ("get", "/api/vms/?page=-1", None, None, 400),
        ("get", "/api/vms/?page_size=abc", None, None, 400),
        ("get", "/api/vms/?page_size=10&page_size=20", None, None, 400),
        ("get", "/api/vms/?host=-2.3788587423689e%2B212", None, None, 400),
        ("get", "/api/vms/?host=99999999999999999999", None, None, 400),
        ("get", "/api/vms/?highly_available=null", None, None, 400),
        ("get", "/api/hosts/?hyperv_version=", None, None, 400),
        ("get", "/api/vms/{vm}/readiness/?operational=", None, None, 400),
        ("get", "/api/vms/0.5/", None, None, 404),
        ("get", "/api/no-such-thing/", None, None, 404),
        ("get", "/api/vms/?ordering=password", None, None, 200),
        ("get", "/api/vms/?cluster=1e999", None, None, 400),
        ("post", "/api/token/", '{"username": 5}', "application/json", 400),
        ("put", "/api/vms/", "{}", "application/json", 405),
    ],
)
def test_malformed_requests_are_refused_without_a_server_error(
    world, method, path, body, content_type, status
):
    client = token_client(make_member(world.team, "administrator"))
    kwargs = {}
    if body is not None:
        kwargs = {"data": body, "content_type": content_type}
    response = getattr(client, method)(path.format(vm=world.vm.pk), **kwargs)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    if status == 400:  # an object naming what is wrong, as the schema says
        assert isinstance(response.json(), dict)


def test_a_superuser_reaches_every_team_through_the_api(world):
    red = make_world("RED")
    root = get_user_model().objects.create_superuser("root", password="pw")
    response = token_client(root).get("/api/vms/")
    assert sorted(v["name"] for v in response.json()["results"]) == [
        "blue-web-1",
        red.vm.name,
    ]


# --- Websocket origin checks ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("unworked_queue")
@pytest.mark.parametrize("route", ["migrations", "clusters"])
def test_websockets_refuse_foreign_or_missing_origins_and_accept_the_sites_own(
    client, route
):
    import asyncio

    from hvweb.asgi import application
    from hvweb.core.testing import WebsocketCommunicator
    from hvweb.moves.services import start_migration

    world = make_world()
    operator = make_member(world.team, "operator")
    migration = start_migration(world.vm, world.hosts[1], operator, speed=0)
    pk = migration.pk if route == "migrations" else world.cluster.pk
    client.force_login(operator)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    host = (b"host", b"127.0.0.1:8000")

    async def connects(headers) -> bool:
        communicator = WebsocketCommunicator(
            application, f"/ws/{route}/{pk}/", headers=headers
        )
        connected, _ = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected

    async def scenario():
        return [
            await connects([(b"origin", b"https://evil.example"), host, cookie]),
            await connects(
                [(b"origin", b"http://127.0.0.1.evil.example"), host, cookie]
            ),
            await connects([(b"origin", b"null"), host, cookie]),
            await connects([host, cookie]),
            # Another program on the same machine: the port is part of the origin.
            await connects([(b"origin", b"http://127.0.0.1:1"), host, cookie]),
            await connects([(b"origin", b"http://127.0.0.1:8000"), host, cookie]),
        ]

    assert asyncio.run(scenario()) == [False, False, False, False, False, True]
