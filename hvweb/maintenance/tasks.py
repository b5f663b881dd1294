"""Celery tasks that move rolling maintenance runs on.

``advance_maintenance`` takes one run's next steps (sent when a run starts, is
cancelled, or one of its moves ends); ``advance_maintenance_runs`` runs from
the beat beside the reaper and advances every active run, so a run whose
worker died resumes where it was on the next tick.
"""

from __future__ import annotations

from celery import shared_task

from hvweb.audit.context import acting

from . import rolling
from .models import MaintenanceRun


@shared_task(name=rolling.ADVANCE_TASK, ignore_result=True)
def advance_maintenance(run_id: int) -> str:
    with acting(None, "worker"):
        run = rolling.advance(run_id)
    return run.state if run is not None else "gone"


@shared_task(name="hvweb.advance_maintenance_runs", ignore_result=True)
def advance_maintenance_runs() -> list[int]:
    """Every active run of this installation (its queue) one tick on."""
    active = MaintenanceRun.objects.filter(state__in=MaintenanceRun.ACTIVE)
    ids = list(
        active.filter(queue__in=[rolling.own_queue(), ""]).values_list("pk", flat=True)
    )
    with acting(None, "worker"):
        for pk in ids:
            rolling.advance(pk)
    return ids
