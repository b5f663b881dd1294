"""A dropped database connection is retried, not fatal (PostgreSQL).

``pg_terminate_backend`` ends every connection of the console's processes (the
suite's daphne and worker) while a move runs: the move carries on to its end
and requests are not served from the dead pooled connections.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from hvweb.api.models import ApiToken
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.choices import MigrationState
from hvweb.moves.services import start_migration
from migrator import Stage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    if connection.vendor != "postgresql":
        pytest.skip(
            "pg_terminate_backend is PostgreSQL's; CI's second pass runs this there"
        )
    w = make_world()
    w.vm.memory_mib = 64
    w.vm.workload_profile = "database"
    w.vm.write_rate = 20_000
    w.vm.working_set_pages = 4_000
    w.vm.save()
    w.operator = make_member(w.team, "operator")
    return w


def terminate_other_backends() -> int:
    """End every other connection to the test database; how many there were."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def get(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read().decode("utf-8", "replace")[:500]}


def test_a_move_and_requests_ride_out_terminated_connections(
    world, celery_worker, live_url
):
    _, token = ApiToken.objects.issue(world.operator)
    for _ in range(3):  # the daphne's pool holds connections now
        assert get(f"{live_url}/api/clusters/", token)[0] == 200
    move = start_migration(world.vm, world.hosts[1], world.operator, speed=1.0)
    deadline = time.monotonic() + 30
    while move.stage != Stage.MEMORY_TRANSFER.value:
        assert time.monotonic() < deadline, "the move never reached memory transfer"
        time.sleep(0.05)
        move.refresh_from_db()
    killed = 0
    for _ in range(3):  # again and again while it sends memory
        killed += terminate_other_backends()
        time.sleep(0.4)
    assert killed >= 2  # at least the worker's and daphne's
    statuses = [
        get(f"{live_url}/api/migrations/{move.pk}/", token)[0] for _ in range(4)
    ]
    assert statuses == [200] * 4
    deadline = time.monotonic() + 90
    while move.active:
        assert time.monotonic() < deadline, "the move did not end"
        time.sleep(0.2)
        move.refresh_from_db()
    assert move.state == MigrationState.SUCCEEDED, (move.error_code, move.error_message)
    world.vm.refresh_from_db()
    assert world.vm.host == world.hosts[1]
    seqs = list(move.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # numbered without gap or repeat
