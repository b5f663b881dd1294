"""Realtime delivery: the one place that names groups and sends events to them.

Every message that crosses the channel layer is one envelope,
``{"type": "hvweb.event", "seq": n, "text": "<the frame as JSON>"}``: the frame
(``hvweb.moves.frames.Frame``, one typed shape) is serialised once here, and
each consumer's ``hvweb_event`` handler sends the text as it is, however many
viewers there are. Emitting after the database commit means a viewer never
sees a state the database does not have yet. (The worker's health ping sends
its pong the same way, as a message of its own.)

Synchronous callers (Celery tasks, views) share one event loop per process,
kept in a daemon thread, so the channel layer's Redis connections are reused
instead of opened for every event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from hvweb.moves.frames import Frame

    Message = Frame | Mapping[str, Any]

log = logging.getLogger(__name__)

ENVELOPE_TYPE = "hvweb.event"
EMIT_TIMEOUT_S = 10.0

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


#: Benchmarks only (``benchmarks/fanout.py``): a path prefix. When set, each
#: process appends one line per frame and point of the path to
#: ``<prefix>.<pid>``: ``point migration seq time [time]``, so that a frame's
#: lag can be split into the worker's, the channel layer's, daphne's and the
#: client's shares. Unset (always, outside a benchmark) it costs one test.
TRACE_PREFIX = os.environ.get("HVWEB_STREAM_TRACE", "")
_trace_file = None


def trace(point: str, migration: Any, seq: Any, *times: float) -> None:
    """Note that frame ``migration``/``seq`` passed ``point`` now (benchmarks)."""
    global _trace_file
    if not TRACE_PREFIX:
        return
    if _trace_file is None:
        # Line-buffered: a process ended by a signal loses no line.
        _trace_file = open(f"{TRACE_PREFIX}.{os.getpid()}", "a", buffering=1)  # noqa: SIM115
    stamps = " ".join(f"{t:.6f}" for t in times or (time.time(),))
    _trace_file.write(f"{point} {migration} {seq} {stamps}\n")


def migration_group(migration_id: int) -> str:
    return f"migration.{migration_id}"


def cluster_group(cluster_id: int) -> str:
    return f"cluster.{cluster_id}"


def user_group(user_id: int) -> str:
    """Every open stream of one user: told to re-check access when it changes."""
    return f"user.{user_id}"


#: The message that makes a stream re-check its user's access (and close if
#: it is gone): sent on a change of membership, role, account or ownership.
RECHECK = {"type": "hvweb.recheck"}


def frame_text(frame: Message) -> str:
    """The websocket message of ``frame``: ``{"type": "event", ...}`` as JSON."""
    return json.dumps({"type": "event", **frame}, separators=(",", ":"))


def envelope(frame: Message) -> dict[str, Any]:
    return {"type": ENVELOPE_TYPE, "seq": frame.get("seq"), "text": frame_text(frame)}


def _emitter_loop() -> asyncio.AbstractEventLoop:
    """This process's emitting loop (a forked Celery child starts its own)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="hvweb-realtime", daemon=True
            ).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def emit(groups: Iterable[str], frame: Message) -> None:
    """Send ``frame`` to every group now (from synchronous code)."""
    began = time.time() if TRACE_PREFIX else 0.0
    _send(groups, envelope(frame))
    if began:  # committed: its sending to Redis begins
        trace("emitted", frame.get("migration"), frame.get("seq"), began)


def _send(groups: Iterable[str], message: Mapping[str, Any]) -> None:
    layer = get_channel_layer()
    groups = list(groups)

    async def send() -> None:
        # At once, not one after the other: each group_send is four round
        # trips to Redis (channels_redis.core.RedisChannelLayer.group_send),
        # which the worker waits out for every frame.
        await asyncio.gather(*(layer.group_send(g, dict(message)) for g in groups))

    future = asyncio.run_coroutine_threadsafe(send(), _emitter_loop())
    future.result(timeout=EMIT_TIMEOUT_S)


def emit_on_commit(groups: Iterable[str], frame: Message) -> None:
    """Send ``frame`` once the current transaction commits (at once outside one).

    Delivery is best effort: the database already holds the event, and a
    viewer that missed it resumes from there. A channel layer that does not
    answer is logged, never allowed to fail the work that produced the event.
    """
    groups = list(groups)

    def send() -> None:
        try:
            emit(groups, frame)
        except Exception as exc:  # Redis down or slow: viewers catch up later
            log.warning("event not delivered to %s: %r", groups, exc)

    transaction.on_commit(send)


def recheck_on_commit(groups: Iterable[str]) -> None:
    """Tell the streams in ``groups`` to re-check access, once this commits.

    Unlike an event, this one is not best effort for the caller's sake only: a
    lost message leaves a socket open that should have closed, so the failure
    is logged as an error.
    """
    groups = list(groups)
    if not groups:
        return

    def send() -> None:
        try:
            _send(groups, RECHECK)
        except Exception as exc:  # noqa: BLE001 - Redis down
            log.error("access re-check not delivered to %s: %r", groups, exc)

    transaction.on_commit(send)
