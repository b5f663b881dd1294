"""Starting and cancelling moves: the one service the pages, admin, API and CLI call.

``start_migration`` evaluates the rules (``migrator.rules`` through
``hvweb.inventory.snapshots``) with the load the database knows, refuses with
every failing rule, reserves the destination's memory and either dispatches the
move to a Celery worker or queues it when a host has reached its cluster's
simultaneous-migration limit. ``dispatch_queued`` starts queued moves as slots
free up. ``cancel_migration`` applies Hyper-V's rule: a move can be cancelled
while queued or during stages 1–3.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from hvweb.core.locking import ROW_ONLY
from hvweb.inventory import snapshots
from hvweb.inventory.access import may
from hvweb.inventory.models import Host, VirtualMachine
from migrator import rules
from migrator.rules import Failure
from migrator.stages import Stage

from . import journal
from .choices import MigrationState
from .models import Migration
from .options import MoveOptions

__all__ = [
    "CancelRefused",
    "MigrationRefused",
    "MoveOptions",
    "cancel_migration",
    "Destination",
    "current_failures",
    "evaluate_destinations",
    "ranked_destinations",
    "dispatch_queued",
    "start_migration",
]

log = logging.getLogger(__name__)


class MigrationRefused(Exception):
    """The rules forbid the move now; ``failures`` lists every failing rule."""

    def __init__(self, failures: tuple[Failure, ...] | list[Failure]) -> None:
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


def host_load(
    exclude: Migration | None = None,
) -> tuple[dict[int, int], dict[int, int]]:
    """Per host id: memory reserved by active moves to it, running moves it is in."""
    active = Migration.objects.filter(state__in=MigrationState.active())
    if exclude is not None:
        active = active.exclude(pk=exclude.pk)
    reserved = {
        row["destination"]: row["mib"]
        for row in active.values("destination").annotate(mib=Sum("reserved_memory_mib"))
    }
    running = Counter[int]()
    for source, destination in active.filter(state=MigrationState.RUNNING).values_list(
        "source", "destination"
    ):
        running[source] += 1
        running[destination] += 1
    return reserved, dict(running)


@dataclass(frozen=True, slots=True)
class Destination:
    """A host the VM could move to now, with what stands in the way."""

    host: Host
    free_mib: int
    failures: tuple[Failure, ...]

    @property
    def status(self) -> str:
        if not self.failures:
            return "ready"
        return "queues" if all(f.queueable for f in self.failures) else "blocked"

    @property
    def selectable(self) -> bool:
        return self.status != "blocked"


def evaluate_destinations(
    vm: VirtualMachine, destinations, *, exclude: Migration | None = None
) -> list[Destination]:
    """Every rule and operational check failing for moving ``vm`` now, per host.

    The load (memory reserved by active moves, moves under way per host, this
    VM's own active move) is read once and the snapshots built once, however
    many destinations are asked about. ``exclude`` leaves a move out of the
    load (its own reservation and slot), for the task that re-checks a move it
    is about to run.
    """
    ids = [d.pk for d in destinations]
    hosts = Host.objects.select_related("cluster").prefetch_related("virtual_machines")
    hosts = {h.pk: h for h in hosts.filter(pk__in=[*ids, vm.host_id])}
    reserved, running = host_load(exclude)
    snaps = {
        pk: snapshots.host_snapshot(
            host,
            reserved_memory_mib=reserved.get(pk, 0),
            active_migrations=running.get(pk, 0),
        )
        for pk, host in hosts.items()
    }
    others = Migration.objects.filter(vm=vm, state__in=MigrationState.active())
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    vm_snap = snapshots.vm_snapshot(vm, migration_active=others.exists())
    cluster_snap = snapshots.cluster_snapshot(hosts[vm.host_id].cluster)
    return [
        Destination(
            host=hosts[pk],
            free_mib=snaps[pk].free_memory_mib,
            failures=rules.migration_failures(
                vm_snap, snaps[vm.host_id], snaps[pk], cluster_snap
            ),
        )
        for pk in ids
    ]


def current_failures(
    vm: VirtualMachine, destination: Host, *, exclude: Migration | None = None
) -> tuple[Failure, ...]:
    """Every rule and operational check failing for moving ``vm`` to one host."""
    (found,) = evaluate_destinations(vm, [destination], exclude=exclude)
    return found.failures


def ranked_destinations(vm: VirtualMachine) -> list[Destination]:
    """Every other host of the VM's cluster: ready first, then those where the
    move would wait in the queue, then blocked ones; each by free memory."""
    others = Host.objects.filter(cluster_id=vm.host.cluster_id).exclude(pk=vm.host_id)
    order = {"ready": 0, "queues": 1, "blocked": 2}
    return sorted(
        evaluate_destinations(vm, others),
        key=lambda d: (order[d.status], -d.free_mib, d.host.name),
    )


def _enqueue(migration_id: int) -> None:
    """Hand the move to a worker once it is committed.

    If the broker cannot take it, the move fails at once with the reason
    (the VM has not left its host) instead of waiting forever for a worker.
    """
    from .tasks import run_migration  # the task module imports this one

    def send() -> None:
        try:
            run_migration.delay(migration_id)
        except Exception as exc:  # kombu raises its own kinds for a lost broker
            log.error("could not queue move %s: %s", migration_id, exc)
            journal.record(
                migration_id, "failed",
                {"stage": None, "code": "QUEUE_UNAVAILABLE", "reason": str(exc)},
                state=MigrationState.FAILED, error_code="QUEUE_UNAVAILABLE",
                error_message="The job queue (Redis) did not take the move: "
                f"{exc}. The VM stays on its host; start the move again once "
                "/healthz is green.",
                finished_at=timezone.now(),
            )  # fmt: skip

    transaction.on_commit(send)


def start_migration(
    vm: VirtualMachine,
    destination: Host,
    user=None,
    **options: Any,
) -> Migration:
    """Request a move of ``vm`` to ``destination`` on behalf of ``user``.

    ``user`` None is the server itself (``manage.py`` without ``--user``).
    Raises PermissionDenied for a user who may not operate the VM, ValidationError
    for bad options and MigrationRefused with every failing rule. Nothing is
    stored unless the move is accepted.
    """
    if user is not None and not (
        may(user, "operate", vm) and may(user, "view", destination)
    ):
        raise PermissionDenied("You may not start moves of this VM.")
    opts = MoveOptions.parse(vm.host.cluster, **options)
    try:
        with transaction.atomic():
            vm = (
                VirtualMachine.objects.select_for_update(**ROW_ONLY)
                .select_related("host__cluster")
                .get(pk=vm.pk)
            )
            destination = Host.objects.select_related("cluster").get(pk=destination.pk)
            failures = current_failures(vm, destination)
            if any(not f.queueable for f in failures):
                raise MigrationRefused(failures)
            migration = Migration.objects.create(
                vm=vm,
                cluster=vm.host.cluster,
                source=vm.host,
                destination=destination,
                requested_by=user,
                performance_option=opts.performance_option,
                downtime_limit_ms=opts.downtime_limit_ms,
                speed=opts.speed,
                faults=dict(opts.faults),
                reserved_memory_mib=vm.memory_mib,
                state=MigrationState.RUNNING if not failures else MigrationState.QUEUED,
            )
            if failures:
                journal.record(
                    migration.pk, "queued", {"waiting_for": [f.code for f in failures],
                                             "reason": failures[0].message},
                )  # fmt: skip
            else:
                journal.record(migration.pk, "dispatched", {})
                _enqueue(migration.pk)
    except IntegrityError:
        # Another request won the race for this VM: the constraint let one through.
        raise MigrationRefused(current_failures(vm, destination)) from None
    return migration


def dispatch_queued(cluster_id: int) -> list[Migration]:
    """Start the cluster's queued moves that have a slot now, oldest first.

    A queued move that the rules now forbid (say its destination went down)
    fails with those rules; the VM has not left its host.
    """
    started = []
    for pk in (
        Migration.objects.filter(cluster_id=cluster_id, state=MigrationState.QUEUED)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            migration = (
                Migration.objects.select_for_update(**ROW_ONLY)
                .select_related("vm__host__cluster", "destination")
                .get(pk=pk)
            )
            if migration.state != MigrationState.QUEUED:
                continue
            failures = current_failures(
                migration.vm, migration.destination, exclude=migration
            )
            blocking = [f for f in failures if not f.queueable]
            if blocking:
                journal.record(
                    pk,
                    "failed",
                    {"stage": None, "code": blocking[0].code,
                     "reason": "; ".join(f.message for f in blocking)},
                    state=MigrationState.FAILED,
                    error_code=blocking[0].code,
                    error_message="; ".join(f"{f.code}: {f.message}" for f in blocking),
                    finished_at=timezone.now(),
                )  # fmt: skip
            elif not failures:
                started.append(
                    journal.record(pk, "dispatched", {}, state=MigrationState.RUNNING)
                )
                _enqueue(pk)
    return started


def cancel_migration(migration: Migration, user=None) -> Migration:
    """Cancel a move no worker has started at once; ask a worker to stop its own.

    A move is ended at once while queued, or dispatched but not yet taken by
    a worker (all busy, or its job lost with a flushed Redis): the task, if it
    is ever delivered, then finds the move over and does nothing. Raises
    PermissionDenied or CancelRefused; Hyper-V accepts a cancel only while the
    move is queued or in stages 1–3.
    """
    if user is not None and not may(user, "operate", migration):
        raise PermissionDenied("You may not cancel moves in this cluster.")
    with transaction.atomic():
        migration = Migration.objects.select_for_update(**ROW_ONLY).get(pk=migration.pk)
        who = user.get_username() if user is not None else "the server"
        waiting = {
            MigrationState.QUEUED: "while queued",
            MigrationState.RUNNING: "before a worker took it",
        }.get(migration.state)
        if waiting and migration.started_at is None:
            migration = journal.record(
                migration.pk,
                "cancelled",
                {"stage": None, "reason": f"cancelled by {who} {waiting}"},
                state=MigrationState.CANCELLED,
                cancel_requested=True,
                error_code="CANCELLED",
                error_message=f"Cancelled by {who} {waiting}.",
                finished_at=timezone.now(),
            )
        elif not migration.active:
            raise CancelRefused(
                "MIGRATION_FINISHED",
                f"The move already ended ({migration.get_state_display().lower()}).",
            )
        elif not migration.cancellable:
            stage = Stage(migration.stage)
            raise CancelRefused(
                "CANCEL_TOO_LATE",
                f"The move is in stage {stage.number}, {stage.label.lower()}: the VM "
                "is paused for the switchover and Hyper-V accepts a cancel only "
                "during stages 1–3 (setup and memory transfer). Let it finish.",
            )
        elif not migration.cancel_requested:
            migration = journal.record(
                migration.pk, "cancel_requested", {"by": who}, cancel_requested=True
            )
    if migration.state == MigrationState.CANCELLED:
        dispatch_queued(migration.cluster_id)
    return migration


def memory_budget_bytes() -> int:
    """Resident memory one simulated move may use on a worker."""
    return int(settings.HVWEB_MIGRATION_MEMORY_MIB) << 20
