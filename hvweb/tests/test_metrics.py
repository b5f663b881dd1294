"""``/metrics``: Prometheus figures from the database, for a scraper with the token."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from conftest import Worker, daphne, database_url_for_children, routed_to
from hvweb.inventory.testing import make_member, make_moving_world, make_vm
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration
from hvweb.observe.metrics import PHASES

TOKEN = "scrape-secret-for-tests"
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def parse(text: str) -> dict[str, list]:
    """Sample name → samples (name, labels, value) of one exposition."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def value(samples, name: str, **labels) -> float:
    found = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found)


@pytest.fixture
def token(settings):
    settings.HVWEB_METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def world():
    return make_moving_world()


def ended_move(world, vm, state, **fields) -> Migration:
    """A move recorded as ended (the aggregation tests need no worker)."""
    return Migration.objects.create(
        vm=vm, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[1], performance_option="tcpip", speed=0,
        reserved_memory_mib=vm.memory_mib, state=state,
        finished_at=timezone.now(), **fields,
    )  # fmt: skip


# --- Access -----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_do_not_exist_without_a_token_setting(client, settings, world):
    settings.HVWEB_METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert b"CLU-BLUE" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_a_scrape_without_the_token_gets_401_and_no_figures(
    client, token, world, header
):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"hvweb_" not in response.content
    assert b"CLU-BLUE" not in response.content


@pytest.mark.django_db
def test_a_logged_in_user_is_no_scraper(client, token, world):
    client.force_login(make_member(world.team, "administrator"))
    assert client.get("/metrics").status_code == 401


# --- What a scrape says -------------------------------------------------------------


@pytest.mark.django_db
def test_ended_moves_are_counted_by_outcome_with_aborted_apart(client, token, world):
    vm = world.vm
    ended_move(world, vm, "succeeded", downtime_s=0.2, total_time_s=3.0,
               predicted={"downtime_s": 0.1, "policy": "hyperv"})  # fmt: skip
    ended_move(world, vm, "succeeded", downtime_s=1.5, total_time_s=40.0,
               predicted={"downtime_s": 1.5, "policy": "hyperv"})  # fmt: skip
    ended_move(world, vm, "failed", error_code="LINK_FAILURE")
    ended_move(world, vm, "failed", error_code="NOT_CONVERGING", policy="escalate")
    ended_move(world, vm, "cancelled", error_code="CANCELLED")
    s = scrape(client)
    total = "hvweb_migrations_total"
    assert value(s, total, outcome="succeeded", cluster="CLU-BLUE") == 2
    assert value(s, total, outcome="failed") == 1
    assert value(s, total, outcome="aborted", policy="escalate") == 1
    assert value(s, total, outcome="cancelled") == 1
    assert value(s, total, source="HV-BLUE-1", destination="HV-BLUE-2") == 5
    blackout = "hvweb_migration_blackout_seconds"
    assert value(s, f"{blackout}_count") == 2
    assert value(s, f"{blackout}_sum") == pytest.approx(1.7)
    assert value(s, f"{blackout}_bucket", le="0.3") == 1
    assert value(s, f"{blackout}_bucket", le="2.0") == 2
    assert value(s, "hvweb_migration_duration_seconds_sum") == pytest.approx(43.0)
    ratio = "hvweb_migration_prediction_error_ratio"
    assert value(s, f"{ratio}_count") == 2
    assert value(s, f"{ratio}_sum") == pytest.approx(3.0)  # 2.0 + 1.0
    assert value(s, f"{ratio}_bucket", le="1.0") == 1


@pytest.mark.django_db
def test_phases_and_host_memory_come_from_the_rows(client, token, world):
    queued = Migration.objects.create(
        vm=world.vm, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[2], performance_option="tcpip", speed=0,
        reserved_memory_mib=64, state="queued",
    )  # fmt: skip
    other = make_vm(world.hosts[0], "blue-web-2", csv=world.csv, memory_mib=128)
    Migration.objects.create(
        vm=other, cluster=world.cluster, source=world.hosts[0],
        destination=world.hosts[1], performance_option="smb", speed=0,
        reserved_memory_mib=128, state="running", stage="memory_transfer",
        progress={"bytes_sent": 5_000_000, "remaining_dirty_pages": 10,
                  "dirty_rate": 100.0},
    )  # fmt: skip
    world.hosts[2].state = "paused"
    world.hosts[2].save()
    s = scrape(client)
    phase = "hvweb_migrations_in_phase"
    assert {x.labels["phase"] for x in s[phase]} == set(PHASES)
    assert value(s, phase, phase="queued") == 1
    assert value(s, phase, phase="running") == 1
    assert value(s, phase, phase="memory_transfer") == 1
    assert value(s, phase, phase="online") == 0
    moving = {"migration": str(Migration.objects.get(vm=other).pk), "option": "smb"}
    assert value(s, "hvweb_migration_data_processed_bytes", **moving) == 5_000_000
    assert value(s, "hvweb_migration_data_remaining_bytes", **moving) == 10 * 4096
    assert value(s, "hvweb_migration_dirty_memory_rate_bytes", **moving) == 409_600
    mem = "hvweb_host_memory_bytes"
    mib = 1 << 20
    assert value(s, mem, host="HV-BLUE-1", kind="used") == (64 + 128) * mib
    assert value(s, mem, host="HV-BLUE-1", kind="capacity") == 16_384 * mib
    assert value(s, mem, host="HV-BLUE-2", kind="reserved") == 128 * mib
    assert (
        value(s, mem, host="HV-BLUE-3", kind="reserved")
        == queued.reserved_memory_mib * mib
    )
    assert value(s, "hvweb_host_paused", host="HV-BLUE-3") == 1
    assert value(s, "hvweb_host_paused", host="HV-BLUE-1") == 0


# --- The dashboard ------------------------------------------------------------------


def dashboard_metrics() -> set[str]:
    """Every hvweb_ series name the dashboard's queries read."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert exprs, "the dashboard has no queries"
    return {name for e in exprs for name in re.findall(r"\bhvweb_[a-z_]+", e)}


@pytest.mark.django_db
def test_every_metric_the_dashboard_queries_exists_in_a_scrape(client, token, world):
    ended_move(world, world.vm, "succeeded", downtime_s=0.2, total_time_s=3.0,
               predicted={"downtime_s": 0.2})  # fmt: skip
    Migration.objects.create(
        vm=make_vm(world.hosts[0], "blue-web-2", csv=world.csv), cluster=world.cluster,
        source=world.hosts[0], destination=world.hosts[1], performance_option="tcpip",
        speed=0, reserved_memory_mib=64, state="running", stage="memory_transfer",
    )  # fmt: skip
    scraped = set(scrape(client))
    missing = dashboard_metrics() - scraped
    assert not missing, f"the dashboard queries series no scrape has: {missing}"


# --- With real workers --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scrape_follows_a_real_move_and_ends_where_the_database_says(
    client, token, celery_worker, world
):
    world.cluster.link_bandwidth_mbps = 200
    world.cluster.save()
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    labels = {"migration": str(migration.pk)}
    sent = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s = scrape(client)
        migration.refresh_from_db()
        if not migration.active:
            break
        if s.get("hvweb_migration_data_processed_bytes"):
            sent.append(value(s, "hvweb_migration_data_processed_bytes", **labels))
            assert value(s, "hvweb_migrations_in_phase", phase="running") == 1
        time.sleep(0.1)
    migration.refresh_from_db()
    assert migration.state == MigrationState.SUCCEEDED, migration.error_message
    assert sent == sorted(sent) and sent[-1] > sent[0], sent  # it moved, forward
    s = scrape(client)
    assert not s.get("hvweb_migration_data_processed_bytes")  # gone with the move
    assert value(s, "hvweb_migrations_in_phase", phase="running") == 0
    assert value(s, "hvweb_migrations_total", outcome="succeeded") == 1
    assert value(s, "hvweb_migration_blackout_seconds_sum") == pytest.approx(
        migration.downtime_s
    )
    assert value(s, "hvweb_migration_duration_seconds_sum") == pytest.approx(
        migration.total_time_s
    )
    mem = "hvweb_host_memory_bytes"
    assert value(s, mem, host="HV-BLUE-2", kind="used") == 64 << 20
    assert value(s, mem, host="HV-BLUE-2", kind="reserved") == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_and_two_web_processes_count_each_move_once(
    client, token, celery_worker, world
):
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    second = Worker(f"metrics-second-{os.getpid()}", database_url_for_children(),
                    queue=queue)  # fmt: skip
    try:
        _two_workers(client, world, queue)
    finally:
        second.stop()  # not left to answer other tests' pings


def _two_workers(client, world, queue):
    vms = [world.vm] + [
        make_vm(world.hosts[0], f"blue-db-{i}", csv=world.csv, memory_mib=64)
        for i in range(1, 6)
    ]
    world.cluster.max_simultaneous_migrations = 8
    world.cluster.save()
    moves = []
    for i, vm in enumerate(vms):
        if i % 2:
            with routed_to(queue):  # only the second worker reads this queue
                moves.append(
                    start_migration(vm, world.hosts[1], world.operator, speed=0)
                )
        else:
            moves.append(start_migration(vm, world.hosts[1], world.operator, speed=0))
    deadline = time.monotonic() + 90
    while Migration.objects.filter(state__in=MigrationState.active()).exists():
        assert time.monotonic() < deadline, "the moves did not end"
        time.sleep(0.1)
    ended = Migration.objects.filter(pk__in=[m.pk for m in moves])
    assert ended.filter(state="succeeded").count() == len(vms)
    here = scrape(client)
    with daphne(database_url_for_children(), "metrics-daphne.log",
                HVWEB_METRICS_TOKEN=TOKEN) as url:  # fmt: skip
        request = urllib.request.Request(
            f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            there = parse(reply.read().decode())
    for s in (here, there):
        assert value(s, "hvweb_migrations_total") == len(vms)
        assert value(s, "hvweb_migrations_total", outcome="succeeded") == len(vms)
        assert value(s, "hvweb_migration_blackout_seconds_count") == len(vms)
        assert value(s, "hvweb_migration_blackout_seconds_sum") == pytest.approx(
            sum(m.downtime_s for m in ended)
        )
        assert value(s, "hvweb_host_memory_bytes", host="HV-BLUE-2", kind="used") == (
            len(vms) * 64 << 20
        )
    assert value(here, "hvweb_migrations_total") == value(
        there, "hvweb_migrations_total"
    )
