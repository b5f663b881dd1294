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
from django.db import connection, transaction

from hvweb.audit.registry import audits
from hvweb.core import realtime
from hvweb.core.locking import ROW_ONLY
from migrator import eventlog

from .choices import MigrationState
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
    # RETURNING: PostgreSQL, and SQLite from 3.35.
    quick = connection.features.can_return_columns_from_insert
    with transaction.atomic():
        if quick and not audits(Migration, ["last_seq", *changes]):
            migration = _advance(migration_id, kind, changes)
        else:
            migration = _advance_audited(migration_id, kind, changes)
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


def _ended(migration_id: int, state: str, kind: str) -> MoveEnded:
    return MoveEnded(f"move {migration_id} ended ({state}); {kind} not recorded")


def _advance_audited(
    migration_id: int, kind: str, changes: dict[str, Any]
) -> Migration:
    """Lock the row, apply ``changes`` and the next sequence number, and save
    through the model, so that auditlog sees the fields it records (and
    ``post_save`` listeners the save)."""
    migration = Migration.objects.select_for_update(**ROW_ONLY).get(pk=migration_id)
    if not migration.active:
        raise _ended(migration_id, migration.state, kind)
    for field, value in changes.items():
        setattr(migration, field, value)
    migration.last_seq += 1
    fields = ["last_seq", *changes]
    # auditlog reads a registered row back to diff it on every save: not for
    # fields it does not record (SQLite before 3.35 comes here with those).
    quiet = nullcontext() if audits(Migration, fields) else disable_auditlog()
    with quiet:
        migration.save(update_fields=fields)
    return migration


#: What a frame and the runner read of the move after an event: the one
#: statement of :func:`_advance` returns these; the rest of the row stays
#: deferred (read from the database if someone asks).
RETURNED = frozenset({
    "id", "state", "stage", "cancel_requested", "switched_over", "last_seq",
    "vm_id", "source_id", "destination_id", "cluster_id",
})  # fmt: skip


def _advance(migration_id: int, kind: str, changes: dict[str, Any]) -> Migration:
    """The same as :func:`_advance_audited` in one ``UPDATE ... RETURNING``,
    for the events whose fields nobody audits (progress, stages, passes: many
    a second per move).

    The UPDATE locks the row as ``SELECT ... FOR NO KEY UPDATE`` did, and on
    PostgreSQL re-reads it after waiting for the lock, so the sequence number
    is the latest one's plus one. Through the ORM the lock, the read of the
    whole row and the save cost more CPU than the rest of the event
    (``benchmarks/journal.py``), and with 32 moves the worker's CPU is what
    the live streams wait for.
    """
    ops, meta = connection.ops, Migration._meta
    q = ops.quote_name
    sets, params = [f"{q('last_seq')} = {q('last_seq')} + 1"], []
    for name, value in changes.items():
        field = meta.get_field(name)
        sets.append(f"{q(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    active = list(MigrationState.active())
    # In the model's order of fields: what Model.from_db expects.
    loaded = [f for f in meta.concrete_fields if f.attname in RETURNED]
    sql = (
        f"UPDATE {q(meta.db_table)} SET {', '.join(sets)} "
        f"WHERE {q('id')} = %s AND {q('state')} IN ({', '.join(['%s'] * len(active))}) "
        f"RETURNING {', '.join(q(f.column) for f in loaded)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, migration_id, *active])
        row = cursor.fetchone()
    if row is None:  # no such move (DoesNotExist), or it has ended
        state = Migration.objects.values_list("state", flat=True).get(pk=migration_id)
        raise _ended(migration_id, state, kind)
    # to_python: SQLite returns its booleans as 0 and 1.
    values = [f.to_python(v) for f, v in zip(loaded, row, strict=True)]
    return Migration.from_db(connection.alias, [f.attname for f in loaded], values)


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
