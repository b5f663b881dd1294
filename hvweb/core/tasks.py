"""Tasks that prove the worker plumbing: health pings and channel-layer delivery."""

from __future__ import annotations

import socket

from celery import shared_task

from . import realtime


@shared_task(name="hvweb.ping")
def ping(reply_group: str | None = None) -> dict[str, object]:
    """Answer from the worker; with ``reply_group``, also send ``pong`` there."""
    answer: dict[str, object] = {"pong": True, "worker": socket.gethostname()}
    if reply_group:
        realtime.emit([reply_group], {"kind": "pong", **answer})
    return answer
