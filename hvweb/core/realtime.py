"""Realtime delivery: the one place that names groups and sends events to them.

Every message that crosses the channel layer is one envelope,
``{"type": "hvweb.event", "event": {...}}``; a consumer's ``hvweb_event`` handler
turns it into a websocket frame. Emitting after the database commit means a
viewer never sees a state the database does not have yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

ENVELOPE_TYPE = "hvweb.event"


def migration_group(migration_id: int) -> str:
    return f"migration.{migration_id}"


def cluster_group(cluster_id: int) -> str:
    return f"cluster.{cluster_id}"


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": ENVELOPE_TYPE, "event": event}


def emit(groups: Iterable[str], event: dict[str, Any]) -> None:
    """Send ``event`` to every group now (from synchronous code)."""
    layer = get_channel_layer()
    message = envelope(event)
    for group in groups:
        async_to_sync(layer.group_send)(group, message)


def emit_on_commit(groups: Iterable[str], event: dict[str, Any]) -> None:
    """Send ``event`` once the current transaction commits (at once outside one)."""
    groups = list(groups)
    transaction.on_commit(lambda: emit(groups, event))
