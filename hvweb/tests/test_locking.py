"""A row locked after waiting for another transaction is read whole, as it is now.

PostgreSQL only: SQLite takes no row locks (one writer at a time).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from conftest import ON_POSTGRES
from hvweb.core.locking import ROW_ONLY, locked
from hvweb.inventory.models import VirtualMachine
from hvweb.inventory.testing import make_world

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not ON_POSTGRES, reason="row locks are PostgreSQL's"),
]


def read_while_locked(read) -> dict:
    """Run ``read`` in another thread while this one holds the VM's row, moves
    the VM to another host, and commits; what ``read`` saw once it had waited."""
    world = make_world()
    seen: dict = {}

    def waiter() -> None:
        try:
            with transaction.atomic():
                seen["vm"] = read(world.vm.pk)
                seen["host"] = seen["vm"].host.name if seen["vm"] else None
        finally:
            connection.close()

    with transaction.atomic():
        VirtualMachine.objects.select_for_update().filter(pk=world.vm.pk).update(
            host=world.hosts[1]
        )
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(1)  # the reader's statement began, and waits on the row
        assert thread.is_alive()
    thread.join(30)
    return seen


def test_locked_reads_the_joined_rows_after_the_lock():
    seen = read_while_locked(
        lambda pk: locked(VirtualMachine.objects.select_related("host"), pk)
    )
    assert seen["host"] == "HV-BLUE-2"


def test_one_locking_read_with_joins_misses_what_it_waited_for():
    """Why :func:`locked` exists: the joined host is the one from before the
    wait, so the moved VM no longer matches its own join and is not found."""
    seen = read_while_locked(
        lambda pk: VirtualMachine.objects.select_for_update(**ROW_ONLY)
        .select_related("host")
        .filter(pk=pk)
        .first()
    )
    assert seen["vm"] is None
