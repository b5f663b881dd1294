"""Sessions end after HVWEB_SESSION_HOURS without use and are renewed by use;
behind trusted proxies the client's address is the one X-Forwarded-For names."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from hvweb.api.testing import token_client
from hvweb.core import sessions
from hvweb.inventory.testing import make_member, make_world

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "from django.conf import settings;"
    "print(settings.SESSION_COOKIE_AGE, settings.HVWEB_TRUSTED_PROXIES)"
)


def _settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HVWEB_")}
    clean.update(
        HVWEB_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="hvweb.settings", **env
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True,
        text=True,
    )  # fmt: skip


def test_a_session_lasts_eight_hours_by_default_and_the_setting_changes_it(tmp_path):
    assert _settings(tmp_path).stdout.split()[0] == str(8 * 3600)
    assert _settings(tmp_path, HVWEB_SESSION_HOURS="0.5").stdout.split()[0] == "1800"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HVWEB_SESSION_HOURS", "forever"),
        ("HVWEB_SESSION_HOURS", "0"),
        ("HVWEB_TRUSTED_PROXIES", "10.0.0.1,nginx"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(tmp_path, name, value):
    result = _settings(tmp_path, **{name: value})
    assert result.returncode != 0 and name in result.stderr


@pytest.fixture
def world():
    return make_world()


def _expiry(client) -> float:
    key = client.cookies["sessionid"].value
    return Session.objects.get(session_key=key).expire_date.timestamp()


def test_use_renews_the_session_and_idleness_ends_it(client, world, monkeypatch):
    make_member(world.team, "viewer", "vic")
    assert (
        client.post(reverse("login"), {"username": "vic", "password": "pw"}).status_code
        == 302
    )
    first = _expiry(client)
    assert first == pytest.approx(time.time() + 8 * 3600, abs=60)
    # An hour later, a request pushes the end eight hours from then.
    later = time.time() + 3600
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    with monkeypatch.context() as m:
        m.setattr("django.utils.timezone.now", _fake_now(later))
        client.get("/")
    assert _expiry(client) == pytest.approx(later + 8 * 3600, abs=60)
    # A session whose end has passed is no session.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def _fake_now(epoch: float):
    from datetime import UTC, datetime

    return lambda: datetime.fromtimestamp(epoch, UTC)


# --- The client's address behind a trusted proxy -----------------------------------

PROXY = "10.0.0.5"


def _fail(user: str, *, remote: str, forwarded: str | None = None) -> int:
    headers = {"REMOTE_ADDR": remote}
    if forwarded:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return (
        Client(**headers)
        .post(reverse("login"), {"username": user, "password": "wrong"})
        .status_code
    )


def _login(user: str, *, remote: str, forwarded: str | None = None) -> int:
    headers = {"REMOTE_ADDR": remote}
    if forwarded:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return (
        Client(**headers)
        .post(reverse("login"), {"username": user, "password": "pw"})
        .status_code
    )


@override_settings(HVWEB_TRUSTED_PROXIES=[PROXY])
def test_behind_a_trusted_proxy_one_clients_failures_lock_only_that_client(world):
    make_member(world.team, "viewer", "vic")
    for _ in range(5):
        _fail("vic", remote=PROXY, forwarded="203.0.113.7")
    assert _login("vic", remote=PROXY, forwarded="203.0.113.7") == 429
    # The same user from another client behind the same proxy still logs in.
    assert _login("vic", remote=PROXY, forwarded="198.51.100.9") == 302


@override_settings(HVWEB_TRUSTED_PROXIES=["10.0.0.0/24"])
def test_a_client_cannot_choose_its_address_through_the_header(world):
    make_member(world.team, "viewer", "vic")
    # From outside the trusted proxies the header is ignored: five failures with
    # five made-up addresses are five failures from one address.
    for i in range(5):
        _fail("vic", remote="192.0.2.1", forwarded=f"198.51.100.{i}")
    assert _login("vic", remote="192.0.2.1", forwarded="198.51.100.77") == 429
    # Through the proxy, the left part of the chain is the client's to invent:
    # the address is the last one the trusted proxies did not add.
    for i in range(5):
        _fail("vic", remote="10.0.0.5", forwarded=f"198.51.100.{i}, 192.0.2.50")
    assert _login("vic", remote="10.0.0.5", forwarded="1.2.3.4, 192.0.2.50") == 429


def test_without_trusted_proxies_the_header_is_ignored(world):
    make_member(world.team, "viewer", "vic")
    for _ in range(5):
        _fail("vic", remote="127.0.0.1", forwarded="203.0.113.7")
    assert _login("vic", remote="127.0.0.1", forwarded="198.51.100.9") == 429


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], "192.0.2.1"), (["192.0.2.1"], "203.0.113.7")],
)
def test_the_audit_trail_records_the_address_the_same_way(world, trusted, expected):
    admin = make_member(world.team, "administrator")
    client = token_client(admin)
    client.defaults.update(REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    with override_settings(HVWEB_TRUSTED_PROXIES=trusted):
        client.patch(
            f"/api/hosts/{world.hosts[1].pk}/", {"memory_mib": 32768}, format="json"
        )
    entry = LogEntry.objects.filter(object_repr="HV-BLUE-2").latest("pk")
    assert entry.remote_addr == expected
