"""Carry on when the database drops a connection: close it, wait, do it again.

A PostgreSQL restart, a failover or ``pg_terminate_backend`` ends the server
side of a connection; the next query on it raises ``OperationalError`` (or
``InterfaceError`` once psycopg has marked it closed). A request gets a fresh
connection by itself (``CONN_HEALTH_CHECKS``, see the settings); a long-running
worker does not, so the runner passes each unit of its work through
:func:`retrying`. A unit must be one transaction (or a read) started outside
any ``atomic`` block, so that a failed attempt left nothing behind and doing
it again is safe: the journal numbers an event in the same transaction that
stores it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts in all, and the pause before the second (doubling up to the cap):
#: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 2 s lets a restarting server come back.
ATTEMPTS = 7
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 2.0


def retrying(work: Callable[[], T], what: str) -> T:
    """``work()``, done again on a fresh connection if the database dropped it.

    Raises the last error after :data:`ATTEMPTS`, or at once inside an
    ``atomic`` block (the transaction is lost: its owner must start again).
    """
    pause = FIRST_PAUSE_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return work()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or attempt == ATTEMPTS:
                raise
            log.warning(
                "%s: the database connection failed (%s: %s); reconnecting, "
                "attempt %d of %d in %.1f s",
                what, type(exc).__name__, str(exc).strip(), attempt + 1,
                ATTEMPTS, pause,
            )  # fmt: skip
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_S)
    raise AssertionError("unreachable")  # pragma: no cover
