"""Signed webhooks per team, delivered by a real worker to a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from conftest import Worker, database_url_for_children
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.drain import drain_host
from hvweb.moves.services import start_migration
from hvweb.webhooks import events, signing
from hvweb.webhooks.models import Delivery, Endpoint

SECRET = "a-long-enough-test-secret"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and answers with
    the statuses it is given, in turn (the last one repeats); ``"hang"`` holds
    the request for 30 s before answering."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers) or [200]
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append(
                        {"at": time.monotonic(), "headers": dict(self.headers),
                         "body": body}
                    )  # fmt: skip
                    answer = (
                        receiver.answers.pop(0)
                        if len(receiver.answers) > 1
                        else receiver.answers[0]
                    )
                if answer == "hang":
                    time.sleep(30)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timed out) meanwhile

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.requests)} requests, not {n}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*answers) -> Receiver:
        made.append(Receiver(*answers))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def local(settings):
    settings.HVWEB_WEBHOOKS_ALLOW_LOCAL = True


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, django_db_blocker, celery_worker):
    """A worker on the webhook queue, allowed local endpoints, retrying fast;
    stopped with the module, so it answers no other module's pings."""
    from django.conf import settings

    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    worker = Worker(
        f"webhooks-{os.getpid()}",
        database_url,
        queue=settings.HVWEB_WEBHOOK_QUEUE,
        pool="threads",  # as the launcher runs it
        concurrency=8,
        HVWEB_WEBHOOKS_ALLOW_LOCAL="1",
        HVWEB_WEBHOOK_RETRY_BASE_S="0.5",
    )
    yield worker
    worker.stop()


@pytest.fixture
def world():
    w = make_world()
    w.admin = make_member(w.team, "administrator")
    w.operator = make_member(w.team, "operator")
    vm = w.vm
    vm.memory_mib = 64
    vm.save()
    return w


def endpoint(world, url, events_=("migration.succeeded",)) -> Endpoint:
    found = Endpoint(team=world.team, url=url, events=list(events_), secret=SECRET)
    found.full_clean()
    found.save()
    return found


def delivery_of(endpoint: Endpoint, event: str) -> Delivery:
    return Delivery.objects.get(endpoint=endpoint, event=event)


def settled(delivery: Delivery, timeout: float = 30, attempts: int = 1) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.attempts >= attempts and delivery.status != "pending":
            return delivery
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery.pk}: {delivery.status}")


def verify_like_the_readme(secret: str, headers: dict, body: bytes) -> bool:
    """The README's five-line check, as a receiver would write it."""
    stamp = headers["X-Hvweb-Timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return abs(time.time() - int(stamp)) < 300 and hmac.compare_digest(
        "sha256=" + mac.hexdigest(), headers["X-Hvweb-Signature"]
    )


# --- Rules for endpoints -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "must start with https://"),
        ("https://127.0.0.1/hook", "loopback, private or reserved"),
        ("https://localhost:8443/hook", "loopback, private or reserved"),
        ("https://10.1.2.3/hook", "loopback, private or reserved"),
        ("https://192.168.0.9/hook", "loopback, private or reserved"),
        ("https://169.254.169.254/latest/meta-data", "loopback, private or reserved"),
        ("https://[::1]/hook", "loopback, private or reserved"),
        ("https://user:pw@93.184.215.14/hook", "must not carry a user"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_endpoints_refuse_plain_http_and_internal_addresses(world, url, why):
    found = Endpoint(team=world.team, url=url, events=["migration.failed"])
    with pytest.raises(Exception) as refused:
        found.full_clean()
    assert why in str(refused.value)
    assert "url" in refused.value.message_dict


@pytest.mark.django_db
def test_the_local_setting_allows_http_and_loopback(world, local):
    endpoint(world, "http://127.0.0.1:9/hook")  # no error
    public = Endpoint(team=world.team, url="https://93.184.215.14/x", events=["nope"])
    with pytest.raises(Exception, match="Unknown event 'nope'"):
        public.full_clean()


@pytest.mark.django_db
def test_the_api_lets_a_team_administrator_register_and_no_one_else(client, world):
    client.force_login(world.operator)
    body = {"team": world.team.pk, "url": "https://93.184.215.14/hook",
            "events": ["migration.failed"]}  # fmt: skip
    assert client.post("/api/webhooks/", body, "application/json").status_code == 403
    client.force_login(world.admin)
    created = client.post("/api/webhooks/", body, "application/json")
    assert created.status_code == 201, created.json()
    assert len(created.json()["secret"]) >= 16  # generated, shown this once
    pk = created.json()["id"]
    assert "secret" not in client.get(f"/api/webhooks/{pk}/").json()
    secret = Endpoint.objects.get(pk=pk).secret
    changed = client.patch(
        f"/api/webhooks/{pk}/", {"secret": "", "active": False}, "application/json"
    )
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert Endpoint.objects.get(pk=pk).secret == secret  # empty keeps it
    bad = client.post(
        "/api/webhooks/", {**body, "url": "https://127.0.0.1/x"}, "application/json"
    )
    assert bad.status_code == 400 and "url" in json.dumps(bad.json())
    bad = client.post("/api/webhooks/", {**body, "events": ["x"]}, "application/json")
    assert bad.status_code == 400 and "events" in json.dumps(bad.json())
    # Outside the team's administrators, the endpoint does not exist.
    client.force_login(world.operator)
    assert client.get(f"/api/webhooks/{pk}/").status_code == 404
    red = make_world("RED")
    client.force_login(make_member(red.team, "administrator"))
    assert client.get(f"/api/webhooks/{pk}/").status_code == 404
    assert client.get("/api/webhooks/").json()["results"] == []
    other = client.post("/api/webhooks/", body, "application/json")
    assert other.status_code == 400 and "team" in json.dumps(other.json())


@pytest.mark.django_db
def test_the_page_registers_an_endpoint_and_shows_the_secret_once(client, world):
    client.force_login(world.operator)
    assert client.get(reverse("webhooks:endpoints")).status_code == 403
    client.force_login(world.admin)
    form = {"team": world.team.pk, "url": "https://93.184.215.14/hook",
            "events": ["migration.succeeded", "host.drain.completed"]}  # fmt: skip
    response = client.post(reverse("webhooks:endpoints"), form, follow=True)
    found = Endpoint.objects.get()
    assert found.secret in response.content.decode()
    assert client.get(found.get_absolute_url()).status_code == 200
    assert found.secret not in client.get(found.get_absolute_url()).content.decode()
    refused = client.post(
        reverse("webhooks:endpoints"), {**form, "url": "http://93.184.215.14/"}
    )
    assert refused.status_code == 400
    assert "URL: The URL must start with https://" in refused.content.decode()


# --- Deliveries, through a real worker and a real receiver --------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_move_sends_signed_deliveries_that_verify(
    world, local, receiver, webhook_worker
):
    r = receiver(200)
    hook = endpoint(world, r.url, ["migration.started", "migration.succeeded"])
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    requests = r.wait_for(2)
    bodies = [json.loads(q["body"]) for q in requests]
    assert sorted(b["event"] for b in bodies) == [
        "migration.started", "migration.succeeded",
    ]  # fmt: skip
    for q, b in zip(requests, bodies, strict=True):
        assert verify_like_the_readme(SECRET, q["headers"], q["body"])
        assert signing.verify(
            SECRET, q["headers"]["X-Hvweb-Timestamp"], q["body"],
            q["headers"]["X-Hvweb-Signature"], now=time.time(),
        )  # fmt: skip
        assert not verify_like_the_readme("another-secret-entirely", q["headers"],
                                          q["body"])  # fmt: skip
        assert b["data"]["migration"]["id"] == migration.pk
        assert q["headers"]["X-Hvweb-Event"] == b["event"]
    done = settled(delivery_of(hook, "migration.succeeded"))
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 1, 200)
    tampered = requests[0]["body"].replace(b"migration", b"migratiom", 1)
    assert not verify_like_the_readme(SECRET, requests[0]["headers"], tampered)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_500_is_retried_and_then_delivered(
    client, world, local, receiver, webhook_worker
):
    r = receiver(500, 200)
    hook = endpoint(world, r.url, ["migration.failed"])
    (pk,) = events.publish(world.team.pk, "migration.failed", "test.1", {"n": 1})
    first, second = r.wait_for(2)
    assert first["body"] == second["body"]
    assert first["headers"]["X-Hvweb-Delivery"] == str(pk)
    assert second["at"] - first["at"] >= 0.4  # the backoff's first wait (0.5 s)
    done = settled(Delivery.objects.get(pk=pk), attempts=2)
    assert (done.status, done.attempts) == ("delivered", 2)
    client.force_login(world.admin)
    page = client.get(hook.get_absolute_url()).content.decode()
    assert "Delivered" in page and ">2<" in page
    # The same event published again is not delivered twice.
    assert events.publish(world.team.pk, "migration.failed", "test.1", {}) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hanging_endpoint_times_out_at_five_seconds_and_delays_no_move(
    world, local, receiver, webhook_worker
):
    r = receiver("hang", 200)
    hook = endpoint(world, r.url, ["migration.started"])
    started = time.monotonic()
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    first, second = r.wait_for(2, timeout=40)
    waited = second["at"] - first["at"]
    assert 4.5 <= waited < 12, waited  # 5 s timeout, then a 0.5 s backoff
    delivery = settled(delivery_of(hook, "migration.started"), attempts=2)
    assert delivery.status == "delivered" and delivery.attempts == 2
    migration.refresh_from_db()
    assert migration.state == "succeeded"
    assert (migration.finished_at - migration.created_at).total_seconds() < 4.5, (
        "the move waited on the endpoint"
    )
    assert time.monotonic() - started < 40


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_deleted_endpoint_gets_nothing_more(
    client, world, local, receiver, webhook_worker
):
    r = receiver(500)
    hook = endpoint(world, r.url, ["migration.cancelled"])
    (pk,) = events.publish(world.team.pk, "migration.cancelled", "test.2", {})
    r.wait_for(1)
    settled(Delivery.objects.get(pk=pk))
    client.force_login(world.admin)
    client.post(reverse("webhooks:endpoint-delete", args=[hook.pk]))
    assert not Endpoint.objects.filter(pk=hook.pk).exists()
    seen = len(r.requests)
    time.sleep(3)  # several backoff periods of 0.5, 1, 2 s
    assert len(r.requests) == seen <= 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drained_host_sends_drain_completed_once(
    world, local, receiver, webhook_worker
):
    from hvweb.inventory.testing import make_vm

    make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=64)
    r = receiver(200)
    hook = endpoint(world, r.url, ["host.drain.completed"])
    drain_host(world.hosts[0], world.operator, speed=0)
    (request,) = r.wait_for(1)
    body = json.loads(request["body"])
    assert body["event"] == "host.drain.completed"
    assert body["data"]["host"]["name"] == "HV-BLUE-1"
    assert body["data"]["running_vms_left"] == 0
    time.sleep(1)
    assert len(r.requests) == 1
    assert Delivery.objects.filter(endpoint=hook).count() == 1


@pytest.mark.django_db
def test_registering_an_endpoint_is_audited_without_its_secret(client, world):
    from auditlog.models import LogEntry

    client.force_login(world.admin)
    body = {"team": world.team.pk, "url": "https://93.184.215.14/hook",
            "events": ["migration.failed"], "secret": SECRET}  # fmt: skip
    assert client.post("/api/webhooks/", body, "application/json").status_code == 201
    entry = LogEntry.objects.get(content_type__model="endpoint")
    assert entry.actor == world.admin
    assert "93.184.215.14" in json.dumps(entry.changes_dict)
    assert SECRET not in json.dumps(entry.changes_dict)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_task_was_lost_is_sent_by_the_sweeper(
    world, local, receiver, webhook_worker
):
    from datetime import timedelta

    from django.utils import timezone

    from hvweb.webhooks.tasks import requeue_lost

    r = receiver(200)
    hook = endpoint(world, r.url, ["migration.failed"])
    lost = Delivery.objects.create(  # as if Redis lost its task
        endpoint=hook, event="migration.failed", key="lost.1", payload={"n": 1}
    )
    fresh = Delivery.objects.create(
        endpoint=hook, event="migration.failed", key="fresh.1", payload={"n": 2}
    )
    Delivery.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(minutes=6)
    )
    assert requeue_lost() == [lost.pk]  # the fresh one's task may still come
    (request,) = r.wait_for(1)
    assert request["headers"]["X-Hvweb-Delivery"] == str(lost.pk)
    assert settled(lost).status == "delivered"
    fresh.refresh_from_db()
    assert fresh.status == "pending"


@pytest.mark.django_db
def test_a_move_reaches_its_own_teams_endpoints_only(
    world, redis_url, django_capture_on_commit_callbacks
):
    from hvweb.moves import journal
    from hvweb.moves.models import Migration

    mine = Endpoint.objects.create(
        team=world.team, url="https://93.184.215.14/a", events=["migration.queued"]
    )
    red = make_world("RED")
    theirs = Endpoint.objects.create(
        team=red.team, url="https://93.184.215.14/b", events=["migration.queued"]
    )
    deaf = Endpoint.objects.create(
        team=world.team, url="https://93.184.215.14/c", events=["migration.failed"]
    )
    move = Migration.objects.create(
        vm=world.vm, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[1], performance_option="tcpip", speed=0,
        reserved_memory_mib=64, state="queued",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        journal.record(
            move.pk, "queued", {"waiting_for": ["HOST_MIGRATION_LIMIT"], "reason": "x"}
        )
        journal.record(move.pk, "progress", {"bytes_sent": 1})  # not an event
    (delivery,) = Delivery.objects.all()
    assert delivery.endpoint == mine and delivery.event == "migration.queued"
    assert delivery.payload["data"]["migration"]["id"] == move.pk
    assert not theirs.deliveries.exists() and not deaf.deliveries.exists()


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for hooks.example.test,
    a name no resolver knows; yields (port, a client context trusting it)."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.example.test",
         "-addext", "subjectAltName=DNS:hooks.example.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    r = Receiver(200)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    r.server.socket = server_side.wrap_socket(r.server.socket, server_side=True)
    client_side = ssl.create_default_context(cafile=str(cert))
    yield r, r.server.server_address[1], client_side
    r.close()


def test_a_delivery_connects_to_the_vetted_address_and_tls_checks_the_name(
    tls_receiver,
):
    import ssl
    import urllib.error
    import urllib.request

    from hvweb.webhooks.urlcheck import opener

    r, port, context = tls_receiver
    # hooks.example.test resolves nowhere: the request reaches the server only
    # through the pinned address, and TLS verifies the certificate for the name.
    url = f"https://hooks.example.test:{port}/hook"
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with opener("127.0.0.1", context).open(request, timeout=5) as reply:
        assert reply.status == 200
    assert len(r.wait_for(1)) == 1
    # The same address under a name the certificate does not carry is refused.
    other = urllib.request.Request(
        f"https://other.example.test:{port}/hook", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.URLError) as refused:
        opener("127.0.0.1", context).open(other, timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    assert len(r.requests) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_maintenance_run_sends_its_start_each_host_and_its_end(
    world, local, receiver, webhook_worker
):
    """A drain-only run over two hosts: ``maintenance.started``, a
    ``maintenance.host.completed`` per host in order, then
    ``maintenance.succeeded``, each carrying the API's record of the run."""
    from hvweb.maintenance.models import MaintenanceRun
    from hvweb.maintenance.rolling import start_run

    r = receiver(200)
    hook = endpoint(world, r.url, [
        "maintenance.started", "maintenance.host.completed",
        "maintenance.succeeded", "maintenance.failed", "maintenance.cancelled",
    ])  # fmt: skip
    hosts = [world.hosts[0].pk, world.hosts[1].pk]
    run = start_run(world.cluster, world.operator, hosts, drain_only=True, speed=0)
    requests = r.wait_for(4, timeout=60)
    for q in requests:
        assert verify_like_the_readme(SECRET, q["headers"], q["body"])
    # In the order the steps recorded them (the worker's threads may send
    # them in another).
    recorded = Delivery.objects.filter(endpoint=hook).order_by("pk")
    assert [d.event for d in recorded] == [
        "maintenance.started", "maintenance.host.completed",
        "maintenance.host.completed", "maintenance.succeeded",
    ]  # fmt: skip
    hosts_done = [d.payload["data"]["host"]["name"] for d in recorded[1:3]]
    assert hosts_done == ["HV-BLUE-1", "HV-BLUE-2"]
    received = {json.loads(q["body"])["event"]: json.loads(q["body"]) for q in requests}
    end = received["maintenance.succeeded"]["data"]["run"]
    assert (end["id"], end["state"], end["step"]) == (run.pk, "succeeded", 2)
    assert end["hosts"] == ["HV-BLUE-1", "HV-BLUE-2"]
    assert received["maintenance.started"]["data"]["run"]["state"] == "running"
    run.refresh_from_db()
    assert run.state == MaintenanceRun.SUCCEEDED
    time.sleep(1)
    assert len(r.requests) == 4  # each event once
