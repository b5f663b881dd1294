"""A move's events as Windows' Event Viewer shows Hyper-V's: rows and CSV.

The IDs are stored with each event by the journal (``migrator.eventlog`` says
which event gets which); this module turns stored events into the columns an
operator knows from Event Viewer's "Save as CSV": Level, Date and Time,
Source, Event ID, Task Category and Message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from hvweb.moves.models import MigrationEvent
from migrator import eventlog

__all__ = ["COLUMNS", "logged", "rows"]

COLUMNS = ("Level", "Date and Time", "Source", "Event ID", "Task Category", "Message")


def logged(events: QuerySet[MigrationEvent]) -> QuerySet[MigrationEvent]:
    """The events that carry a Hyper-V ID, with what their messages name."""
    return (
        events.filter(event_id__isnull=False)
        .select_related("migration__vm", "migration__source", "migration__destination")
        .order_by("created_at", "migration_id", "seq")
    )


def rows(events: Iterable[MigrationEvent]) -> Iterator[tuple[str, ...]]:
    """Each event with an ID as Event Viewer's columns (:data:`COLUMNS`)."""
    for event in events:
        found = eventlog.EventId(event.event_id)
        m = event.migration
        yield (
            eventlog.LEVELS[found],
            event.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            eventlog.SOURCE,
            str(found.value),
            "None",  # Event Viewer's Task Category for these events
            eventlog.message(
                found,
                event.data.get("data") or {},
                vm=m.vm.name,
                source=m.source.name,
                destination=m.destination.name,
            ),
        )
