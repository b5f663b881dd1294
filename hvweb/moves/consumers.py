"""Websockets: a move's stream (``/ws/migrations/<id>/``) and a cluster's.

A client that connects gets a snapshot first (with ``last_seq``), then live
frames ``{"type": "event", "seq": n, ...}`` with increasing sequence numbers.
Sending ``{"resume_from": N}`` replays the stored frames after N; together with
the snapshot that delivers every sequence number exactly once, across
reconnects. A frame the server cannot read gets an error frame, never a crash.
Users who may not see the object are refused before the handshake completes.
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from hvweb.core import realtime
from hvweb.inventory.access import restrict
from hvweb.inventory.models import Cluster

from . import journal
from .models import Migration
from .snapshot import cluster_snapshot, migration_snapshot

USAGE = 'send JSON objects such as {"resume_from": 12}'


def _in_pool(func):
    """Run ``func`` on the thread pool, not Channels' one thread for the ORM.

    A crowd of viewers connecting at once would otherwise wait in single file
    for their snapshots (and daphne drops a handshake that takes over 5 s);
    these reads share no transaction, so any thread may run them.
    """
    return database_sync_to_async(func, thread_sensitive=False)


@_in_pool
def _visible(model, user, pk: int) -> bool:
    return restrict(model.objects.filter(pk=pk), user, "view").exists()


class _Stream(AsyncWebsocketConsumer):
    """Refuses strangers, joins one group, forwards its frames as JSON."""

    model: Any = None

    def group(self) -> str:
        raise NotImplementedError

    async def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    async def connect(self) -> None:
        self.pk = int(self.scope["url_route"]["kwargs"]["pk"])
        user = self.scope.get("user")
        if user is None or not await _visible(self.model, user, self.pk):
            await self.close()  # before accept: the handshake is refused
            return
        # Join before reading the snapshot: a frame committed in between then
        # arrives through the group instead of falling between the two.
        await self.channel_layer.group_add(self.group(), self.channel_name)
        await self.accept()
        await self.send_json(await self.snapshot())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "pk"):
            await self.channel_layer.group_discard(self.group(), self.channel_name)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            message = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError, UnicodeDecodeError):
            await self.send_json({"type": "error", "error": f"not JSON: {USAGE}"})
            return
        if not isinstance(message, dict):
            await self.send_json({"type": "error", "error": f"not an object: {USAGE}"})
            return
        await self.on_message(message)

    async def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(
                {"type": "error", "error": f"unknown message: {USAGE}"}
            )


class MigrationConsumer(_Stream):
    """One move: snapshot, then every event in order, resumable by sequence."""

    model = Migration

    def group(self) -> str:
        return realtime.migration_group(self.pk)

    async def snapshot(self) -> dict[str, Any]:
        snap = await _in_pool(migration_snapshot)(self.pk)
        self.sent = snap["last_seq"]
        return snap

    async def on_message(self, message: dict[str, Any]) -> None:
        if "resume_from" not in message:
            await super().on_message(message)
            return
        after = message["resume_from"]
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            await self.send_json(
                {"type": "error", "error": "resume_from: a sequence number ≥ 0"}
            )
            return
        self.sent = after
        await self._catch_up(None)

    async def _catch_up(self, upto: int | None) -> None:
        """Send the stored frames after ``self.sent`` (up to ``upto``), in order."""
        frames = await _in_pool(journal.replay)(self.pk, self.sent)
        for frame in frames:
            if upto is not None and frame["seq"] > upto:
                break
            await self.send(text_data=realtime.frame_text(frame))
            self.sent = frame["seq"]

    async def hvweb_event(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if seq <= self.sent:
            return  # already in the snapshot or a replay
        if seq > self.sent + 1:
            await self._catch_up(seq - 1)  # fill a gap from the journal
        await self.send(text_data=message["text"])
        self.sent = seq


class ClusterConsumer(_Stream):
    """One cluster: hosts, VMs and moves in flight, then every move's frames."""

    model = Cluster

    def group(self) -> str:
        return realtime.cluster_group(self.pk)

    async def snapshot(self) -> dict[str, Any]:
        return await _in_pool(cluster_snapshot)(self.pk)

    async def hvweb_event(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])
