"""The journal of a move: every event numbered, stored, then sent to viewers.

``record`` is the one way an event of a move comes into being. In one
transaction it takes the move's next sequence number, applies the changes that
go with the event to the move's row, and stores the event with the ID Hyper-V's
VMMS-Admin log would give it (``migrator.eventlog``); once that commits,
``hvweb.core.realtime`` sends it to the groups ``migration.<id>`` and
``cluster.<id>``. A viewer therefore never sees a state the database lacks, and
a viewer that reconnects can replay from the stored rows.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.db import transaction

from hvweb.audit.registry import audits
from hvweb.core import realtime
from hvweb.core.locking import ROW_ONLY
from migrator import eventlog

from .frames import Frame, frame
from .models import Migration, MigrationEvent


class MoveEnded(Exception):
    """The move has ended already (the reaper failed it, say, while its worker
    still ran it): it takes no more events, and nothing it does is kept."""


def record(
    migration_id: int, kind: str, data: dict[str, Any], **changes: Any
) -> Migration:
    """Store event ``kind`` of the move with ``changes`` to its row; send after commit.

    Returns the move as it stands after the event. Raises MoveEnded for a move
    that has ended (its one end is :func:`hvweb.moves.lifecycle.finish`'s), so
    the transaction of a late event rolls back whole: a worker the reaper gave
    up on cannot switch the VM over behind a move recorded as failed.
    """
    with transaction.atomic():
        migration = Migration.objects.select_for_update(**ROW_ONLY).get(pk=migration_id)
        if not migration.active:
            raise MoveEnded(
                f"move {migration_id} ended ({migration.state}); {kind} not recorded"
            )
        for field, value in changes.items():
            setattr(migration, field, value)
        migration.last_seq += 1
        fields = ["last_seq", *changes]
        # Progress, stages and the sequence are the move's own history, not
        # the audit's (hvweb.audit.registry); auditlog would still read the
        # row back to diff it on every frame.
        quiet = nullcontext() if audits(Migration, fields) else disable_auditlog()
        with quiet:
            migration.save(update_fields=fields)
        stored = frame(migration, migration.last_seq, kind, data)
        found = eventlog.event_id(
            kind, data, long_blackout_s=settings.HVWEB_LONG_BLACKOUT_S
        )
        if found is not None:
            stored["event_id"] = found.value
        MigrationEvent.objects.create(
            migration=migration,
            seq=migration.last_seq,
            kind=kind,
            data=stored,
            event_id=found,
        )
        groups = [
            realtime.migration_group(migration.pk),
            realtime.cluster_group(migration.cluster_id),
        ]
        realtime.emit_on_commit(groups, stored)
    return migration


def replay(migration_id: int, after: int) -> list[Frame]:
    """The stored frames of the move with a sequence number above ``after``."""
    return list(
        MigrationEvent.objects.filter(migration_id=migration_id, seq__gt=after)
        .order_by("seq")
        .values_list("data", flat=True)
    )


def last(migration_id: int, kind: str) -> dict[str, Any]:
    """The data of the move's latest event of ``kind`` (empty if it has none):
    what a dispatch named its job, who asked for a cancel."""
    stored = (
        MigrationEvent.objects.filter(migration_id=migration_id, kind=kind)
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    )
    # An event's row holds its frame; the event's own data is inside it.
    return (stored or {}).get("data") or {}
