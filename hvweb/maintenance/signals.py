"""A move of a maintenance run that ends moves its run on at once."""

from __future__ import annotations

from django.dispatch import receiver

from hvweb.moves.lifecycle import move_finished
from hvweb.moves.models import Migration

from .models import MaintenanceRun
from .rolling import kick


@receiver(move_finished, sender=Migration)
def advance_its_run(sender, migration: Migration, **kwargs) -> None:
    for pk, queue in MaintenanceRun.objects.filter(
        state__in=MaintenanceRun.ACTIVE, current__migrations=migration
    ).values_list("pk", "queue"):
        kick(pk, queue)
