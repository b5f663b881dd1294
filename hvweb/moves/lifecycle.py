"""A move's lifecycle: the one place a move is admitted, queued, dispatched,
claimed, started, asked to cancel and ended.

::

    admit ──► queued ──► dispatched ──► claimed ──► started ──► stages … ──► finish
                 │            │            │                                 ▲
                 └────────────┴────────────┴── cancel, refusal, lost job ────┘

* :func:`admit` decides a request with the cluster's capacity
  (:mod:`hvweb.moves.capacity`): refused, queued at a host's limit, or
  dispatched to a worker.
* :func:`dispatch_queued` starts queued moves as slots free up, reading the
  cluster's capacity once and updating it as it places each move.
* :func:`claim` (the Celery task) and :func:`start` (the runner) mark a
  worker's take-over and the engine's start.
* :func:`finish` ends a move, whoever ends it (the runner, the task's reaper,
  a cancel, a refused dispatch): it writes the state, the journal event,
  ``finished_at`` and the error, closes the stage that was running, and once
  the end is committed dispatches the cluster's queued moves and sends
  :data:`move_finished`, the hook for what later reacts to an end.

Every event of a move is journalled with a :class:`Kind`; the journal
(:mod:`hvweb.moves.journal`) numbers, stores and sends it. The Celery task is
sent by name (:data:`RUN_TASK`), so this module does not import the task
module, which imports it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.dispatch import Signal
from django.utils import timezone

from hvweb.core.locking import ROW_ONLY, locked
from hvweb.inventory import snapshots
from hvweb.inventory.models import Cluster, Host, VirtualDisk, VirtualMachine
from migrator import (
    Cancelled,
    Completed,
    Failed,
    PassFinished,
    Progress,
    StageFinished,
    StageStarted,
)
from migrator.rules import Failure
from migrator.stages import Stage

from . import capacity, journal
from .choices import MigrationState, MoveKind, StageOutcome
from .models import Migration, MigrationStage

__all__ = [
    "RUN_TASK",
    "CancelRefused",
    "Kind",
    "MigrationRefused",
    "NotRunnable",
    "admit",
    "cancel",
    "claim",
    "dispatch_queued",
    "finish",
    "move_finished",
    "start",
    "window_closed",
]

log = logging.getLogger(__name__)

#: The Celery task that runs a move (``hvweb.moves.tasks.run_migration``).
RUN_TASK = "hvweb.run_migration"


class Kind(StrEnum):
    """What a journal event of a move says happened."""

    #: Admitted, waiting for a slot (``waiting_for``: the codes that hold it).
    QUEUED = "queued"
    #: Handed to the job queue; a worker will claim it.
    DISPATCHED = "dispatched"
    #: A worker re-checked the rules and the engine began (``predicted``).
    STARTED = "started"
    #: An operator asked the worker running it to stop (``by``).
    CANCEL_REQUESTED = "cancel_requested"
    # The engine's events, named by the engine (``migrator.events``).
    STAGE_STARTED = StageStarted.kind
    STAGE_FINISHED = StageFinished.kind
    PASS_FINISHED = PassFinished.kind
    PROGRESS = Progress.kind
    # The three ends, written by :func:`finish` alone.
    COMPLETED = Completed.kind
    FAILED = Failed.kind
    CANCELLED = Cancelled.kind


#: The journal event of each end.
END_KINDS = {
    MigrationState.SUCCEEDED: Kind.COMPLETED,
    MigrationState.FAILED: Kind.FAILED,
    MigrationState.CANCELLED: Kind.CANCELLED,
}

#: Sent once per move that ends, after its end is committed, with
#: ``migration`` (the move as it ended), in the process that ended it (the
#: worker, the reaper's, or the web process for a cancel). A receiver's error
#: is logged and the others still run. Metrics, webhooks and event IDs hang here.
move_finished = Signal()


class MigrationRefused(Exception):
    """The rules forbid the move now; ``failures`` lists every failing rule."""

    def __init__(self, failures: Sequence[Failure]) -> None:
        self.failures = tuple(failures)
        super().__init__(
            "; ".join(f"{f.code}: {f.message}" for f in self.failures)
            or "the move is not allowed"
        )

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.failures]


class CancelRefused(Exception):
    """The move can no longer be cancelled (or never could)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class NotRunnable(Exception):
    """A worker got a move it must not run (gone, over, or already taken)."""


class Options(Protocol):
    """A move's checked options (``hvweb.moves.services.MoveOptions``)."""

    performance_option: str
    downtime_limit_ms: int
    speed: float
    faults: Mapping[str, Any]
    policy: str


# --- Admission and dispatch -------------------------------------------------------


def admit(
    vm: VirtualMachine,
    destination: Host,
    *,
    requested_by,
    options: Options,
    kind: str = MoveKind.LIVE,
    start_by=None,
) -> Migration:
    """Record a move of ``vm`` to ``destination`` if the rules allow it now.

    ``kind`` is live or quick migration (:class:`~hvweb.moves.choices.MoveKind`);
    ``start_by``: if it has not started by then (queued, or not yet taken by a
    worker), it is not started (:func:`window_closed`).

    The one admission: with the VM's row locked, then its cluster's (the lock
    :func:`dispatch_queued` takes), every rule and operational check is
    evaluated with the cluster's capacity. Holding the cluster's row makes the
    admissions and dispatches of one cluster take turns, so each reads the
    load the previous one committed: two starts cannot both take a host's
    last slot (on PostgreSQL, 32 simultaneous starts put 3 and 4 moves on one
    host with a limit of 2 while only the VM was locked). A move no rule forbids is
    dispatched to a worker; one held only by a host's limit of simultaneous
    migrations is queued; anything else raises :class:`MigrationRefused` with
    every failing rule, and nothing is stored.
    """
    try:
        with transaction.atomic():
            vm = locked(VirtualMachine.objects.select_related("host__cluster"), vm.pk)
            if vm is None:
                raise VirtualMachine.DoesNotExist
            _lock_cluster(vm.host.cluster_id)
            destination = Host.objects.select_related("cluster").get(pk=destination.pk)
            quick = kind == MoveKind.QUICK
            failures = capacity.failures_now(vm, destination, quick=quick)
            if any(not f.queueable for f in failures):
                raise MigrationRefused(failures)
            migration = Migration.objects.create(
                vm=vm,
                cluster=vm.host.cluster,
                source=vm.host,
                destination=destination,
                requested_by=requested_by,
                kind=kind,
                start_by=start_by,
                performance_option=options.performance_option,
                downtime_limit_ms=options.downtime_limit_ms,
                policy=options.policy,
                speed=options.speed,
                faults=dict(options.faults),
                reserved_memory_mib=vm.memory_mib,
                state=MigrationState.QUEUED if failures else MigrationState.RUNNING,
            )
            if failures:
                journal.record(
                    migration.pk, Kind.QUEUED,
                    {"waiting_for": [f.code for f in failures],
                     "reason": failures[0].message},
                )  # fmt: skip
            else:
                _dispatch(migration.pk)
    except IntegrityError:
        # Another request won the race for this VM: the constraint let one through.
        raise MigrationRefused(
            capacity.failures_now(vm, destination, quick=kind == MoveKind.QUICK)
        ) from None
    return migration


def job_id(migration_id: int) -> str:
    """A new Celery task id for the move's job, journalled with its dispatch.

    Unique to this dispatch, not only to the move: kombu keeps a job a worker
    took in one ``unacked`` hash for the whole Redis database, for an hour
    after its worker died. A move id is reused by another database on the same
    Redis (a second console, a database made afresh, a test run after
    another), and the reaper (:mod:`hvweb.moves.jobs`), finding a stale job of
    that id there, failed a waiting move as taken by a dead worker.
    """
    return f"hvweb-move-{migration_id}-{secrets.token_hex(6)}"


def _lock_cluster(cluster_id: int) -> Cluster | None:
    """Lock the cluster's row until the transaction ends: admission and
    dispatch of one cluster's moves take turns on it (SQLite: a no-op)."""
    return Cluster.objects.select_for_update(**ROW_ONLY).filter(pk=cluster_id).first()


def _dispatch(migration_id: int) -> Migration:
    """Mark the move running and hand it to a worker once that is committed.

    If the broker cannot take it, the move fails at once with the reason (the
    VM has not left its host) instead of waiting forever for a worker.
    """
    # The job's id and queue are journalled, so the reaper can look for the job
    # in the broker (:mod:`hvweb.moves.jobs`) and fail a move whose job
    # vanished (a flushed or restarted Redis) instead of leaving it dispatched.
    job = job_id(migration_id)
    queue = current_app.conf.task_default_queue
    migration = journal.record(
        migration_id,
        Kind.DISPATCHED,
        {"job": job, "queue": queue},
        state=MigrationState.RUNNING,
    )

    def send() -> None:
        try:
            current_app.send_task(
                RUN_TASK, args=[migration_id], task_id=job, queue=queue
            )
        except Exception as exc:  # kombu raises its own kinds for a lost broker
            log.error("could not queue move %s: %s", migration_id, exc)
            finish(
                migration_id, MigrationState.FAILED, "QUEUE_UNAVAILABLE",
                "The job queue (Redis) did not take the move: "
                f"{exc}. The VM stays on its host; start the move again once "
                "/healthz is green.",
                reason=str(exc),
                # The broker that refused this move would refuse the next one.
                dispatch_next=False,
            )  # fmt: skip

    transaction.on_commit(send)
    return migration


def dispatch_queued(cluster_id: int) -> list[Migration]:
    """Start the cluster's queued moves that have a slot now, oldest first.

    The cluster's capacity is read once and updated in memory as each move
    is placed, so the cost grows with the queue, not with its square. The
    cluster's row is locked meanwhile, so two dispatchers of one cluster take
    turns instead of placing moves on the same free slot. A queued move that
    the rules now forbid (say its destination went down) fails with those
    rules; the VM has not left its host.
    """
    started: list[Migration] = []
    with transaction.atomic():
        cluster = _lock_cluster(cluster_id)
        if cluster is None:
            return started
        queued = list(
            Migration.objects.select_for_update(**ROW_ONLY)
            .filter(cluster_id=cluster_id, state=MigrationState.QUEUED)
            .select_related("vm__host", "destination")
            .prefetch_related(
                Prefetch(
                    "vm__disks", VirtualDisk.objects.select_related("csv__cluster")
                )
            )
            .order_by("created_at", "pk")
        )
        if not queued:
            return started
        load = capacity.load(cluster)
        for migration in queued:
            load.release(migration)  # its own reservation does not count against it
            if window_closed(migration):
                continue
            vm = migration.vm
            quick = migration.kind == MoveKind.QUICK
            if vm.host_id in load.hosts:
                disks = [snapshots.disk_snapshot(d) for d in vm.disks.all()]
                failures = load.failures(
                    vm, migration.destination, disks=disks, quick=quick
                )
            else:  # its VM was put on another cluster's host meanwhile
                failures = capacity.failures_now(
                    vm, migration.destination, exclude=migration, quick=quick
                )
            blocking = [f for f in failures if not f.queueable]
            if blocking:
                finish(
                    migration.pk, MigrationState.FAILED, blocking[0].code,
                    "; ".join(f"{f.code}: {f.message}" for f in blocking),
                    reason="; ".join(f.message for f in blocking),
                    dispatch_next=False,  # this loop places the others itself
                )  # fmt: skip
            elif not failures:
                migration = _dispatch(migration.pk)
                started.append(migration)
                load.track(migration)
            else:
                load.track(migration)
    return started


def window_closed(migration: Migration) -> bool:
    """End a move not started by its ``start_by`` (as cancelled); True if so."""
    if migration.start_by is None or timezone.now() < migration.start_by:
        return False
    when = timezone.localtime(migration.start_by).strftime("%Y-%m-%d %H:%M:%S %Z")
    finish(
        migration.pk, MigrationState.CANCELLED, "WINDOW_CLOSED",
        f"Not started: its window closed at {when}.",
        reason=f"window closed at {when}",
        dispatch_next=False,  # the dispatcher places the others itself
    )  # fmt: skip
    return True


# --- A worker's part --------------------------------------------------------------


def claim(migration_id: int, worker: str) -> Migration:
    """Take a dispatched move for ``worker``; a second delivery gets NotRunnable."""
    with transaction.atomic():
        migration = locked(
            Migration.objects.select_related("vm", "cluster", "source", "destination"),
            migration_id,
        )
        if migration is None:
            raise NotRunnable("gone")
        if migration.state != MigrationState.RUNNING or migration.started_at:
            raise NotRunnable(
                f"not run: {migration.state}, started {migration.started_at}"
            )
        if window_closed(migration):
            raise NotRunnable("not run: its window closed")
        migration.started_at = migration.heartbeat_at = timezone.now()
        migration.worker = worker
        migration.save(update_fields=["started_at", "heartbeat_at", "worker"])
    return migration


def start(
    migration_id: int, predicted: dict[str, Any], spec: dict[str, Any] | None = None
) -> Migration:
    """The worker re-checked the rules and the engine begins (with ``spec``,
    the engine's input, kept for replays)."""
    return journal.record(
        migration_id, Kind.STARTED, {"predicted": predicted}, predicted=predicted,
        spec=spec or {},
    )  # fmt: skip


# --- Cancel -----------------------------------------------------------------------


def cancel(migration_id: int, who: str) -> Migration:
    """End a move no worker has started at once; ask a worker to stop its own.

    A move is ended at once while queued, or dispatched but not yet taken by
    a worker (all busy, or its job lost with a flushed Redis): the task, if it
    is ever delivered, then finds the move over and does nothing. Raises
    CancelRefused: Hyper-V accepts a cancel only while the move is queued or
    in stages 1–3.
    """
    with transaction.atomic():
        migration = Migration.objects.select_for_update(**ROW_ONLY).get(pk=migration_id)
        waiting = {
            MigrationState.QUEUED: "while queued",
            MigrationState.RUNNING: "before a worker took it",
        }.get(migration.state)
        if waiting and migration.started_at is None:
            return finish(
                migration.pk, MigrationState.CANCELLED, "CANCELLED",
                f"Cancelled by {who} {waiting}.",
                reason=f"cancelled by {who} {waiting}",
                fields={"cancel_requested": True},
            )  # fmt: skip
        if not migration.active:
            raise CancelRefused(
                "MIGRATION_FINISHED",
                f"The move already ended ({migration.get_state_display().lower()}).",
            )
        if not migration.cancellable:
            stage = Stage(migration.stage)
            raise CancelRefused(
                "CANCEL_TOO_LATE",
                f"The move is in stage {stage.number}, {stage.label.lower()}: the VM "
                "is paused for the switchover and Hyper-V accepts a cancel only "
                "during stages 1–3 (setup and memory transfer). Let it finish.",
            )
        if not migration.cancel_requested:
            migration = journal.record(
                migration.pk, Kind.CANCEL_REQUESTED, {"by": who}, cancel_requested=True
            )
    return migration


# --- The end ----------------------------------------------------------------------


def finish(
    migration_id: int,
    outcome: MigrationState,
    code: str = "",
    message: str = "",
    *,
    stage: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    dispatch_next: bool = True,
) -> Migration:
    """End the move with ``outcome`` (succeeded, failed or cancelled), once.

    For a failure or a cancel, ``code`` and ``message`` are the error shown on
    the move, ``stage`` the stage it ended in (None before any) and ``reason``
    the journal's short form of the message (default: the message). The
    stage row still running ends with the outcome. ``data`` is the journal
    event's data when the engine ended the move (its event as a dict);
    ``fields`` are other columns the end sets (a success's results).

    A move that has already ended is left as it is. Once the end is
    committed, the cluster's queued moves are dispatched (unless
    ``dispatch_next`` is False: the caller places them itself, or the
    broker is down) and :data:`move_finished` is sent.
    """
    kind = END_KINDS[outcome]
    now = timezone.now()
    with transaction.atomic():
        current = Migration.objects.select_for_update(**ROW_ONLY).get(pk=migration_id)
        if not current.active:
            log.warning(
                "move %s already ended (%s); not ending it again as %s",
                migration_id, current.state, outcome,
            )  # fmt: skip
            return current
        changes: dict[str, Any] = {"state": outcome, "finished_at": now}
        if outcome != MigrationState.SUCCEEDED:
            MigrationStage.objects.filter(
                migration_id=migration_id, outcome=StageOutcome.RUNNING
            ).update(
                outcome=StageOutcome.FAILED
                if outcome == MigrationState.FAILED
                else StageOutcome.CANCELLED,
                finished_at=now,
            )
            changes |= {
                "failed_stage": stage or "",
                "error_code": code,
                "error_message": message,
            }
            if data is None:  # the shape of the engine's Failed and Cancelled
                data = {"stage": stage or None, "reason": reason or message}
                if outcome == MigrationState.FAILED:
                    data = {"stage": stage or None, "code": code, **data}
        migration = journal.record(
            migration_id, kind, data or {}, **changes, **(fields or {})
        )

        def dispatch() -> None:
            dispatch_queued(migration.cluster_id)

        def announce() -> None:
            move_finished.send_robust(sender=Migration, migration=migration)

        if dispatch_next:
            transaction.on_commit(dispatch, robust=True)
        transaction.on_commit(announce, robust=True)
    return migration
