"""The page engine: a stepper through the seven stages of a live migration.

Shaped like QEMU's ``ram_save_setup`` / ``ram_save_iterate`` /
``ram_save_complete``: set up the destination, run pre-copy passes over the dirty
marks, then finish with the guest paused. The stepper decides what to send and
when and keeps the simulated clock; :mod:`migrator.transfer` moves the pages
(really: slice copies, zero markers, deltas), :mod:`migrator.policy` decides
after each pass whether pre-copy goes on, and the guest's writes are applied in
batches between the link's batches.

The only wall-clock reading is the injected ``wall_clock`` used to report how
long the machine took.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterator

from .errors import MigratorError, SpecError
from .events import (
    Cancelled,
    Completed,
    Event,
    Failed,
    PassFinished,
    Progress,
    StageFinished,
    StageStarted,
)
from .memory import Layout, SourceMemory, dirty_runs, plan_layout
from .policy import ABORT, NOT_CONVERGING, STOP, Policy
from .predict import Prediction, predict
from .result import MigrationResult
from .spec import Faults, MigrationSpec
from .stages import Stage
from .transfer import PageSender, batches
from .transport import blackout_seconds, send_seconds, state_seconds
from .workload import Workload

__all__ = ["CancelToken", "Engine", "migrate", "run"]

_Run = Generator[Event, None, bool]


class CancelToken:
    """A cancel request shared between the caller and a running engine."""

    __slots__ = ("_reason",)

    def __init__(self) -> None:
        self._reason: str | None = None

    def cancel(self, reason: str = "cancelled by the operator") -> None:
        """Ask the engine to stop at its next batch boundary."""
        if self._reason is None:
            self._reason = reason

    @property
    def reason(self) -> str | None:
        """Why the move was cancelled, or ``None`` while it is not."""
        return self._reason

    def __call__(self) -> bool:
        return self._reason is not None


class _Stopwatch:
    """Machine time spent inside the engine (not while a caller holds an event)."""

    __slots__ = ("_clock", "_since", "total")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._since: float | None = None
        self.total = 0.0

    def start(self) -> None:
        self._since = self._clock()

    def stop(self) -> None:
        if self._since is not None:
            self.total += self._clock() - self._since
            self._since = None


class Engine:
    """One live migration of one VM, stepped through :meth:`events`.

    ``cancel`` is checked between batches while cancel is allowed (stages 1–3);
    the engine stops within one batch. ``source`` lets a caller supply the
    guest's memory (it must match the spec's layout); otherwise it is built and
    filled from the seed, which ``setup_time_s`` reports. After the events are
    exhausted, :attr:`result` holds the outcome. While it runs, :attr:`policy`
    holds the guest's throttle (``throttle_pct``) and the downtime limit in
    force (``downtime_limit_s``) as of the last ``PassFinished``.
    """

    def __init__(
        self,
        spec: MigrationSpec,
        *,
        faults: Faults | None = None,
        cancel: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
        source: SourceMemory | None = None,
        wall_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.spec = spec
        self.faults = faults if faults is not None else Faults()
        self._cancel = cancel
        self._clock = wall_clock
        self.layout: Layout = plan_layout(spec)
        self.prediction: Prediction = predict(spec)
        rng = rng if rng is not None else random.Random(spec.seed)
        began = wall_clock()
        sim_pages = self.layout.sim_pages
        if source is None:
            source = SourceMemory.filled(
                pages=sim_pages,
                page_size=spec.page_size,
                zero_pages=round(spec.zero_fraction * sim_pages),
                rng=rng,
            )
        elif source.pages != sim_pages or source.page_size != spec.page_size:
            raise SpecError(
                "source", f"expected {sim_pages} pages of {spec.page_size} bytes"
            )
        self.source = source
        self.workload = Workload(
            spec.moving_workload,
            layout=self.layout,
            memory=source,
            rng=random.Random(rng.getrandbits(64)),
        )
        self.setup_time_s = wall_clock() - began
        self.result: MigrationResult | None = None
        self.sender = PageSender(spec, source, guest_writes=self.workload.rate != 0.0)
        self._progress_every = spec.progress_pages or max(16, sim_pages // 128)
        self._watch = _Stopwatch(wall_clock)
        self._started = False
        self._t = 0.0
        self._link_bytes = 0.0
        self._payload = 0
        self._zero = 0
        self._pages_per_pass: list[int] = []
        self._bytes_per_pass: list[int] = []
        self._stop: str | None = None
        self.policy = Policy(spec)
        self._throttles: list[float] = []
        self._limits: list[float] = []
        self._held = 0.0  # throttle-weighted seconds of pre-copy
        self._pass_s = 0.0  # seconds of pre-copy
        self._aborted = False
        self._precopy_end = 0.0
        self._final = 0
        self._downtime = 0.0
        self._moving_since = 0.0
        self._blackout_end = 0.0
        self._verified = False
        self._alloc = 0.0
        self._stage = Stage.CONFIGURATION_TRANSFER
        self._stage_t = 0.0

    @property
    def destination(self) -> bytearray | None:
        """The destination's copy of guest memory (``None`` before stage 2,
        unless :meth:`prepare_destination` made it, or after a rollback); a
        caller may drop it once the move is over."""
        return self.sender.destination

    @destination.setter
    def destination(self, value: bytearray | None) -> None:
        self.sender.destination = value

    def prepare_destination(self) -> None:
        """Allocate and touch the destination's memory now, before the run.

        Touching fresh memory is a cost of the simulator (0.4-2 GB/s on first
        touch), not of the move: stage 2 then takes its simulated time only,
        which a caller pacing the move in real time needs (its wall time
        matches the simulated one). Without this call stage 2 allocates.
        """
        if self._started:
            raise MigratorError("prepare the destination before the run")
        began = self._clock()
        self.sender.allocate()
        self._alloc = self._clock() - began

    # -- the stepper ------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Run the migration, yielding its events; one call per engine."""
        if self._started:
            raise MigratorError("an engine runs once; make a new Engine")
        self._started = True
        return self._events()

    def _events(self) -> Iterator[Event]:
        self._watch.start()
        try:
            yield from self._run()
        finally:
            self._watch.stop()

    def _emit(self, event: Event) -> Generator[Event, None, None]:
        self._watch.stop()
        yield event
        self._watch.start()

    def _begin(self, stage: Stage) -> Generator[Event, None, None]:
        self._stage = stage
        self._stage_t = self._t
        yield from self._emit(StageStarted(t=self._t, stage=stage))

    def _end(self) -> Generator[Event, None, None]:
        stage = self._stage
        yield from self._emit(
            StageFinished(t=self._t, stage=stage, duration_s=self._t - self._stage_t)
        )

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._stage.cancellable and self._cancel()

    def _abort(self, code: str, reason: str) -> Generator[Event, None, bool]:
        """End the move before "online": drop the destination, keep the source."""
        self.sender.destination = None
        self.source.settle()  # the VM runs on with all its writes
        stage = self._stage
        outcome = "cancelled" if code == "cancelled" else "failed"
        self.result = self._result(outcome, stage=stage, code=code, reason=reason)
        if outcome == "cancelled":
            yield from self._emit(Cancelled(t=self._t, stage=stage, reason=reason))
        else:
            yield from self._emit(
                Failed(t=self._t, stage=stage, code=code, reason=reason)
            )
        return False

    def _cancel_now(self) -> Generator[Event, None, bool]:
        reason = getattr(self._cancel, "reason", None) or "cancelled by the operator"
        return (yield from self._abort("cancelled", str(reason)))

    def _cross_link(self, nbytes: float) -> bool:
        """Account ``nbytes`` (whole-VM bytes) on the link; False if it fails."""
        limit = self.faults.link_failure_byte
        if limit is not None and self._link_bytes + nbytes > limit:
            self._link_bytes = float(limit)
            return False
        self._link_bytes += nbytes
        return True

    def _link_failed(self) -> Generator[Event, None, bool]:
        return (
            yield from self._abort(
                "link_failed",
                f"the migration link failed after {int(self._link_bytes)} bytes",
            )
        )

    def _run(self) -> Generator[Event, None, bool]:
        spec = self.spec

        # 1. The configuration goes to the destination.
        yield from self._begin(Stage.CONFIGURATION_TRANSFER)
        if self._cancelled():
            return (yield from self._cancel_now())
        if not self._cross_link(spec.config_bytes):
            return (yield from self._link_failed())
        self._t += send_seconds(spec, spec.config_bytes)
        yield from self._end()

        # 2. The destination creates the VM and reserves (touches) its memory.
        yield from self._begin(Stage.DESTINATION_CREATION)
        if self._cancelled():
            return (yield from self._cancel_now())
        if self.faults.refuse_destination:
            return (
                yield from self._abort(
                    "destination_refused",
                    "the destination host refused to create the virtual machine",
                )
            )
        if self.sender.destination is None:  # not prepared ahead
            self._watch.stop()
            began = self._clock()
            self.sender.allocate()
            self._alloc = self._clock() - began
            self._watch.start()
        self._t += spec.creation_s
        yield from self._end()

        # 3. Pre-copy passes.
        yield from self._begin(Stage.MEMORY_TRANSFER)
        self._moving_since = self._t
        if not (yield from self._precopy()):
            return False
        if self._cancelled():
            return (yield from self._cancel_now())
        yield from self._end()

        # 4. Blackout: the last dirty pages and the device state; then verify.
        yield from self._begin(Stage.STATE_TRANSFER)
        if not (yield from self._blackout()):
            return False
        yield from self._end()

        # 5.–7. Nothing after the storage hand-off can fail or roll back.
        yield from self._begin(Stage.STORAGE_TRANSFER)
        self._t += spec.storage_handoff_s
        yield from self._end()
        yield from self._begin(Stage.ONLINE)
        self._t += spec.online_s
        yield from self._end()
        yield from self._begin(Stage.NETWORK_REDIRECTION)
        self._t += spec.redirection_s
        yield from self._end()
        self._watch.stop()
        self.result = self._result("completed")
        self._watch.start()
        yield from self._emit(Completed(t=self._t, result=self.result))
        return True

    # -- memory transfer --------------------------------------------------

    def _precopy(self) -> _Run:
        spec = self.spec
        src = self.source
        scale = self.layout.scale
        ps = spec.page_size
        link_rate = spec.link_bps / 8 / ps
        src.mark_all()
        pass_no = 0
        while True:
            pass_no += 1
            snapshot = src.dirty_snapshot()
            starts, ends = dirty_runs(snapshot)
            del snapshot
            total = sum(ends) - sum(starts)
            began = self._t
            throttle = self.policy.throttle_pct
            sent = zero = payload = 0
            fresh = pass_no == 1
            self.sender.new_pass()
            fail_after = None
            if self.faults.link_failure_pass == pass_no:
                fail_after = total // 2
            next_progress = self._progress_every
            batch = self.sender.batch_pages(total)
            for bs, be in batches(starts, ends, batch, total):
                pages = sum(be) - sum(bs)
                if fail_after is not None and sent + pages > fail_after:
                    return (yield from self._link_failed())
                encoded = self.sender.encoded
                z, p = self.sender.send(bs, be, pages, fresh=fresh)
                encoded = self.sender.encoded - encoded
                if not self._cross_link(p * scale):
                    return (yield from self._link_failed())
                sent += pages
                zero += z
                payload += p
                self._payload += p
                dt = send_seconds(spec, p * scale, encoded * scale)
                self._t += dt
                self.workload.advance(dt)
                if self._cancelled():
                    return (yield from self._cancel_now())
                if sent < next_progress:
                    continue
                # One event per progress step the batch crossed, interpolated
                # inside a large batch, so an idle guest's big batches still
                # show smooth progress; cancel is honoured between them.
                dirty = src.dirty_count()
                elapsed = self._t - began
                rate = (dirty - (total - sent)) * scale / elapsed if elapsed else 0.0
                while next_progress <= sent:
                    behind = sent - next_progress
                    share = behind / pages
                    yield from self._emit(
                        Progress(
                            t=self._t - share * dt,
                            pass_no=pass_no,
                            bytes_sent=round((self._payload - share * p) * scale),
                            remaining_dirty_pages=round((dirty + behind) * scale),
                            dirty_rate=rate,
                            link_rate=link_rate,
                            unsent_pages=round((total - next_progress) * scale),
                        )
                    )
                    next_progress += self._progress_every
                    if self._cancelled():
                        return (yield from self._cancel_now())
            remaining = src.dirty_count()
            duration = self._t - began
            self._zero += zero
            self._pages_per_pass.append(round(sent * scale))
            self._bytes_per_pass.append(round(payload * scale))
            left = round(remaining * scale)
            # Decided before the pass's event, so the event carries the limit
            # the decision used; acted on after it.
            decision = self.policy.after_pass(
                pass_no=pass_no, pages_sent=round(sent * scale), remaining=left
            )
            yield from self._emit(
                PassFinished(
                    t=self._t,
                    pass_no=pass_no,
                    pages_sent=round(sent * scale),
                    pages_dirtied=left,
                    zero_pages=round(zero * scale),
                    bytes=round(payload * scale),
                    duration_s=duration,
                    dirty_rate=left / duration if duration else 0.0,
                    expected_downtime_s=blackout_seconds(spec, left),
                    remaining_dirty_pages=left,
                    throttle_pct=throttle,
                    downtime_limit_ms=decision.downtime_limit_s * 1e3,
                )
            )
            self._throttles.append(throttle)
            self._limits.append(decision.downtime_limit_s)
            self._held += throttle / 100 * duration
            self._pass_s += duration
            if decision.action == STOP:
                self._stop = decision.stop_reason
                return True
            if decision.action == ABORT:
                self._stop = decision.stop_reason
                self._aborted = True
                self._precopy_end = self._t
                self._final = left  # still dirty when it gave up
                reason = self.policy.abort_reason(left)
                return (yield from self._abort(NOT_CONVERGING, reason))
            self.workload.set_throttle(decision.throttle_pct)

    def _blackout(self) -> _Run:
        spec = self.spec
        src = self.source
        scale = self.layout.scale
        snapshot = src.dirty_snapshot()
        starts, ends = dirty_runs(snapshot)
        total = sum(ends) - sum(starts)
        payload = 0
        encoded = self.sender.encoded
        for bs, be in batches(starts, ends, self.sender.batch_pages(total), total):
            z, p = self.sender.send(bs, be, sum(be) - sum(bs), fresh=False)
            if not self._cross_link(p * scale):
                return (yield from self._link_failed())
            self._zero += z
            payload += p
        self._payload += payload
        if not self._cross_link(spec.state_size):
            return (yield from self._link_failed())
        self._final = round(total * scale)
        encoded = self.sender.encoded - encoded
        self._downtime = send_seconds(
            spec, payload * scale, encoded * scale
        ) + state_seconds(spec)
        self._t += self._downtime
        self._blackout_end = self._t
        if spec.quick:  # saved at the start of the memory transfer
            self._downtime = self._t - self._moving_since
        if self.faults.corrupt_page is not None:
            self.sender.corrupt(self.faults.corrupt_page % self.layout.sim_pages)
        self._verified = self.sender.verify()
        if not self._verified:
            page = self.sender.first_difference()
            return (
                yield from self._abort(
                    "verification_failed",
                    f"destination memory differs from the source at page {page}",
                )
            )
        return True

    # -- the outcome ------------------------------------------------------

    def _result(
        self,
        outcome: str,
        *,
        stage: Stage | None = None,
        code: str | None = None,
        reason: str | None = None,
    ) -> MigrationResult:
        spec = self.spec
        scale = self.layout.scale
        if self._blackout_end > 0:
            total = self._blackout_end - self._moving_since
        elif self._aborted:  # pre-copy ran its course, then gave up
            total = self._precopy_end - self._moving_since
        else:
            total = 0.0
        return MigrationResult(
            outcome=outcome,
            location="destination" if outcome == "completed" else "source",
            failed_stage=stage.value if stage is not None else None,
            failure_code=code,
            reason=reason,
            passes=len(self._pages_per_pass),
            stop_reason=self._stop,
            pages_per_pass=tuple(self._pages_per_pass),
            bytes_per_pass=tuple(self._bytes_per_pass),
            final_dirty_pages=self._final,
            bytes_sent=round(self._payload * scale)
            + (spec.state_size if outcome == "completed" else 0),
            zero_pages=round(self._zero * scale),
            bytes_saved_by_compression=round(self.sender.saved * scale),
            total_time_s=total,
            downtime_s=self._downtime,
            migration_time_s=self._t,
            verified=self._verified,
            sampled=self.layout.sampled,
            sample_fraction=self.layout.fraction,
            wall_time_s=self._watch.total,
            allocation_time_s=self._alloc,
            setup_time_s=self.setup_time_s,
            memory_bytes=spec.memory_bytes,
            page_size=spec.page_size,
            bandwidth_bps=spec.bandwidth_bps,
            workload_writes=round(self.workload.writes_done * scale),
            predicted=self.prediction,
            performance_option=spec.performance_option,
            policy=spec.policy,
            throttle_pct_per_pass=tuple(self._throttles),
            downtime_limit_ms_per_pass=tuple(x * 1e3 for x in self._limits),
            guest_slowdown_pct=(
                100 * self._held / self._pass_s if self._pass_s else 0.0
            ),
            aborted=self._aborted,
        )


def run(
    spec: MigrationSpec,
    *,
    faults: Faults | None = None,
    cancel: Callable[[], bool] | None = None,
    rng: random.Random | None = None,
) -> Iterator[Event]:
    """The events of one migration of ``spec`` (see :class:`Engine`)."""
    return Engine(spec, faults=faults, cancel=cancel, rng=rng).events()


def migrate(
    spec: MigrationSpec,
    *,
    faults: Faults | None = None,
    cancel: Callable[[], bool] | None = None,
    rng: random.Random | None = None,
) -> MigrationResult:
    """Run one migration to its end and return its result."""
    engine = Engine(spec, faults=faults, cancel=cancel, rng=rng)
    for _ in engine.events():
        pass
    assert engine.result is not None
    return engine.result
