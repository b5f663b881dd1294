"""Test helpers that the suite and the benchmarks share."""

from __future__ import annotations

import asgiref.testing
import channels.testing

__all__ = ["WebsocketCommunicator"]


class WebsocketCommunicator(channels.testing.WebsocketCommunicator):
    """Channels' websocket test client, with the consumers' connections handled
    as under daphne.

    Channels' communicator patches ``channels.db.close_old_connections`` to a
    no-op while it sends or receives (channels/testing/application.py), for
    tests inside one atomic block. Here every websocket test is transactional
    and runs in an event loop of its own (``asyncio.run``): each
    ``database_sync_to_async`` call then kept its thread's connection, and when
    the loop ended its executor threads ended with them, never handing them
    back. On PostgreSQL that is a connection of the process's pool (10) lost
    per thread and test: after a few tests consumers waited for one past the
    handshake's timeout and the stream tests failed or hung. Django's
    ``close_old_connections`` runs as it does in production instead.
    """

    async def connect(self, timeout=5):
        """As long as daphne waits for a handshake (its ``websocket_connect_timeout``,
        5 s) rather than channels' 1 s: on a loaded machine the handshake's few
        queries took longer than 1 s and the tests failed on it."""
        return await super().connect(timeout)

    async def send_input(self, message):
        return await asgiref.testing.ApplicationCommunicator.send_input(self, message)

    async def receive_output(self, timeout=1):
        return await asgiref.testing.ApplicationCommunicator.receive_output(
            self, timeout
        )
