"""Websockets: a move's stream (``/ws/migrations/<id>/``) and a cluster's.

A client that connects gets a snapshot first (with ``last_seq``), then live
frames ``{"type": "event", "seq": n, ...}`` with increasing sequence numbers.
Sending ``{"resume_from": N}`` replays the stored frames after N; together with
the snapshot that delivers every sequence number exactly once, across
reconnects. A frame the server cannot read gets an error frame, never a crash.
Users who may not see the object are refused before the handshake completes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from hvweb.core import jsonlimits, realtime
from hvweb.core.filtersets import MAX_ID
from hvweb.inventory.models import Cluster

from . import journal
from .choices import MigrationState
from .hub import hub
from .models import Migration
from .snapshot import cluster_snapshot, migration_snapshot

log = logging.getLogger(__name__)

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
        await self.join()
        await self.channel_layer.group_add(
            realtime.user_group(self.user_id), self.channel_name
        )
        # Access may have gone between the handshake's check and joining.
        if not await _still_visible(self.model, self.user_id, self.pk):
            await self.close(code=4403)
            return
        await self.accept()
        await self.send_json(await self.snapshot())
        await self.live()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "pk"):
            await self.leave()
            await self.channel_layer.group_discard(
                realtime.user_group(self.user_id), self.channel_name
            )

    async def join(self) -> None:
        """Start receiving the object's frames (its group, by default)."""
        await self.channel_layer.group_add(self.group(), self.channel_name)

    async def live(self) -> None:
        """The snapshot is out: frames held since :meth:`join` may follow."""

    async def leave(self) -> None:
        await self.channel_layer.group_discard(self.group(), self.channel_name)

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
        self.turn = asyncio.Lock()  # frames go out one sender at a time
        await super().connect()
        resume = _resume_from(self.scope.get("query_string", b""))
        if resume is not None and hasattr(self, "sent") and resume < self.covered:
            await self._replay(resume, self.covered)
        if hasattr(self, "sent"):
            self.watch = asyncio.ensure_future(self._catch_up())

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "watch"):
            self.watch.cancel()
        await super().disconnect(code)

    async def _catch_up(self) -> None:
        """Every :data:`CATCH_UP_S`, send what the journal has and this
        connection has not (a frame the channel layer dropped, even the
        move's last, which no later frame would reveal), until the move has
        ended and its last frame is out."""
        while True:
            await asyncio.sleep(CATCH_UP_S)
            try:
                last_seq, active = await _latest(self.pk)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: next time
                log.warning("move %s: catch-up check failed: %r", self.pk, exc)
                continue
            async with self.turn:
                if last_seq > self.sent:
                    await self._replay(self.sent, last_seq)
                    self.sent = last_seq
            if not active and self.sent >= last_seq:
                return

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
            async with self.turn:
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
        got = time.time() if realtime.TRACE_PREFIX else 0.0
        async with self.turn:
            if seq <= self.sent:
                return  # already in the snapshot or sent
            if seq > self.sent + 1:
                await self._replay(self.sent, seq - 1)  # fill a gap from the journal
            await self.send(text_data=message["text"])
            self.sent = seq
        if got:
            realtime.trace("move", self.pk, seq, got, time.time())


#: How often a move's viewer is checked against the journal for frames the
#: channel layer lost (one cached query a second per move and process at most).
CATCH_UP_S = 2.0
_LATEST_TTL_S = 1.0
_latest_cache: dict[int, tuple[float, tuple[int, bool]]] = {}


@_in_pool
def _latest_now(pk: int) -> tuple[int, bool]:
    found = Migration.objects.filter(pk=pk).values_list("last_seq", "state").first()
    if found is None:
        return 0, False
    return found[0], found[1] in MigrationState.active()


async def _latest(pk: int) -> tuple[int, bool]:
    """The move's latest sequence number and whether it is still active,
    read at most once a second per process, however many watch it."""
    now = time.monotonic()
    cached = _latest_cache.get(pk)
    if cached and now - cached[0] < _LATEST_TTL_S:
        return cached[1]
    found = await _latest_now(pk)
    _latest_cache[pk] = (time.monotonic(), found)
    if len(_latest_cache) > 10_000:  # moves long over: forget them
        for key in [k for k, (at, _) in _latest_cache.items() if now - at > 60]:
            del _latest_cache[key]
    return found


def _resume_from(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("resume_from")
    if not values or not values[0].isdigit():
        return None
    return int(values[0])


class ClusterConsumer(_Stream):
    """One cluster: hosts, VMs and moves in flight, then ticks and heartbeats.

    The viewer is not a member of the cluster's group: this process's
    :class:`hvweb.moves.hub.ClusterHub` is, once for all its viewers, and
    hands each a ``tick`` (``{"type": "tick", "frames": [...]}``, the moves'
    frames since the last, progress coalesced) a few times a second and a
    ``heartbeat`` (moves in flight and host memory, from the database) every
    few seconds.
    """

    model = Cluster

    async def snapshot(self) -> dict[str, Any]:
        return await _in_pool(cluster_snapshot)(self.pk)

    async def join(self) -> None:
        # The process's hub is in the group, not this viewer; it holds the
        # viewer's ticks until the snapshot is out (:meth:`live`).
        self.hub = hub(self.pk)
        await self.hub.join(self)

    async def live(self) -> None:
        await self.hub.ready(self)

    async def leave(self) -> None:
        if hasattr(self, "hub"):
            await self.hub.leave(self)

    async def send_frame(self, text: str) -> None:
        """What the hub writes to each viewer of the cluster: nothing once
        this viewer's access was revoked."""
        if not self.revoked:
            await self.send(text_data=text)
