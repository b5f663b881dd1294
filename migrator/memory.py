"""Guest memory: a ``bytearray`` of pages, its dirty marks, and how big it may be.

Marks are one byte per page (1 = written since last sent), so the engine can find
dirty pages with C-speed ``bytes`` operations instead of per-page Python loops.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, count, repeat
from operator import add, mod, mul

from .errors import SpecError
from .spec import MigrationSpec

__all__ = [
    "Layout",
    "SourceMemory",
    "dirty_runs",
    "plan_layout",
]

#: Bytes of fill pattern generated from the seed, then tiled over memory.
_PATTERN_BYTES = 1 << 20
#: mark → 1 if dirty.
_NONZERO = bytes([0] + [1] * 255)
#: mark → 1 if it holds a write stamp (2–255).
_STAMPED = bytes([0, 0] + [1] * 254)
#: Slots of new content a write may leave (a prime, so that neighbouring pages
#: written in one batch get different slots: see :meth:`SourceMemory.settle_pages`).
_INK_SLOTS = 251
#: Bytes of ink made at once (no transient copy of the whole ink).
_INK_CHUNK = 1 << 16
#: Multipliers of a page number and a stamp in the choice of a slot.
_INK_PAGE_STEP = 389
_INK_STAMP_STEP = 613
#: byte → byte | 1, so a page's first byte is never zero.
_SET_LOW_BIT = bytes(b | 1 for b in range(256))


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """How a VM's memory is held: all of it, or a uniform sample within budget.

    A VM whose source, destination and marks would not fit
    ``memory_budget_bytes`` is simulated on ``sim_pages`` of its ``pages``;
    every count the engine reports is scaled back up by ``scale``.
    """

    pages: int
    sim_pages: int
    page_size: int

    def __post_init__(self) -> None:
        if not 1 <= self.sim_pages <= self.pages:
            raise SpecError("sim_pages", "must be in [1, pages]")

    @property
    def sampled(self) -> bool:
        """True when only a sample of the pages is held in memory."""
        return self.sim_pages < self.pages

    @property
    def scale(self) -> float:
        """Real pages per simulated page (1.0 unless sampled)."""
        return self.pages / self.sim_pages

    @property
    def fraction(self) -> float:
        """Share of the pages that is simulated."""
        return self.sim_pages / self.pages

    @property
    def resident_bytes(self) -> int:
        """Source, destination, marks and the pass's snapshot of the marks."""
        return bytes_per_page(self.page_size) * self.sim_pages


def bytes_per_page(page_size: int) -> int:
    """Resident bytes one simulated page costs (two copies, mark, snapshot)."""
    return 2 * page_size + 2


def plan_layout(spec: MigrationSpec) -> Layout:
    """Hold all pages when they fit the budget, else the largest uniform sample."""
    fit = spec.memory_budget_bytes // bytes_per_page(spec.page_size)
    return Layout(
        pages=spec.pages, sim_pages=min(spec.pages, fit), page_size=spec.page_size
    )


class SourceMemory:
    """The source host's copy of the guest's memory and its dirty marks.

    ``marks`` holds one byte per page: 0 clean (sent, not written since), 1
    dirty, 2–255 dirty with a write not yet applied to ``data``. A guest write
    stores a stamp of 2–255 in the page's mark, and :meth:`settle` later
    writes new content over the page's first ``write_bytes`` bytes (a slice of
    seeded random ``ink`` chosen by page and stamp, so the write changes them
    and a delta of the page does not compress below them) and leaves the mark
    at 1. The engine settles every page before it reads it, and every written
    page is marked, hence sent and settled, before the destination is
    compared. A write so touches only the small ``marks`` array instead of
    missing cache and TLB in a random page of ``data``. Call :meth:`settle`
    before reading ``data`` yourself.
    """

    __slots__ = ("_ink", "_ink_seed", "data", "marks", "page_size", "pages",
                 "write_bytes", "zero_pages")  # fmt: skip

    def __init__(self, *, pages: int, page_size: int) -> None:
        self.pages = pages
        self.page_size = page_size
        self.data = bytearray(pages * page_size)
        self.marks = bytearray(pages)
        self.zero_pages = pages
        self.write_bytes = 1
        self._ink: bytes | None = None
        self._ink_seed = 0

    def set_writes(self, write_bytes: int, rng: random.Random) -> None:
        """Make each write change ``write_bytes`` bytes, with content from ``rng``.

        A write takes its effect when it is settled, so writes still pending
        take this one too.
        """
        if not 1 <= write_bytes <= self.page_size:
            raise SpecError("write_bytes", f"must be in [1, {self.page_size}]")
        self.write_bytes = write_bytes
        self._ink_seed = rng.getrandbits(64)
        self._ink = None

    @property
    def ink(self) -> bytes:
        """The content writes leave, ``write_bytes`` a slot (made when first used)."""
        if self._ink is None:
            rng = random.Random(self._ink_seed)
            ink = bytearray()
            size = _INK_SLOTS * self.write_bytes
            while len(ink) < size:
                ink += rng.randbytes(min(_INK_CHUNK, size - len(ink)))
            self._ink = bytes(ink)
        return self._ink

    @classmethod
    def filled(
        cls, *, pages: int, page_size: int, zero_pages: int, rng: random.Random
    ) -> SourceMemory:
        """Memory whose ``zero_pages`` pages (chosen by ``rng``) are zero, the rest not.

        Non-zero pages hold seeded random bytes (a pattern tiled over memory) with
        a non-zero first byte, so they cannot be mistaken for zero pages.
        """
        if not 0 <= zero_pages <= pages:
            raise SpecError("zero_pages", f"must be in [0, {pages}]")
        mem = cls(pages=pages, page_size=page_size)
        data = mem.data
        total = len(data)
        plen = min(total, max(page_size, _PATTERN_BYTES))
        view = memoryview(data)
        # The pattern is made in place and tiled from there: no second copy.
        view[:plen] = rng.randbytes(plen)
        # A non-zero first byte per page: cheap to tell such pages from zero ones.
        data[:plen:page_size] = data[:plen:page_size].translate(_SET_LOW_BIT)
        for start in range(plen, total, plen):
            end = min(total, start + plen)
            view[start:end] = view[: end - start]
        if zero_pages:
            zero_page = bytes(page_size)
            chosen = (
                range(pages)
                if zero_pages == pages
                else rng.sample(range(pages), zero_pages)
            )
            for page in chosen:
                start = page * page_size
                view[start : start + page_size] = zero_page
        mem.zero_pages = zero_pages
        return mem

    def mark_all(self) -> None:
        """Mark every page dirty: before the first pass nothing has been sent."""
        self.settle()
        self.marks[:] = b"\x01" * self.pages

    def dirty_count(self) -> int:
        """Pages currently marked dirty."""
        return self.pages - self.marks.count(0)

    def dirty_snapshot(self) -> bytes:
        """The marks as 0/1 bytes, as :func:`dirty_runs` takes them."""
        return bytes(self.marks.translate(_NONZERO))

    def settle(self, first: int = 0, end: int | None = None) -> list[int]:
        """Apply the unapplied writes of pages ``[first, end)`` to ``data``.

        Returns the pages that changed, in order; their marks stay dirty (1).
        """
        end = self.pages if end is None else end
        pages = self.stamped_range(first, end)
        if pages:
            self.settle_pages(pages)
        return pages

    def stamped_range(self, first: int, end: int) -> list[int]:
        """The pages of ``[first, end)`` that hold an unapplied write."""
        return _ones(self.marks[first:end].translate(_STAMPED), first)

    def stamped(self, pages: Sequence[int]) -> list[int]:
        """Those of ``pages`` that hold an unapplied write."""
        flags = bytes(map(self.marks.__getitem__, pages)).translate(_STAMPED)
        return list(map(pages.__getitem__, _ones(flags, 0)))

    def settle_pages(self, pages: list[int], also: bytearray | None = None) -> None:
        """Apply the writes of stamped ``pages``; mirror the bytes into ``also``.

        Each page's first ``write_bytes`` bytes get ink slot ``(page · 389 +
        stamp · 613) mod 251``: neighbours written in one batch get different
        content, and a page written again gets new content (unless its stamps
        differ by a multiple of 251).
        ``also`` is a destination that already received these pages' old
        content: writing both while the pages are hot in cache and TLB is the
        same as settling first and copying after, without a second miss.
        """
        if not pages:
            return
        marks = self.marks
        n = self.write_bytes
        stamps = bytes(map(marks.__getitem__, pages))
        slots = map(
            mod,
            map(
                add,
                map(mul, pages, repeat(_INK_PAGE_STEP)),
                map(mul, stamps, repeat(_INK_STAMP_STEP)),
            ),
            repeat(_INK_SLOTS),
        )
        offsets = list(map(mul, slots, repeat(n)))
        new = list(
            map(self.ink.__getitem__, map(slice, offsets, map(add, offsets, repeat(n))))
        )
        starts = list(map(mul, pages, repeat(self.page_size)))
        where = list(map(slice, starts, map(add, starts, repeat(n))))
        deque(map(self.data.__setitem__, where, new), 0)
        if also is not None:
            deque(map(also.__setitem__, where, new), 0)
        deque(map(marks.__setitem__, pages, repeat(1)), 0)


def _ones(flags: bytes | bytearray, first: int) -> list[int]:
    """Positions (plus ``first``) of the 1-bytes in a 0/1 ``flags``, at C speed."""
    if flags.count(0) == len(flags):
        return []
    gaps = flags.split(b"\x01")[:-1]
    return list(map(add, accumulate(map(len, gaps)), count(first)))


def dirty_runs(snapshot: bytes) -> tuple[list[int], list[int]]:
    """Runs of marked pages in ``snapshot`` as ``(starts, ends)``, ends exclusive.

    Works at C speed. A sparse snapshot (under half the pages marked) is
    returned page by page, each as a run of one: ``split`` on the mark finds
    them without a Python loop per page. A denser one is walked run by run
    with ``bytes.find``, so the cost follows the number of runs.
    """
    n = len(snapshot)
    marked = snapshot.count(1)
    if marked == 0:
        return [], []
    if marked == n:
        return [0], [n]
    if marked * 2 < n:
        gaps = snapshot.split(b"\x01")[:-1]
        starts = list(map(add, accumulate(map(len, gaps)), count()))
        return starts, list(map(add, starts, repeat(1)))
    starts, ends = [], []
    find = snapshot.find
    i = find(1)
    while i >= 0:
        j = find(0, i)
        if j < 0:
            j = n
        starts.append(i)
        ends.append(j)
        i = find(1, j)
    return starts, ends
