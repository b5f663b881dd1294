"""Seeded synthetic guests that write to their memory in simulated time.

Writes are applied in batches with C-level ``map`` chains rather than a Python
statement per write: one batch draws its random pages from ``randbytes``, bumps
one byte of each written page (so every write changes the page) and marks the
page dirty.
"""

from __future__ import annotations

import random
from collections import deque
from itertools import repeat
from operator import mod

from .errors import SpecError
from .memory import Layout, SourceMemory
from .spec import WorkloadSpec

__all__ = ["Workload"]

#: byte → byte + 1 (mod 256): one write's change to its page.
_INC = bytes((i + 1) & 0xFF for i in range(256))
#: Most writes drawn at once; bounds the batch's temporary lists.
_CHUNK = 1 << 20


class Workload:
    """A guest's writes; :meth:`advance` performs those of ``dt`` simulated seconds.

    On a sampled layout the working set and the write rate are scaled by the
    sample's fraction, so each simulated page sees the writes it would see in
    the full VM.
    """

    __slots__ = (
        "_carry",
        "_cold",
        "_hot",
        "_hot_carry",
        "_offset",
        "_walker",
        "kind",
        "memory",
        "rate",
        "region_start",
        "rng",
        "spec",
        "working_set",
        "writes_done",
    )

    def __init__(
        self,
        spec: WorkloadSpec,
        *,
        layout: Layout,
        memory: SourceMemory,
        rng: random.Random,
    ) -> None:
        if memory.pages != layout.sim_pages or memory.page_size != layout.page_size:
            raise SpecError("memory", "does not match the layout")
        self.spec = spec
        self.kind = spec.kind if spec.writes else "idle"
        self.memory = memory
        self.rng = rng
        self.rate = spec.write_rate * layout.fraction if spec.writes else 0.0
        self.writes_done = 0
        self._carry = 0.0
        self._hot_carry = 0.0
        self._walker = 0
        self._offset = layout.page_size // 2
        self.region_start = 0
        self._hot: tuple[list[int], list[int]] = ([], [])
        self._cold: tuple[list[int], list[int]] = ([], [])
        sim_pages = layout.sim_pages
        size = 0
        if self.kind != "idle":
            size = max(1, round(spec.working_set_pages * layout.fraction))
            size = min(size, sim_pages)
        self.working_set = size
        ps = layout.page_size
        if self.kind == "sweep":
            self.region_start = rng.randrange(sim_pages - size + 1)
        elif self.kind in ("uniform", "hotcold"):
            pages = rng.sample(range(sim_pages), size)
            hot = 0
            if self.kind == "hotcold":
                hot = min(size, max(1, round(spec.hot_fraction * size)))
            # One fixed byte per page takes the writes; spread so that pages
            # differ in where they change.
            mask = ps - 1
            pos = [p * ps + ((p * 2654435761) >> 7 & mask) for p in pages]
            self._hot = (pages[:hot], pos[:hot])
            self._cold = (pages[hot:], pos[hot:])

    def advance(self, dt: float) -> int:
        """Perform the writes of ``dt`` simulated seconds; return how many."""
        if self.rate == 0.0 or dt <= 0.0:
            return 0
        due = self.rate * dt + self._carry
        k = int(due + 1e-9)  # 0.7 + 0.3 must make one write, not 0.99999…
        self._carry = due - k
        if k == 0:
            return 0
        if self.kind == "sweep":
            self._sweep(k)
        elif self.kind == "uniform":
            self._scatter(self._cold, k)
        else:
            hot_due = k * self.spec.hot_write_share + self._hot_carry
            k_hot = int(hot_due)
            self._hot_carry = hot_due - k_hot
            if not self._cold[0]:
                k_hot = k
            self._scatter(self._hot, k_hot)
            self._scatter(self._cold, k - k_hot)
        self.writes_done += k
        return k

    def _scatter(self, target: tuple[list[int], list[int]], k: int) -> None:
        pages, positions = target
        size = len(pages)
        if k <= 0 or size == 0:
            return
        data = self.memory.data
        marks = self.memory.marks
        randbytes = self.rng.randbytes
        while k > 0:
            n = min(k, _CHUNK)
            k -= n
            draws = memoryview(randbytes(4 * n)).cast("I").tolist()
            idx = list(map(mod, draws, repeat(size)))
            if n > size // 2:
                # Many repeats: a page written twice in one batch changes once.
                idx = sorted(set(idx))
            pos = list(map(positions.__getitem__, idx))
            new = bytes(map(data.__getitem__, pos)).translate(_INC)
            deque(map(data.__setitem__, pos, new), 0)
            deque(map(marks.__setitem__, map(pages.__getitem__, idx), repeat(1)), 0)

    def _sweep(self, k: int) -> None:
        size = self.working_set
        laps, rest = divmod(k, size)
        start = self.region_start
        if laps:
            self._touch(start, start + size)
        if rest:
            a = self._walker
            b = a + rest
            if b <= size:
                self._touch(start + a, start + b)
            else:
                self._touch(start + a, start + size)
                self._touch(start, start + b - size)
        self._walker = (self._walker + k) % size

    def _touch(self, first: int, end: int) -> None:
        """Write once to every page in ``[first, end)`` at C speed."""
        ps = self.memory.page_size
        data = self.memory.data
        sl = slice(first * ps + self._offset, end * ps, ps)
        data[sl] = data[sl].translate(_INC)
        self.memory.marks[first:end] = b"\x01" * (end - first)
