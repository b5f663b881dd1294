"""What sends webhooks: a move's end (``move_finished``) and its journal, and
what a maintenance run's step did (``run_event``).

A move's ends arrive through :data:`hvweb.moves.lifecycle.move_finished`,
sent once the end is committed; ``queued`` and ``started`` are read from the
event journal as its rows are saved (the journal stays unaware of webhooks),
and published once that transaction commits. Neither waits on an endpoint:
publishing records deliveries and queues their tasks.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from hvweb.maintenance.models import MaintenanceRun
from hvweb.maintenance.rolling import run_event
from hvweb.moves.lifecycle import Kind, move_finished
from hvweb.moves.models import Migration, MigrationEvent

from . import events

#: Journal kinds published as ``migration.<kind>``.
JOURNAL_EVENTS = {Kind.QUEUED: "migration.queued", Kind.STARTED: "migration.started"}


@receiver(post_save, sender=MigrationEvent, dispatch_uid="webhooks-journal")
def journal_event(sender, instance: MigrationEvent, created: bool, **kwargs) -> None:
    event = JOURNAL_EVENTS.get(instance.kind) if created else None
    if event is None:
        return
    pk, key = (
        instance.migration_id,
        f"migration.{instance.migration_id}.{instance.kind}",
    )
    transaction.on_commit(lambda: events.publish_migration(pk, event, key), robust=True)


@receiver(move_finished, sender=Migration, dispatch_uid="webhooks-move-finished")
def move_ended(sender, migration: Migration, **kwargs) -> None:
    events.publish_migration(
        migration.pk, f"migration.{migration.state}",
        f"migration.{migration.pk}.{migration.state}",
    )  # fmt: skip
    events.publish_drain(migration.source_id)


@receiver(run_event, sender=MaintenanceRun, dispatch_uid="webhooks-maintenance")
def maintenance_event(
    sender, run: MaintenanceRun, event: str, key: str, host_id: int | None, **kwargs
) -> None:
    # Inside the step's transaction: the deliveries are recorded with it and
    # sent once it commits.
    events.publish_maintenance(run, event, key, host_id)
