"""Page-transfer primitives: how marked pages get from source to destination.

One :class:`PageSender` per move holds the destination's memory and sends
runs of the source's pages to it: contiguous runs with one slice assignment
each, scattered pages with C-level ``map`` chains, zero pages as markers
without payload, and (with compression) re-sent pages as deltas
(:mod:`migrator.delta`). It keeps no
clock and yields no events: the stepper in :mod:`migrator.engine` decides
what to send and when, and accounts the time.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import mul, sub

from . import delta
from .errors import MigratorError
from .memory import SourceMemory, dirty_runs
from .spec import MigrationSpec

__all__ = ["PageSender", "batches"]

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


def batches(
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


class PageSender:
    """Sends a source's marked pages to a destination it allocates.

    ``guest_writes`` says whether a guest writes while pages are sent: it
    decides how finely a pass is cut into batches and whether a first pass
    copies ahead (see :meth:`_send_ahead`). ``saved`` counts the bytes that
    compression kept off the link, ``encoded`` the raw bytes it encoded.
    """

    def __init__(
        self, spec: MigrationSpec, source: SourceMemory, *, guest_writes: bool
    ) -> None:
        self.spec = spec
        self.source = source
        self.guest_writes = guest_writes
        self.destination: bytearray | None = None
        self.saved = 0
        self.encoded = 0
        self._ahead = (0, 0)

    # -- set-up ----------------------------------------------------------

    def allocate(self) -> None:
        """Allocate and touch the destination's memory (zeros, as a new VM's)."""
        self.destination = bytearray(len(self.source.data))

    def new_pass(self) -> None:
        """Forget the window a first pass copied ahead (see :meth:`_send_ahead`)."""
        self._ahead = (0, 0)

    def batch_pages(self, total: int) -> int:
        """Pages per batch for a pass of ``total`` pages."""
        if self.spec.batch_pages:
            return self.spec.batch_pages
        if not self.guest_writes:  # nothing to interleave with
            return max(1, _IDLE_BATCH_BYTES // self.spec.page_size)
        most = max(1, _BATCH_BYTES // self.spec.page_size)
        return max(1, min(most, max(16, total // _BATCHES_PER_PASS)))

    # -- sending ---------------------------------------------------------

    def send_marked(self, *, fresh: bool = False) -> tuple[int, int, int]:
        """Send every marked page once, guest paused: (pages, zero pages, payload).

        One bare pass without clock, writes or events, so a benchmark can time
        the transfer alone. The destination must be allocated; ``fresh`` says
        it still holds only zeros (as before the first pass).
        """
        if self.destination is None:
            raise MigratorError("allocate the destination first")
        starts, ends = dirty_runs(self.source.dirty_snapshot())
        total = sum(ends) - sum(starts)
        zero = payload = 0
        for bs, be in batches(starts, ends, self.batch_pages(total), total):
            z, p = self.send(bs, be, sum(be) - sum(bs), fresh=fresh)
            zero += z
            payload += p
        return total, zero, payload

    def send(
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
        if fresh and len(bs) == 1 and self.guest_writes:
            self._send_ahead(bs[0], be[0])
            a, b = bs[0], be[0]
            marks[a:b] = bytes(b - a)
            zero = (
                0 if 0 not in data[a * ps : b * ps : ps] else self._count_zero(bs, be)
            )
            return zero, (pages - zero) * ps
        compress = self.spec.compresses and not fresh
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

        With ``compress``, page by page as a delta (:mod:`migrator.delta`)
        against the copy the destination already has, or plain where the
        delta is no smaller.
        """
        dst = self.destination
        assert dst is not None
        smv = memoryview(self.source.data)
        dmv = memoryview(dst)
        if not compress:
            dmv[x:y] = smv[x:y]
            return y - x
        ps = self.spec.page_size
        payload = 0
        data = self.source.data
        for z in range(x, y, ps):
            packet = delta.encode(dst[z : z + ps], data[z : z + ps])
            if len(packet) < ps:
                delta.apply(dmv[z : z + ps], packet)  # the destination decodes
                payload += len(packet)
            else:
                dmv[z : z + ps] = smv[z : z + ps]
                payload += ps
        self.encoded += y - x
        self.saved += y - x - payload
        return payload

    # -- checking --------------------------------------------------------

    def corrupt(self, page: int) -> None:
        """Damage the destination's copy of ``page`` (a fault drill)."""
        dst = self.destination
        assert dst is not None
        dst[page * self.spec.page_size] ^= 0xFF

    def verify(self) -> bool:
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

    def first_difference(self) -> int:
        """The first page where destination and source differ, or -1."""
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
