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
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from hvweb.core import jsonlimits, realtime
from hvweb.core.filtersets import MAX_ID
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
    return model.objects.filter(pk=pk).restrict(user, "view").exists()


@_in_pool
def _still_visible(model, user_id: int | None, pk: int) -> bool:
    """Whether the user, as the database has them now, may still see the object."""
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    return user is not None and model.objects.filter(pk=pk).restrict(user).exists()


class _Stream(AsyncWebsocketConsumer):
    """Refuses strangers, joins one group, forwards its frames as JSON."""

    model: Any = None

    def group(self) -> str:
        raise NotImplementedError

    async def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    async def __call__(self, scope, receive, send) -> None:
        """Refuse a stranger's handshake before the consumer exists at all.

        A refused connection then never opens a channel on the layer: nothing
        listens on Redis for it, and nothing is left to cancel when it goes.
        """
        user = scope.get("user")
        pk = int(scope["url_route"]["kwargs"]["pk"])
        if user is None or pk > MAX_ID or not await _visible(self.model, user, pk):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4404})
            return
        await super().__call__(scope, receive, send)

    async def connect(self) -> None:
        self.pk = int(self.scope["url_route"]["kwargs"]["pk"])
        self.user_id = self.scope["user"].pk
        self.revoked = False
        # Join before reading the snapshot: a frame committed in between then
        # arrives through the group instead of falling between the two. The
        # user's group brings the order to re-check access (moves.revocation).
        await self.channel_layer.group_add(self.group(), self.channel_name)
        await self.channel_layer.group_add(
            realtime.user_group(self.user_id), self.channel_name
        )
        # Access may have gone between the handshake's check and joining.
        if not await _still_visible(self.model, self.user_id, self.pk):
            await self.close(code=4403)
            return
        await self.accept()
        await self.send_json(await self.snapshot())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "pk"):
            await self.channel_layer.group_discard(self.group(), self.channel_name)
            await self.channel_layer.group_discard(
                realtime.user_group(self.user_id), self.channel_name
            )

    async def hvweb_recheck(self, message: dict[str, Any]) -> None:
        """Close the stream once its user may no longer see its object."""
        if self.revoked or await _still_visible(self.model, self.user_id, self.pk):
            return
        self.revoked = True
        await self.send_json(
            {"type": "error", "error": "access revoked: you may no longer see this"}
        )
        await self.close(code=4403)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            message = jsonlimits.loads(
                text_data if text_data is not None else bytes_data
            )
        except jsonlimits.TooDeep as exc:
            await self.send_json({"type": "error", "error": f"{exc}: {USAGE}"})
            return
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
    """One move: snapshot, then every event in order, resumable by sequence.

    A client that reconnects says what it has seen, and gets each later frame
    exactly once:

    * ``/ws/migrations/<id>/?resume_from=N`` (race-free, what the pages use):
      the snapshot, then the frames after N in order, then live frames;
    * ``{"resume_from": N}`` sent after the snapshot: the frames after N that
      this connection has not sent yet. Live frames that arrived between the
      snapshot and the request were sent already, so the replayed ones may come
      after them: order by ``seq`` on the client.
    """

    model = Migration

    def group(self) -> str:
        return realtime.migration_group(self.pk)

    async def snapshot(self) -> dict[str, Any]:
        snap = await _in_pool(migration_snapshot)(self.pk)
        self.covered = snap["last_seq"]  # what the snapshot stands for
        self.sent = snap["last_seq"]  # the highest frame this connection sent
        return snap

    async def connect(self) -> None:
        await super().connect()
        resume = _resume_from(self.scope.get("query_string", b""))
        if resume is not None and hasattr(self, "sent") and resume < self.covered:
            await self._replay(resume, self.covered)

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
        # Only what the snapshot covered goes again as frames; later ones were
        # (or will be) sent live on this connection.
        if after < self.covered:
            await self._replay(after, self.covered)
            self.covered = after

    async def _replay(self, after: int, upto: int) -> None:
        """Send the stored frames numbered ``after < seq <= upto``, in order."""
        for frame in await _in_pool(journal.replay)(self.pk, after):
            if frame["seq"] > upto:
                break
            await self.send(text_data=realtime.frame_text(frame))

    async def hvweb_event(self, message: dict[str, Any]) -> None:
        if self.revoked:
            return
        seq = message["seq"]
        if seq <= self.sent:
            return  # already in the snapshot or sent
        if seq > self.sent + 1:
            await self._replay(self.sent, seq - 1)  # fill a gap from the journal
        await self.send(text_data=message["text"])
        self.sent = seq


def _resume_from(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("resume_from")
    if not values or not values[0].isdigit():
        return None
    return int(values[0])


class ClusterConsumer(_Stream):
    """One cluster: hosts, VMs and moves in flight, then every move's frames."""

    model = Cluster

    def group(self) -> str:
        return realtime.cluster_group(self.pk)

    async def snapshot(self) -> dict[str, Any]:
        return await _in_pool(cluster_snapshot)(self.pk)

    async def hvweb_event(self, message: dict[str, Any]) -> None:
        if not self.revoked:
            await self.send(text_data=message["text"])
