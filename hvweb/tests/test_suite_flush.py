"""The suite's own harness: a flush that PostgreSQL ends as a deadlock's victim
is run again (conftest's ``_flush_retries_a_deadlock``).

PostgreSQL only: SQLite has no table locks to deadlock on.
"""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection
from django.test import TransactionTestCase

from conftest import ON_POSTGRES, database_url_for_children
from hvweb.inventory.models import Team
from hvweb.inventory.testing import make_world

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not ON_POSTGRES, reason="table locks are PostgreSQL's"),
]


def test_a_flush_ended_by_a_deadlock_is_run_again():
    """Another connection (the worker, in the suite) holds the flush's last
    table and then asks for its first: PostgreSQL ends the flush, which had been
    waiting longest, and the flush must then be run again and empty the tables."""
    make_world()
    statement = sql_flush(no_style(), connection, allow_cascade=False)[0]
    tables = re.findall(r'"([^"]+)"', statement)
    first, last = tables[0], tables[-1]
    url = database_url_for_children()
    holder = psycopg.connect(url)
    holder.execute(f'LOCK TABLE "{last}" IN ROW EXCLUSIVE MODE')
    outcome: dict[str, object] = {}

    def close_the_cycle() -> None:
        with psycopg.connect(url, autocommit=True) as watcher:
            deadline = time.monotonic() + 30
            while not watcher.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = %s AND NOT l.granted",
                [last],
            ).fetchone():
                assert time.monotonic() < deadline, "the flush never waited"
                time.sleep(0.02)
        try:
            holder.execute(f'LOCK TABLE "{first}" IN ROW EXCLUSIVE MODE')
            outcome["holder"] = "got both tables"
        except psycopg.Error as exc:
            outcome["holder"] = exc
        holder.commit()

    thread = threading.Thread(target=close_the_cycle)
    thread.start()
    try:
        TransactionTestCase("__init__")._fixture_teardown()
    finally:
        thread.join(30)
        holder.close()
    # The holder got the flush's first table: the flush had let it go, which it
    # only does when it is ended; and yet the tables are empty.
    assert outcome["holder"] == "got both tables"
    assert not Team.objects.exists()
