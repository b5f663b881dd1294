"""Guest memory: a ``bytearray`` of pages, its dirty marks, and how big it may be.

Marks are one byte per page (1 = written since last sent), so the engine can find
dirty pages with C-speed ``bytes`` operations instead of per-page Python loops.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate, count, repeat
from operator import add

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
    """The source host's copy of the guest's memory and its dirty marks."""

    __slots__ = ("data", "marks", "page_size", "pages", "zero_pages")

    def __init__(self, *, pages: int, page_size: int) -> None:
        self.pages = pages
        self.page_size = page_size
        self.data = bytearray(pages * page_size)
        self.marks = bytearray(pages)
        self.zero_pages = pages

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
        self.marks[:] = b"\x01" * self.pages

    def dirty_count(self) -> int:
        """Pages currently marked dirty."""
        return self.marks.count(1)


def dirty_runs(snapshot: bytes) -> tuple[list[int], list[int]]:
    """Runs of marked pages in ``snapshot`` as ``(starts, ends)``, ends exclusive.

    Works at C speed. A sparse snapshot (under one page in eight marked) is
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
    if marked * 8 < n:
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
