"""The per-host limit of simultaneous live migrations holds under concurrency.

32 starts at once, on PostgreSQL, where transactions really run side by side
(SQLite writes one at a time, so it cannot lose this race): never more moves
running on a host than the cluster's limit, counted as the dispatcher and the
pages count them and sampled every 100 ms while a real worker runs them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import close_old_connections, connection, connections

from hvweb.inventory.testing import make_member, make_vm, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration
from hvweb.moves.services import MigrationRefused, start_migration

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 2
STARTS = 32


@pytest.fixture
def world():
    if connection.vendor != "postgresql":
        pytest.skip(
            "concurrent admission races on PostgreSQL only (SQLite serialises "
            "every write); CI's second pass runs it there"
        )
    w = make_world(hosts=4)
    w.cluster.max_simultaneous_migrations = LIMIT
    w.cluster.save()
    w.operator = make_member(w.team, "operator")
    w.vm.delete()
    w.vms = [
        make_vm(w.hosts[i % 4], f"blue-{i:02}", csv=w.csv, memory_mib=64)
        for i in range(STARTS)
    ]
    return w


def start_all_at_once(world, **options) -> tuple[list[Migration], list[str]]:
    """Every VM to the next host, from 32 threads released together."""
    gate = threading.Barrier(STARTS)
    started: list[Migration] = []
    errors: list[str] = []

    def one(i: int) -> None:
        vm = world.vms[i]
        destination = world.hosts[(i + 1) % 4]
        try:
            gate.wait(30)
            started.append(start_migration(vm, destination, world.operator, **options))
        except MigrationRefused as refused:
            errors.append(f"{vm.name}: {refused}")
        except Exception as exc:  # reported below, with the others
            errors.append(f"{vm.name}: {type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(STARTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return started, errors


def running_per_host() -> Counter[int]:
    """Moves holding a slot on each host now (source and destination)."""
    close_old_connections()
    found: Counter[int] = Counter()
    for source, destination in Migration.objects.filter(
        state=MigrationState.RUNNING
    ).values_list("source", "destination"):
        found[source] += 1
        found[destination] += 1
    return found


def test_32_simultaneous_starts_put_no_more_than_the_limit_on_a_host(
    world, unworked_queue
):
    started, errors = start_all_at_once(world, speed=0)
    assert errors == []
    assert len(started) == STARTS
    busiest = running_per_host()
    assert max(busiest.values()) <= LIMIT, busiest
    # Four hosts, two slots each, two hosts per move: four run, the rest wait.
    states = Counter(Migration.objects.values_list("state", flat=True))
    assert states == {MigrationState.RUNNING: 4, MigrationState.QUEUED: STARTS - 4}


@pytest.mark.slow
def test_the_limit_holds_while_a_worker_runs_32_moves_sampled_every_100_ms(
    world, start_worker
):
    from conftest import routed_to

    queue = "admission-pg"
    # Its own queue, also for the moves it dispatches itself as others end.
    start_worker("admission", queue=queue, concurrency=4, HVWEB_QUEUE=queue)
    samples: list[Counter[int]] = []
    done = threading.Event()

    def sample() -> None:
        try:
            while not done.is_set():
                samples.append(running_per_host())
                time.sleep(0.1)
        finally:
            connections.close_all()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with routed_to(queue):
            started, errors = start_all_at_once(world, speed=4)
        assert errors == []
        deadline = time.monotonic() + 240
        while Migration.objects.filter(state__in=MigrationState.active()).exists():
            assert time.monotonic() < deadline, "the moves did not all end"
            time.sleep(0.2)
    finally:
        done.set()
        sampler.join(10)
    over = [s for s in samples if s and max(s.values()) > LIMIT]
    assert len(samples) > 10
    assert over == [], over[:3]
    moves = list(Migration.objects.select_related("vm"))
    assert {m.state for m in moves} == {MigrationState.SUCCEEDED}
    assert all(m.vm.host_id == m.destination_id for m in moves)
