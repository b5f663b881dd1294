"""The page engine: a stepper through the seven stages of a live migration.

Shaped like QEMU's ``ram_save_setup`` / ``ram_save_iterate`` /
``ram_save_complete``: set up the destination, run pre-copy passes over the dirty
marks (with zero-page detection), then finish with the guest paused. Memory
really moves: contiguous runs of pages are copied with one slice assignment
each, dirty pages are found with C-speed ``bytes`` operations, and the guest's
writes are applied in batches between the link's batches.

The engine keeps a simulated clock; the only wall-clock reading is the
injected ``wall_clock`` used to report how long the machine took.
"""

from __future__ import annotations

import random
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from itertools import repeat
from operator import mul, sub

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
from .predict import Prediction, predict, stop_reason
from .result import MigrationResult
from .spec import Faults, MigrationSpec
from .stages import Stage
from .workload import Workload

__all__ = ["CancelToken", "Engine", "migrate", "run"]

#: Most bytes one batch carries while the guest writes: small enough that its
#: writes interleave finely with the link (see ``_BATCHES_PER_PASS``).
_BATCH_BYTES = 16 << 20
#: Most bytes one batch carries while the guest is idle. glibc copies blocks
#: this large with its fastest (4-way interleaved, streaming) loop: on these
#: machines 1.7× the speed it reaches on 16 MiB blocks.
_IDLE_BATCH_BYTES = 256 << 20
#: Fewest batches a pass is cut into, so the guest's writes interleave finely.
_BATCHES_PER_PASS = 64
#: Chunk of the byte-for-byte verification (one huge memcmp is slower).
_VERIFY_BYTES = 64 << 20
#: Zero bytes compared against / copied from at C speed.
_ZEROS = memoryview(bytes(1 << 20))
#: Scattered runs handled together: their pages (source and destination) stay
#: in L2 cache and the TLB between the copy and the reads that follow it.
_HOT_RUNS = 64
_ZERO_RUN = re.compile(b"\x00+")

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


def _batches(
    starts: list[int], ends: list[int], limit: int, total: int
) -> Iterator[tuple[list[int], list[int]]]:
    """Split runs of pages into batches of at most ``limit`` pages."""
    if total == len(starts):  # single pages: slice the lists
        for i in range(0, total, limit):
            yield starts[i : i + limit], ends[i : i + limit]
        return
    bs: list[int] = []
    be: list[int] = []
    room = limit
    for a, b in zip(starts, ends, strict=True):
        while b - a >= room:
            bs.append(a)
            be.append(a + room)
            yield bs, be
            a += room
            bs, be, room = [], [], limit
        if b > a:
            bs.append(a)
            be.append(b)
            room -= b - a
    if bs:
        yield bs, be


class Engine:
    """One live migration of one VM, stepped through :meth:`events`.

    ``cancel`` is checked between batches while cancel is allowed (stages 1–3);
    the engine stops within one batch. ``source`` lets a caller supply the
    guest's memory (it must match the spec's layout); otherwise it is built and
    filled from the seed, which ``setup_time_s`` reports. After the events are
    exhausted, :attr:`result` holds the outcome.
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
            spec.workload,
            layout=self.layout,
            memory=source,
            rng=random.Random(rng.getrandbits(64)),
        )
        self.setup_time_s = wall_clock() - began
        self.result: MigrationResult | None = None
        self.destination: bytearray | None = None
        self._progress_every = spec.progress_pages or max(16, sim_pages // 128)
        self._eff_bps = spec.bandwidth_bps * self.layout.fraction
        self._watch = _Stopwatch(wall_clock)
        self._started = False
        self._t = 0.0
        self._link_bytes = 0.0
        self._payload = 0
        self._zero = 0
        self._saved = 0
        self._pages_per_pass: list[int] = []
        self._bytes_per_pass: list[int] = []
        self._stop: str | None = None
        self._final = 0
        self._downtime = 0.0
        self._moving_since = 0.0
        self._blackout_end = 0.0
        self._ahead = (0, 0)
        self._verified = False
        self._alloc = 0.0
        self._stage = Stage.CONFIGURATION_TRANSFER
        self._stage_t = 0.0

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

    def _batch_pages(self, total: int) -> int:
        """Pages per batch for a pass of ``total`` pages."""
        if self.spec.batch_pages:
            return self.spec.batch_pages
        if self.workload.rate == 0.0:  # nothing to interleave with
            return max(1, _IDLE_BATCH_BYTES // self.spec.page_size)
        most = max(1, _BATCH_BYTES // self.spec.page_size)
        return max(1, min(most, max(16, total // _BATCHES_PER_PASS)))

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._stage.cancellable and self._cancel()

    def _abort(self, code: str, reason: str) -> Generator[Event, None, bool]:
        """End the move before "online": drop the destination, keep the source."""
        self.destination = None
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
        bps = spec.bandwidth_bps

        # 1. The configuration goes to the destination.
        yield from self._begin(Stage.CONFIGURATION_TRANSFER)
        if self._cancelled():
            return (yield from self._cancel_now())
        if not self._cross_link(spec.config_bytes):
            return (yield from self._link_failed())
        self._t += spec.config_bytes * 8 / bps
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
        self._watch.stop()
        began = self._clock()
        self.destination = bytearray(len(self.source.data))
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
        link_rate = spec.bandwidth_bps / 8 / ps
        src.mark_all()
        pass_no = 0
        while True:
            pass_no += 1
            snapshot = src.dirty_snapshot()
            starts, ends = dirty_runs(snapshot)
            del snapshot
            total = sum(ends) - sum(starts)
            began = self._t
            sent = zero = payload = 0
            fresh = pass_no == 1
            self._ahead = (0, 0)
            fail_after = None
            if self.faults.link_failure_pass == pass_no:
                fail_after = total // 2
            next_progress = self._progress_every
            batch = self._batch_pages(total)
            for bs, be in _batches(starts, ends, batch, total):
                pages = sum(be) - sum(bs)
                if fail_after is not None and sent + pages > fail_after:
                    return (yield from self._link_failed())
                z, p = self._send(bs, be, pages, fresh=fresh)
                if not self._cross_link(p * scale):
                    return (yield from self._link_failed())
                sent += pages
                zero += z
                payload += p
                self._payload += p
                dt = p * 8 / self._eff_bps
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
                    expected_downtime_s=(left * ps + spec.state_size)
                    * 8
                    / spec.bandwidth_bps,
                    remaining_dirty_pages=left,
                )
            )
            reason = stop_reason(spec, passes=pass_no, remaining_pages=left)
            if reason is not None:
                self._stop = reason
                return True

    def _blackout(self) -> _Run:
        spec = self.spec
        src = self.source
        scale = self.layout.scale
        snapshot = src.dirty_snapshot()
        starts, ends = dirty_runs(snapshot)
        total = sum(ends) - sum(starts)
        payload = 0
        for bs, be in _batches(starts, ends, self._batch_pages(total), total):
            z, p = self._send(bs, be, sum(be) - sum(bs), fresh=False)
            if not self._cross_link(p * scale):
                return (yield from self._link_failed())
            self._zero += z
            payload += p
        self._payload += payload
        if not self._cross_link(spec.state_size):
            return (yield from self._link_failed())
        self._final = round(total * scale)
        self._downtime = payload * 8 / self._eff_bps + spec.state_size * 8 / (
            spec.bandwidth_bps
        )
        self._t += self._downtime
        self._blackout_end = self._t
        dst = self.destination
        assert dst is not None
        if self.faults.corrupt_page is not None:
            page = self.faults.corrupt_page % self.layout.sim_pages
            dst[page * spec.page_size] ^= 0xFF
        self._verified = self._verify()
        if not self._verified:
            page = self._first_difference()
            return (
                yield from self._abort(
                    "verification_failed",
                    f"destination memory differs from the source at page {page}",
                )
            )
        return True

    def _verify(self) -> bool:
        """Compare the destination with the source byte for byte."""
        dst = self.destination
        assert dst is not None
        self.source.settle()
        src = self.source.data
        if len(src) != len(dst):
            return False
        dmv = memoryview(dst)
        step = _VERIFY_BYTES
        return all(
            src.startswith(dmv[x : x + step], x) for x in range(0, len(src), step)
        )

    def _first_difference(self) -> int:
        dst = self.destination
        assert dst is not None
        src = self.source.data
        ps = self.spec.page_size
        step = max(ps, 1 << 20)
        for x in range(0, len(src), step):
            if src[x : x + step] != dst[x : x + step]:
                for y in range(x, min(len(src), x + step), ps):
                    if src[y : y + ps] != dst[y : y + ps]:
                        return y // ps
        return -1

    def _send(
        self, bs: Sequence[int], be: Sequence[int], pages: int, *, fresh: bool
    ) -> tuple[int, int]:
        """Send runs ``[bs[i], be[i])``; clear their marks; (zero pages, payload).

        A contiguous run is checked for zero pages first (one strided read of
        each page's first byte) and, when it has none, copied with one slice
        assignment; zero pages are read but not copied (see ``_send_run``).
        Scattered single pages are copied with one C-level ``map`` and counted
        afterwards: a zero page still carries no payload, and copying its
        zeros is the same work as the destination filling them in. The
        guest's unapplied writes are settled before the pages are read.
        """
        ps = self.spec.page_size
        data = self.source.data
        dst = self.destination
        assert dst is not None
        marks = self.source.marks
        singles = pages == len(bs)
        if fresh and len(bs) == 1 and self.workload.rate:
            self._send_ahead(bs[0], be[0])
            a, b = bs[0], be[0]
            marks[a:b] = bytes(b - a)
            zero = (
                0 if 0 not in data[a * ps : b * ps : ps] else self._count_zero(bs, be)
            )
            return zero, (pages - zero) * ps
        compress = self.spec.compression and not fresh
        if not (singles and len(bs) > 1 and not compress):
            self.source.settle(bs[0], be[-1])  # the guest's writes, before reading
        if compress or len(bs) == 1:
            zero = payload = 0
            for a, b in zip(bs, be, strict=True):
                x, y = a * ps, b * ps
                if not compress and 0 not in data[x:y:ps]:
                    memoryview(dst)[x:y] = memoryview(data)[x:y]
                    payload += y - x
                else:  # zero pages among them, or compression
                    dz, dp = self._send_run(a, b, fresh=fresh, compress=compress)
                    zero += dz
                    payload += dp
        else:
            zero = 0
            for i in range(0, len(bs), _HOT_RUNS):
                zero += self._send_scattered(
                    bs[i : i + _HOT_RUNS], be[i : i + _HOT_RUNS], singles=singles
                )
            payload = (pages - zero) * ps
        if len(bs) == 1:
            marks[bs[0] : be[0]] = bytes(be[0] - bs[0])
        elif singles:
            deque(map(marks.__setitem__, bs, repeat(0)), 0)
        else:
            lengths = map(sub, be, bs)
            zeros = map(_ZEROS.__getitem__, map(slice, repeat(0), lengths))
            deque(map(marks.__setitem__, map(slice, bs, be), zeros), 0)
        return zero, payload

    def _send_scattered(
        self, bs: Sequence[int], be: Sequence[int], *, singles: bool
    ) -> int:
        """Copy runs scattered over memory, each with one C-level map; zero pages.

        Each page far from the last misses cache and TLB, so everything else
        done to these pages (the guest's pending writes for single pages,
        reading first bytes to find zero pages) is done while they are still
        hot: callers pass ``_HOT_RUNS`` runs at a time. With ``singles`` the
        pages' pending writes are applied here (settled to both copies),
        otherwise the caller settled them before.
        """
        ps = self.spec.page_size
        src = self.source
        data = src.data
        dst = self.destination
        assert dst is not None
        xs = list(map(mul, bs, repeat(ps)))
        ys = list(map(mul, be, repeat(ps)))
        sls = list(map(slice, xs, ys))
        smv = memoryview(data)
        dmv = memoryview(dst)
        deque(map(dmv.__setitem__, sls, map(smv.__getitem__, sls)), 0)
        if singles:
            stamped = src.stamped(bs)
            if stamped:  # the guest's writes, applied to both while hot
                src.settle_pages(stamped, dst)
            firsts = bytes(map(data.__getitem__, xs))
        else:
            firsts = b"".join(map(data.__getitem__, map(slice, xs, ys, repeat(ps))))
        return 0 if 0 not in firsts else self._count_zero(bs, be)

    def _send_ahead(self, a: int, b: int) -> None:
        """Deliver ``[a, b)`` of a first pass from a window copied ahead.

        Batches of a writing guest are small (its writes interleave with
        them), but glibc copies small blocks at about half the speed of large
        ones. So the first pass copies a large window ahead in one go and each
        batch then only re-copies the pages the guest wrote since: exactly
        what sending the batch at its own time would have delivered.
        """
        src = self.source
        dst = self.destination
        assert dst is not None
        ps = self.spec.page_size
        lo, hi = self._ahead
        if lo <= a and b <= hi:
            changed = src.settle(a, b)
            if changed:
                sls = [slice(p * ps, (p + 1) * ps) for p in changed]
                smv = memoryview(src.data)
                dmv = memoryview(dst)
                deque(map(dmv.__setitem__, sls, map(smv.__getitem__, sls)), 0)
            return
        hi = min(src.pages, a + max(b - a, _IDLE_BATCH_BYTES // ps))
        src.settle(a, hi)
        memoryview(dst)[a * ps : hi * ps] = memoryview(src.data)[a * ps : hi * ps]
        self._ahead = (a, hi)

    def _count_zero(self, bs: Sequence[int], be: Sequence[int]) -> int:
        """Zero pages among the runs (for the link's accounting)."""
        ps = self.spec.page_size
        data = self.source.data
        total = 0
        for a, b in zip(bs, be, strict=True):
            x = a * ps
            for match in _ZERO_RUN.finditer(data[x : b * ps : ps]):
                lo, hi = match.span()
                total += sum(j - i for i, j in self._zeros_among(x, lo, hi))
        return total

    def _zeros_among(self, x: int, lo: int, hi: int) -> list[tuple[int, int]]:
        """Zero pages among candidate pages ``[lo, hi)`` of the run at byte ``x``.

        Candidates are pages whose first byte is zero; a run of them is checked
        with one C-level comparison, page by page only if it is mixed.
        """
        ps = self.spec.page_size
        if self._is_zero(x + lo * ps, x + hi * ps):
            return [(lo, hi)]
        ranges: list[tuple[int, int]] = []
        k = lo
        while k < hi:
            if self._is_zero(x + k * ps, x + (k + 1) * ps):
                j = k + 1
                while j < hi and self._is_zero(x + j * ps, x + (j + 1) * ps):
                    j += 1
                ranges.append((k, j))
                k = j
            else:
                k += 1
        return ranges

    def _send_run(
        self, a: int, b: int, *, fresh: bool, compress: bool
    ) -> tuple[int, int]:
        """Send pages ``[a, b)`` with zero markers: only non-zero pages travel.

        A zero page is read in full (to know it is zero) but not copied: fresh
        destination memory is zero already, older pages are zero-filled. With
        ``compress`` the non-zero pages go as deltas.
        """
        ps = self.spec.page_size
        data = self.source.data
        x = a * ps
        zero = payload = 0
        prev = 0
        zeros = _ZEROS
        room = len(zeros)
        for match in _ZERO_RUN.finditer(data[x : b * ps : ps]):
            lo, hi = match.span()
            n = (hi - lo) * ps
            if n <= room and data.startswith(zeros[:n], x + lo * ps):
                ranges = [(lo, hi)]  # the usual case: the candidates are zero
            else:
                ranges = self._zeros_among(x, lo, hi)
            for zlo, zhi in ranges:
                if zlo > prev:
                    payload += self._put(x + prev * ps, x + zlo * ps, compress=compress)
                if not fresh:
                    self._fill_zero(x + zlo * ps, x + zhi * ps)
                zero += zhi - zlo
                prev = zhi
        if prev < b - a:
            payload += self._put(x + prev * ps, b * ps, compress=compress)
        return zero, payload

    def _is_zero(self, x: int, y: int) -> bool:
        data = self.source.data
        step = len(_ZEROS)
        while x < y:
            n = min(step, y - x)
            if not data.startswith(_ZEROS[:n], x):
                return False
            x += n
        return True

    def _fill_zero(self, x: int, y: int) -> None:
        dst = self.destination
        assert dst is not None
        dmv = memoryview(dst)
        step = len(_ZEROS)
        while x < y:
            n = min(step, y - x)
            dmv[x : x + n] = _ZEROS[:n]
            x += n

    def _put(self, x: int, y: int, *, compress: bool) -> int:
        """Deliver source bytes ``[x, y)``; return the payload the link carried.

        With ``compress``, as a zlib-packed XOR delta against the copy the
        destination already has (raw if that is no smaller).
        """
        dst = self.destination
        assert dst is not None
        smv = memoryview(self.source.data)[x:y]
        dmv = memoryview(dst)[x:y]
        n = y - x
        if not compress:
            dmv[:] = smv
            return n
        old = int.from_bytes(dmv, "little")
        delta = (int.from_bytes(smv, "little") ^ old).to_bytes(n, "little")
        packed = zlib.compress(delta, 1)
        if len(packed) < n:
            # The destination decodes the delta against its own copy.
            got = int.from_bytes(zlib.decompress(packed), "little")
            dmv[:] = (got ^ old).to_bytes(n, "little")
            self._saved += n - len(packed)
            return len(packed)
        dmv[:] = smv
        return n

    # -- for benchmarks and tests ----------------------------------------

    def allocate_destination(self) -> float:
        """Allocate and touch the destination's memory; return the seconds taken."""
        began = self._clock()
        self.destination = bytearray(len(self.source.data))
        return self._clock() - began

    def send_marked(self, *, fresh: bool = False) -> tuple[int, int, int]:
        """Send every marked page once, guest paused: (pages, zero pages, payload).

        One bare pre-copy pass without clock, writes or events, so a benchmark
        can time the transfer alone. The destination must be allocated;
        ``fresh`` says it still holds only zeros (as before the first pass).
        """
        if self.destination is None:
            raise MigratorError("allocate the destination first")
        starts, ends = dirty_runs(self.source.dirty_snapshot())
        total = sum(ends) - sum(starts)
        zero = payload = 0
        for bs, be in _batches(starts, ends, self._batch_pages(total), total):
            z, p = self._send(bs, be, sum(be) - sum(bs), fresh=fresh)
            zero += z
            payload += p
        return total, zero, payload

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
        moved = self._blackout_end > 0
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
            bytes_saved_by_compression=round(self._saved * scale),
            total_time_s=(self._blackout_end - self._moving_since) if moved else 0.0,
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
