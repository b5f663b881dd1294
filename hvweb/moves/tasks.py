"""Celery tasks: run a move, and reap moves whose worker died.

Thin shells over :mod:`hvweb.moves.lifecycle` (claiming and ending a move)
and :class:`hvweb.moves.runner.Runner` (running it).
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hvweb.audit.context import acting
from hvweb.core.dbretry import retrying
from hvweb.core.locking import ROW_ONLY

from . import jobs, lifecycle, replay
from .choices import MigrationState, ReplayState
from .models import Migration, MigrationEvent, Replay
from .runner import Runner

log = logging.getLogger(__name__)


@shared_task(name=lifecycle.RUN_TASK, acks_late=True, ignore_result=True)
def run_migration(migration_id: int) -> str:
    """Run move ``migration_id``; a second delivery of the same move does nothing."""
    with acting(None, "worker"):
        try:
            migration = retrying(
                lambda: lifecycle.claim(migration_id, socket.gethostname()),
                f"move {migration_id}: claiming it",
            )
        except lifecycle.NotRunnable as why:
            return str(why)
        Runner(migration).run()
    return retrying(
        Migration.objects.values_list("state", flat=True).filter(pk=migration_id).get,
        f"move {migration_id}: reading its end",
    )


@shared_task(name=replay.REPLAY_TASK, acks_late=True, ignore_result=True)
def run_replay(replay_id: int) -> str:
    """Run a what-if replay of a finished move (a pure simulation)."""
    try:
        return replay.run(replay_id).state
    except Exception as exc:  # recorded on the replay; nothing else was touched
        log.exception("replay %s failed", replay_id)
        Replay.objects.filter(pk=replay_id).update(
            state=ReplayState.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
        return ReplayState.FAILED


@shared_task(name="hvweb.reap_lost_migrations", ignore_result=True)
def reap_lost_migrations() -> list[int]:
    """Fail running moves whose heartbeat stopped: their worker was lost; fail
    dispatched moves whose job is lost; send lost replays' jobs again.

    The VM's owner changes only with the "online" stage, so a move lost before
    it is still on its source; one lost after it is on the destination, and the
    record says which.
    """
    with acting(None, "worker"):
        return _reap()


def _reap() -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=settings.HVWEB_HEARTBEAT_TIMEOUT_S)
    reaped = []
    for pk in Migration.objects.filter(
        state=MigrationState.RUNNING, heartbeat_at__lt=cutoff
    ).values_list("pk", flat=True):
        with transaction.atomic():
            migration = (
                Migration.objects.select_for_update(**ROW_ONLY)
                .select_related("source", "destination")
                .get(pk=pk)
            )
            if migration.state != MigrationState.RUNNING or (
                migration.heartbeat_at and migration.heartbeat_at >= cutoff
            ):
                continue
            host = (
                migration.destination if migration.switched_over else migration.source
            )
            message = (
                f"The worker running this move ({migration.worker or 'unknown'}) "
                f"stopped answering for over {settings.HVWEB_HEARTBEAT_TIMEOUT_S} s; "
                f"the VM runs on {host.name}."
            )
            lifecycle.finish(
                pk, MigrationState.FAILED, "WORKER_LOST", message,
                stage=migration.stage,
            )  # fmt: skip
        log.warning("move %s failed as WORKER_LOST: %s", pk, message)
        reaped.append(pk)
    reaped += _reap_lost_jobs()
    _resend_lost_replays()
    return reaped


def _reap_lost_jobs() -> list[int]:
    """Fail dispatched moves that no worker will start: their job was lost by
    the broker (``JOB_LOST``) or with the worker that took it (``WORKER_LOST``).

    A move waits in the job queue for as long as every worker is busy, and a
    live worker may hold a job it has not started yet: only a job the broker
    no longer holds, or one taken by a worker that is gone (see
    :mod:`hvweb.moves.jobs`), is lost. The VM never left its source.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.HVWEB_HEARTBEAT_TIMEOUT_S)
    dispatched = {
        pk: frame["data"]  # the event's own data, inside its frame
        for pk, frame in MigrationEvent.objects.filter(
            kind=lifecycle.Kind.DISPATCHED,
            created_at__lt=cutoff,
            migration__state=MigrationState.RUNNING,
            migration__started_at__isnull=True,
        ).values_list("migration_id", "data")
        if frame["data"].get("job")
    }
    if not dispatched:
        return []
    wanted = {d["job"]: d["queue"] for d in dispatched.values()}
    try:
        gone, orphans = jobs.lost(wanted)
    except Exception as exc:  # the broker does not answer: nothing to tell now
        log.warning("reaper: could not look for dispatched jobs: %s", exc)
        return []
    reaped = []
    for pk, data in dispatched.items():
        if data["job"] not in gone | orphans:
            continue
        with transaction.atomic():
            migration = Migration.objects.select_for_update(**ROW_ONLY).get(pk=pk)
            if migration.state != MigrationState.RUNNING or migration.started_at:
                continue  # a worker took it after all
            if data["job"] in gone:
                code, message = (
                    "JOB_LOST",
                    (
                        f"The job queue lost this move's job (job {data['job']} is "
                        f"no longer in queue {data['queue']!r}: Redis was flushed or "
                        "restarted, or a worker that had just fetched it died) "
                        "before any worker started it; the VM stays on "
                        f"{migration.source.name}. Start the move again."
                    ),
                )
            else:
                code, message = (
                    "WORKER_LOST",
                    (
                        f"The worker that took this move's job (job {data['job']}) "
                        "stopped before starting it, and no live worker holds it; "
                        f"the VM stays on {migration.source.name}. Start the move "
                        "again."
                    ),
                )
            lifecycle.finish(pk, MigrationState.FAILED, code, message)
        log.warning("move %s failed as %s: %s", pk, code, message)
        reaped.append(pk)
    return reaped


def _resend_lost_replays() -> list[int]:
    """Send again the jobs of queued replays that no worker will run: lost by
    the broker or with the worker that took them (:mod:`hvweb.moves.jobs`).

    A replay is a pure simulation that stores its result once (only a queued
    replay runs), so a second job is harmless where a lost one would leave
    it queued for good. Returns the replays sent again.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.HVWEB_HEARTBEAT_TIMEOUT_S)
    queued = list(
        Replay.objects.filter(
            state=ReplayState.QUEUED, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    if not queued:
        return []
    queue = current_app.conf.task_default_queue
    wanted = {replay.job_id(pk): queue for pk in queued}
    try:
        gone = set().union(*jobs.lost(wanted))
    except Exception as exc:  # the broker does not answer: nothing to tell now
        log.warning("reaper: could not look for queued replays: %s", exc)
        return []
    again = [pk for pk in queued if replay.job_id(pk) in gone]
    for pk in again:
        log.warning("replay %s lost its job; sending it again", pk)
        replay._send(pk)
    return again
