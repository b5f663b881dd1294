"""Running one move in a worker: the engine's events become rows and frames.

The Celery task hands a claimed move to :class:`Runner`. It re-checks the rules
(the inventory may have changed while the move waited), builds the engine's
spec from the rows, runs the engine (paced in real time with the move's speed
factor, unpaced when it is 0), and journals every stage, pass and throttled
progress event. The VM's owner changes only when the "online" stage starts, in
one transaction with that event. Every end goes through
:func:`hvweb.moves.lifecycle.finish`. Anything that ends the move before
"online" leaves the VM on its source; the reservation ends with the move's
active state.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from hvweb.audit.registry import record_owner_change
from hvweb.core.dbretry import retrying
from hvweb.inventory.choices import PowerState, WorkloadProfile
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from migrator import (
    Cancelled,
    Completed,
    Engine,
    Event,
    Failed,
    Faults,
    MigrationResult,
    MigrationSpec,
    PassFinished,
    Progress,
    Stage,
    StageFinished,
    StageStarted,
    WorkloadSpec,
    paced,
)
from migrator.predict import outlook_at, predict

from . import capacity, journal, lifecycle
from .choices import MigrationState, MoveKind, StageOutcome
from .lifecycle import Kind
from .models import Migration, MigrationPass, MigrationStage

log = logging.getLogger(__name__)

#: How a VM's workload profile drives the simulated guest.
WORKLOAD_KIND = {
    WorkloadProfile.IDLE: "idle",
    WorkloadProfile.WEB: "hotcold",
    WorkloadProfile.DATABASE: "uniform",
    WorkloadProfile.MEMORY_HAMMER: "sweep",
}
CANCEL_POLL_S = 0.2


def build_spec(
    vm: VirtualMachine,
    source: Host,
    cluster: Cluster,
    *,
    performance_option: str,
    downtime_limit_ms: int,
    policy: str = "hyperv",
    seed: int = 0,
    move_kind: str = MoveKind.LIVE,
) -> MigrationSpec:
    """The engine's plain input for moving ``vm`` off ``source`` in ``cluster``.

    The one translation from rows to the engine: the runner uses it for a move,
    the pages and the drain planner for the predictions shown before an
    operator confirms. ``move_kind``: live or quick migration. A VM that is off has
    no memory contents: every page travels as a zero marker.
    """
    pages = vm.memory_mib * 256  # 4 KiB pages
    kind = WORKLOAD_KIND[vm.workload_profile]
    writes = kind != "idle" and vm.write_rate > 0
    return MigrationSpec(
        memory_bytes=vm.memory_mib << 20,
        page_size=4096,
        bandwidth_bps=cluster.link_bandwidth_mbps * 1e6,
        # The source encodes the deltas it sends (the host's own rate).
        compression_bps=source.compression_mbps * 1e6,
        workload=WorkloadSpec(
            kind=kind if writes else "idle",
            working_set_pages=min(vm.working_set_pages, pages) if writes else 0,
            write_rate=float(vm.write_rate) if writes else 0.0,
        ),
        seed=seed,
        downtime_limit_s=downtime_limit_ms / 1000,
        host_version=source.hyperv_version,
        performance_option=performance_option,
        policy=policy,
        memory_budget_bytes=int(settings.HVWEB_MIGRATION_MEMORY_MIB) << 20,
        zero_fraction=1.0 if vm.power_state == PowerState.OFF else 0.25,
        move_kind=str(move_kind),
    )


def migration_spec(migration: Migration) -> MigrationSpec:
    """:func:`build_spec` for a recorded move (its id seeds the guest)."""
    return build_spec(
        migration.vm,
        migration.source,
        migration.cluster,
        performance_option=migration.performance_option,
        downtime_limit_ms=migration.downtime_limit_ms,
        policy=migration.policy,
        seed=migration.pk,
        move_kind=migration.kind,
    )


def result_fields(result: MigrationResult) -> dict[str, Any]:
    """The move's columns that a finished engine run fills."""
    return {
        "passes": result.passes,
        "stop_reason": result.stop_reason or "",
        "bytes_sent": result.bytes_sent,
        "final_dirty_pages": result.final_dirty_pages,
        "total_time_s": result.total_time_s,
        "downtime_s": result.downtime_s,
        "sampled": result.sampled,
        "verified": result.verified,
        "result": result.to_dict(),
    }


class Heartbeat(threading.Thread):
    """Stamps ``heartbeat_at`` every few seconds while the move runs.

    The reaper fails a running move whose stamp grows old: its worker died.
    """

    def __init__(self, migration_id: int) -> None:
        super().__init__(name=f"heartbeat-{migration_id}", daemon=True)
        self.migration_id = migration_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.HVWEB_HEARTBEAT_S):
                try:
                    Migration.objects.filter(pk=self.migration_id).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError as exc:  # the next beat tries a new connection
                    log.warning(
                        "move %s: heartbeat not stamped: %s", self.migration_id, exc
                    )
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class CancelledWhilePaced(Exception):
    """A cancel arrived while pacing held the move inside a cancellable stage."""


class Runner:
    """Runs one claimed move to its end."""

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.pk = migration.pk
        self.stage: Stage | None = None
        self.engine: Engine | None = None
        self._cancel_checked = 0.0
        self._cancelled = False
        self._too_late = False
        self._last_progress = 0.0
        self._stage_rows: dict[str, MigrationStage] = {}
        self.spec: MigrationSpec | None = None

    # -- cancellation, polled from the engine and from the pacing sleeps ---------

    def _record(self, kind: str, data: dict[str, Any], **changes: Any) -> None:
        """Journal an event; the move's row it locks says whether a cancel
        was asked, which saves the next poll its query."""
        moved = journal.record(self.pk, kind, data, **changes)
        if moved.cancel_requested:
            self._cancelled = True
        self._cancel_checked = time.monotonic()

    def cancel_requested(self) -> bool:
        if self._too_late:
            return False
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked >= CANCEL_POLL_S:
            self._cancel_checked = now
            self._cancelled = retrying(
                Migration.objects.filter(pk=self.pk, cancel_requested=True).exists,
                f"move {self.pk}: reading a cancel",
            )
        return self._cancelled

    def sleep(self, seconds: float) -> None:
        """Pacing's sleep, polling for a cancel.

        Paced, the engine has simulated the current stage to its end while the
        wall clock is still inside it: a cancel that arrives now ends the move in
        the stage the operator sees. A request that raced past stage 3 is too late
        and is ignored (the service refuses such requests itself).
        """
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.cancel_requested():
                if self.stage is None or self.stage.cancellable:
                    raise CancelledWhilePaced
                self._too_late = True
            time.sleep(min(left, 0.1))

    # -- the run -----------------------------------------------------------------

    def run(self) -> None:
        heartbeat = Heartbeat(self.pk)
        heartbeat.start()
        try:
            self._run()
        except journal.MoveEnded as ended:  # ended elsewhere: nothing to record
            log.warning("move %s: stopped, it was ended meanwhile: %s", self.pk, ended)
        except Exception as exc:  # recorded on the move; the VM stays where it is
            log.exception("move %s failed unexpectedly", self.pk)
            self._fail_unexpectedly(exc)
        finally:
            heartbeat.stop()

    def _run(self) -> None:
        m = self.migration
        failures = retrying(
            lambda: capacity.failures_now(
                m.vm, m.destination, exclude=m, quick=m.kind == MoveKind.QUICK
            ),
            f"move {self.pk}: checking the rules",
        )
        blocking = [f for f in failures if not f.queueable]
        before = Stage.CONFIGURATION_TRANSFER.value
        if blocking:
            lifecycle.finish(
                self.pk, MigrationState.FAILED, blocking[0].code,
                "The rules no longer allow this move: "
                + "; ".join(f"{f.code}: {f.message}" for f in blocking),
                stage=before,
            )  # fmt: skip
            return
        if self.cancel_requested():
            lifecycle.finish(
                self.pk, MigrationState.CANCELLED, "CANCELLED",
                "Cancelled before it started.", stage=before,
            )  # fmt: skip
            return
        spec = self.spec = migration_spec(m)
        # Said at once (the prediction is the engine's own, and cheap): building
        # the guest's memory takes a few hundred ms more, outside the paced run.
        predicted, asked = predict(spec).to_dict(), spec.to_dict()
        retrying(
            lambda: lifecycle.start(self.pk, predicted, asked),
            f"move {self.pk}: starting",
        )
        engine = self.engine = Engine(
            spec, faults=Faults(**m.faults), cancel=self.cancel_requested
        )
        if m.speed > 0:
            # Paced, stage 2 must last its simulated time: the destination's
            # memory is touched before the clock starts, not inside the stage.
            engine.prepare_destination()
        events = engine.events()
        if m.speed > 0:
            events = paced(events, speed=m.speed, sleep=self.sleep)
        try:
            for event in events:
                self.handle(event)
        except CancelledWhilePaced:
            events.close()  # the engine's generator: the destination is discarded
            self._cancel_in_stage()

    def _cancel_in_stage(self) -> None:
        stage = self.stage or Stage.CONFIGURATION_TRANSFER
        lifecycle.finish(
            self.pk, MigrationState.CANCELLED, "CANCELLED",
            self._cancelled_message(stage), stage=stage.value,
        )  # fmt: skip

    def _cancelled_message(self, stage: Stage) -> str:
        """ "Cancelled by demo-operator during Transfer of memory pages.": who
        asked (the cancel request's journal entry) and the stage it ended in."""
        who = journal.last(self.pk, Kind.CANCEL_REQUESTED).get("by") or "the operator"
        return f"Cancelled by {who} during {stage.label}."

    def handle(self, event: Event) -> None:
        """Persist ``event`` (its rows and its journal entry, one transaction),
        again on a new connection if the database dropped the old one."""
        retrying(lambda: self._handle(event), f"move {self.pk}: {event.kind}")

    def _handle(self, event: Event) -> None:
        data = event.to_dict()
        now = timezone.now()
        if isinstance(event, StageStarted):
            self.stage = event.stage
            stage = event.stage.value
            with transaction.atomic():
                self._stage_rows[stage] = MigrationStage.objects.create(
                    migration_id=self.pk,
                    stage=stage,
                    number=event.stage.number,
                    started_t=event.t,
                    started_at=now,
                )
                changes: dict[str, Any] = {"stage": stage}
                if event.stage is Stage.ONLINE:
                    # The one place the inventory's owner changes.
                    VirtualMachine.objects.filter(pk=self.migration.vm_id).update(
                        host_id=self.migration.destination_id
                    )
                    record_owner_change(self.migration)
                    changes["switched_over"] = True
                self._record(Kind.STAGE_STARTED, data, **changes)
        elif isinstance(event, StageFinished):
            with transaction.atomic():
                self._stage_done(event.stage.value, event.duration_s)
                self._record(Kind.STAGE_FINISHED, data)
        elif isinstance(event, PassFinished):
            with transaction.atomic():
                MigrationPass.objects.create(
                    migration_id=self.pk,
                    **{k: v for k, v in data.items() if k != "kind"},
                )
                data["outlook"] = outlook_at(self.spec, event).to_dict()
                self._record(Kind.PASS_FINISHED, data)
        elif isinstance(event, Progress):
            # At most HVWEB_PROGRESS_PER_SECOND (5 by default), counted from
            # the end of the last one written: each is a transaction and a
            # message to two groups, and with 32 moves on a small machine 20 a
            # second each starved the web process (issue 13). A bar redrawn 5
            # times a second still moves smoothly.
            every = 1 / settings.HVWEB_PROGRESS_PER_SECOND
            if time.monotonic() - self._last_progress >= every:
                # The page's ETA, outlook and "blackout if stopped" come from
                # the engine's own model, continued from where the move is.
                data["outlook"] = outlook_at(self.spec, event).to_dict()
                self._record(Kind.PROGRESS, data, progress=data)
                # From the end of the write: a slow one does not make the
                # next come sooner.
                self._last_progress = time.monotonic()
        elif isinstance(event, Completed):
            lifecycle.finish(
                self.pk, MigrationState.SUCCEEDED, data=data,
                fields=result_fields(event.result),
            )  # fmt: skip
        elif isinstance(event, Failed):
            result = self.engine.result if self.engine is not None else None
            lifecycle.finish(
                self.pk, MigrationState.FAILED, event.code, event.reason,
                stage=event.stage.value, data=data,
                # A policy that gave up ran pre-copy to its end: keep its figures.
                fields=result_fields(result) if result and result.aborted else None,
            )  # fmt: skip
        elif isinstance(event, Cancelled):
            message = self._cancelled_message(event.stage)
            lifecycle.finish(
                self.pk, MigrationState.CANCELLED, "CANCELLED", message,
                stage=event.stage.value, data={**data, "reason": message},
            )  # fmt: skip

    def _stage_done(self, stage: str, duration_s: float) -> None:
        row = self._stage_rows.get(stage)
        if row is None:
            return
        row.outcome = StageOutcome.FINISHED
        row.duration_s = duration_s
        row.finished_at = timezone.now()
        row.save(update_fields=["outcome", "duration_s", "finished_at"])

    def _fail_unexpectedly(self, exc: Exception) -> None:
        close_old_connections()
        retrying(lambda: self._fail(exc), f"move {self.pk}: recording its failure")

    def _fail(self, exc: Exception) -> None:
        m = Migration.objects.get(pk=self.pk)
        if not m.active:
            return
        where = (
            "the VM runs on the destination (switched over)"
            if m.switched_over
            else "the VM keeps running on the source"
        )
        error = f"{type(exc).__name__}: {exc}"
        lifecycle.finish(
            self.pk, MigrationState.FAILED, "INTERNAL_ERROR",
            f"The worker hit an error ({error}); {where}.",
            stage=m.stage, reason=error,
        )  # fmt: skip
