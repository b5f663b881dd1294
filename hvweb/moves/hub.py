"""One subscription per cluster and process: the cluster stream, coalesced.

Every event of a move goes to the group ``cluster.<id>`` (:mod:`hvweb.moves.
journal`). Were each viewer of a cluster a member of that group, every
progress frame of every move would be queued in Redis once per viewer: with
32 moves and a hundred viewers channels-redis dropped half of them at its
channel capacity. Instead each daphne process joins the group once per
cluster that someone there watches (a :class:`ClusterHub`), and hands its
viewers, in process:

* a ``tick`` at once for a frame after a quiet spell, then at most every
  :data:`TICK_S` while frames keep coming (less often while sending a tick to
  every viewer takes more than :data:`FANOUT_SHARE` of that): the frames
  that arrived since the last one, in order, with each move's progress
  frames coalesced into its latest (a progress frame only changes what a
  later one changes again), so applying a tick leaves a board where applying
  every frame would;
* a ``heartbeat`` every :data:`HEARTBEAT_S`, read from the database: the
  moves in flight (with the sequence number of their latest event) and every
  host's memory, so a board that missed a frame, even a move's last, corrects
  itself without a reload.

Hubs are kept per event loop (tests run one loop per test; daphne one in
all) and end with their last viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from typing import Any

from channels.db import database_sync_to_async

from hvweb.core import realtime
from hvweb.inventory.models import Host

from . import capacity
from .choices import MigrationState
from .models import Migration

log = logging.getLogger(__name__)

#: A tick at most this often: four frames a second per cluster and viewer.
TICK_S = 0.25
#: The heartbeat's period: a missed frame is corrected within it.
HEARTBEAT_S = 3.0
#: A tick goes to this many viewers, then lets the rest of the process run.
YIELD_EVERY = 16
#: At most this share of the process's time goes to fanning ticks out: with
#: hundreds of viewers on a busy machine a tick took 250 ms to send to them
#: all, four a second left nothing for reading the channel layer, and the
#: moves' frames waited 20-30 s in Redis (then expired). Ticks then come less
#: often than TICK_S, each still carrying every move's latest state.
FANOUT_SHARE = 0.4

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, ClusterHub]] = (
    weakref.WeakKeyDictionary()
)


def hub(cluster_id: int) -> ClusterHub:
    """This loop's hub of ``cluster_id`` (made on first use)."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    if cluster_id not in hubs:
        hubs[cluster_id] = ClusterHub(cluster_id)
    return hubs[cluster_id]


def _heartbeat_now(cluster_id: int) -> str:
    moves = list(
        Migration.objects.filter(
            cluster_id=cluster_id, state__in=MigrationState.active()
        ).values("id", "vm", "source", "destination", "state", "stage", "last_seq")
    )
    host_ids = list(
        Host.objects.filter(cluster_id=cluster_id).values_list("pk", flat=True)
    )
    hosts = [
        {"id": pk, "used_mib": load.used_mib, "reserved_mib": load.reserved_mib}
        for pk, load in capacity.host_memory(host_ids).items()
    ]
    return json.dumps(
        {"type": "heartbeat", "cluster": cluster_id, "moves": moves, "hosts": hosts},
        separators=(",", ":"),
    )


#: On the thread pool: the heartbeat shares no transaction with anything.
_heartbeat = database_sync_to_async(_heartbeat_now, thread_sensitive=False)


class ClusterHub:
    """A cluster's group, joined once in this process, fanned out to viewers."""

    def __init__(self, cluster_id: int) -> None:
        self.cluster_id = cluster_id
        #: Viewer -> None once live, or the texts held for it until its
        #: snapshot has gone out (see :meth:`ready`).
        self.viewers: dict[Any, list[str] | None] = {}
        self._window: list[dict[str, Any] | None] = []
        self._progress_at: dict[int, int] = {}
        self._subscribed: asyncio.Future[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._arrived = asyncio.Event()
        self.layer = None
        self.channel = ""
        self.frames_in = 0
        self.ticks_out = 0
        #: The time between two ticks: TICK_S, or longer while a tick's
        #: fan-out to the viewers takes more than FANOUT_SHARE of it.
        self._interval = TICK_S

    # -- viewers -------------------------------------------------------------------

    async def join(self, viewer) -> None:
        """Hold ``viewer``'s ticks until :meth:`ready`; subscribe if first.

        Returns once the hub is in the group, so that a snapshot read after
        it misses no frame: frames committed later reach the hub.
        """
        self.viewers[viewer] = []
        failed = (
            self._subscribed is not None
            and self._subscribed.done()
            and (self._subscribed.cancelled() or self._subscribed.exception())
        )
        if self._subscribed is None or failed:  # first, or Redis refused before
            self._subscribed = asyncio.ensure_future(self._subscribe(viewer))
        await asyncio.shield(self._subscribed)

    async def ready(self, viewer) -> None:
        """``viewer`` has its snapshot: send what was held, then go live."""
        while held := self.viewers.get(viewer):
            self.viewers[viewer] = []
            for text in held:
                await viewer.send_frame(text)
        if viewer in self.viewers:
            self.viewers[viewer] = None

    async def leave(self, viewer) -> None:
        self.viewers.pop(viewer, None)
        if self.viewers or self._subscribed is None:
            return
        # Taken before any await: a viewer joining meanwhile starts a new
        # subscription (a new channel), which this must not undo.
        subscribed, self._subscribed = self._subscribed, None
        tasks, self._tasks = self._tasks, []
        self.channel = ""
        for task in tasks:
            task.cancel()
        channel = ""
        with contextlib.suppress(Exception, asyncio.CancelledError):
            channel = await subscribed
        if channel:
            with contextlib.suppress(Exception):
                await self.layer.group_discard(
                    realtime.cluster_group(self.cluster_id), channel
                )
        hubs = _hubs.get(asyncio.get_running_loop(), {})
        if hubs.get(self.cluster_id) is self and not self.viewers:
            if self._subscribed is None:  # nobody subscribed it again meanwhile
                del hubs[self.cluster_id]

    # -- the group -----------------------------------------------------------------

    async def _subscribe(self, viewer) -> str:
        self.layer = viewer.channel_layer
        # The default prefix: channels-redis reads one "specific" name per process.
        channel = await self.layer.new_channel()
        await self.layer.group_add(realtime.cluster_group(self.cluster_id), channel)
        self.channel = channel
        self._tasks = [
            asyncio.ensure_future(self._receive(channel)),
            asyncio.ensure_future(self._tick()),
        ]
        return channel

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the heartbeat repairs the boards
                log.warning("cluster %s hub: %r", self.cluster_id, exc)
                await asyncio.sleep(1)
                continue
            if message.get("type") == "hvweb.recheck":
                # The cluster changed hands (moves.revocation): every viewer
                # re-checks its access, as if the group had reached it directly.
                for viewer in list(self.viewers):
                    with contextlib.suppress(Exception):
                        await viewer.hvweb_recheck(message)
                continue
            text = message.get("text")
            if text:
                frame = json.loads(text)
                if realtime.TRACE_PREFIX:
                    realtime.trace("hub_in", frame.get("migration"), frame.get("seq"))
                self._add(frame)

    def _add(self, frame: dict[str, Any]) -> None:
        self.frames_in += 1  # kept whole: a tick's frames are the frames
        move = frame.get("migration")
        if frame.get("kind") == "progress":
            earlier = self._progress_at.get(move)
            if earlier is not None:
                self._window[earlier] = None  # superseded by this one
            self._progress_at[move] = len(self._window)
        else:
            # A later progress frame must not be folded into one before this.
            self._progress_at.pop(move, None)
        self._window.append(frame)
        self._arrived.set()

    async def _tick(self) -> None:
        """Flush at the first frame after a quiet spell (no added delay), then
        at most every TICK_S while frames keep coming; beat every HEARTBEAT_S."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + HEARTBEAT_S
        last_flush = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._arrived.wait(), max(0.0, next_beat - loop.time())
                )
            if self._arrived.is_set():
                wait = last_flush + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # frames meanwhile join this tick
                self._arrived.clear()
                last_flush = loop.time()
                await self._flush()
                # A tick's fan-out takes at most FANOUT_SHARE of the process:
                # the rest reads the channel layer (see _send).
                took = loop.time() - last_flush
                self._interval = max(TICK_S, took / FANOUT_SHARE)
            if loop.time() >= next_beat:
                next_beat = loop.time() + HEARTBEAT_S
                try:
                    beat = await _heartbeat(self.cluster_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database away: next time
                    log.warning("cluster %s heartbeat: %r", self.cluster_id, exc)
                    continue
                await self._send(beat)
                await self._flush()  # what arrived meanwhile is newer: after it

    async def _flush(self) -> None:
        frames = [f for f in self._window if f is not None]
        self._window, self._progress_at = [], {}
        if not frames:
            return
        self.ticks_out += 1
        began = time.time() if realtime.TRACE_PREFIX else 0.0
        text = json.dumps(
            {"type": "tick", "cluster": self.cluster_id, "frames": frames},
            separators=(",", ":"),
        )
        await self._send(text)
        if began:
            done = time.time()
            for f in frames:
                realtime.trace("tick", f.get("migration"), f.get("seq"), began, done)

    async def _send(self, text: str) -> None:
        for n, (viewer, held) in enumerate(list(self.viewers.items()), 1):
            if held is not None:
                held.append(text)
                continue
            try:
                await viewer.send_frame(text)
            except Exception as exc:  # a viewer going away: its disconnect follows
                log.debug("cluster %s: not sent to a viewer: %r", self.cluster_id, exc)
            if n % YIELD_EVERY == 0:
                # A send to a websocket never waits, so without this a tick
                # to hundreds of viewers holds daphne's loop for 100-200 ms;
                # the channel layer reads one message per turn of the loop,
                # and the moves' frames queued up in Redis for seconds.
                await asyncio.sleep(0)
