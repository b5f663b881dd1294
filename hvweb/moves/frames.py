"""The frame: one event of a move as viewers receive it, in one typed shape.

``journal.record`` builds a frame with :func:`frame` for every event, stores
it (``MigrationEvent.data``) and hands it to ``hvweb.core.realtime``, which
sends it to the groups ``migration.<id>`` and ``cluster.<id>`` as
``{"type": "event", ...frame}``; a reconnecting viewer replays the stored
frames. The pages' scripts (``static/js``) read these keys and nothing else.

A frame says where the move stands after the event (``state``, ``stage``,
``cancellable``, ...), so a page shows it without knowing Hyper-V's rules;
frames of events that can change a host's memory carry the load of the move's
two hosts after the event (``hosts``), so the cluster boards show the server's
figures instead of working them out.
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.utils import timezone

from . import capacity
from .models import Migration

__all__ = ["QUIET_KINDS", "Frame", "HostLoad", "frame"]

#: Events that leave every host's memory as it was and come many a second:
#: their frames carry no ``hosts``.
QUIET_KINDS = frozenset({"progress", "pass_finished"})


class HostLoad(TypedDict):
    """A host's memory after the event, as the cluster snapshot gives it."""

    id: int
    used_mib: int
    reserved_mib: int


class _Frame(TypedDict):
    """The keys every frame has."""

    #: The move's id.
    migration: int
    #: Its sequence number among the move's events, from 1, without gaps.
    seq: int
    #: What happened (``queued``, ``stage_started``, ``progress``, ...).
    kind: str
    #: The move after the event: state, stage ("" before the first), whether
    #: it may still be cancelled, whether a cancel was asked, whether the VM
    #: runs on the destination already.
    state: str
    stage: str
    cancellable: bool
    cancel_requested: bool
    switched_over: bool
    vm: int
    source: int
    destination: int
    #: When the event was recorded (ISO 8601).
    at: str
    #: The event's own fields (a stage, a pass's figures, a reason...).
    data: dict[str, Any]


class Frame(_Frame, total=False):
    """One event of one move, numbered, with where the move stands after it."""

    #: The source's and destination's memory after the event (not on
    #: QUIET_KINDS).
    hosts: list[HostLoad]
    #: The ID Hyper-V's VMMS-Admin log would give the event (20415, 20417,
    #: 21501, 21502: ``migrator.eventlog``), on the events that have one.
    event_id: int


def frame(migration: Migration, seq: int, kind: str, data: dict[str, Any]) -> Frame:
    """The frame viewers get: the event with where the move stands after it."""
    built: Frame = {
        "migration": migration.pk,
        "seq": seq,
        "kind": kind,
        "state": migration.state,
        "stage": migration.stage,
        "cancellable": migration.cancellable,
        "cancel_requested": migration.cancel_requested,
        "switched_over": migration.switched_over,
        "vm": migration.vm_id,
        "source": migration.source_id,
        "destination": migration.destination_id,
        "at": timezone.now().isoformat(),
        "data": data,
    }
    if kind not in QUIET_KINDS:
        ids = [migration.source_id, migration.destination_id]
        built["hosts"] = [
            HostLoad(id=pk, used_mib=load.used_mib, reserved_mib=load.reserved_mib)
            for pk, load in capacity.host_memory(ids).items()
        ]
    return built
