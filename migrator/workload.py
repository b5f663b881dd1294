"""Seeded synthetic guests that write to their memory in simulated time.

Writes are applied in batches with C-level ``map`` chains rather than a Python
statement per write: one batch draws its random pages from ``randbytes`` and
stamps their marks; the stamp makes the page dirty and, once settled (see
:class:`~migrator.memory.SourceMemory`), changes its content.
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
        "base_rate",
        "_cold",
        "_hot",
        "_hot_carry",
        "_stamps",
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
        self.base_rate = spec.write_rate * layout.fraction if spec.writes else 0.0
        self.rate = self.base_rate
        self.writes_done = 0
        self._carry = 0.0
        self._hot_carry = 0.0
        self._stamps = 0
        self._walker = 0
        self.region_start = 0
        self._hot: list[int] = []
        self._cold: list[int] = []
        sim_pages = layout.sim_pages
        size = 0
        if self.kind != "idle":
            size = max(1, round(spec.working_set_pages * layout.fraction))
            size = min(size, sim_pages)
        self.working_set = size
        if self.kind == "sweep":
            self.region_start = rng.randrange(sim_pages - size + 1)
        elif self.kind in ("uniform", "hotcold"):
            # Sorted, so that sorted indices give writes in address order.
            pages = sorted(rng.sample(range(sim_pages), size))
            hot = 0
            if self.kind == "hotcold":
                hot = min(size, max(1, round(spec.hot_fraction * size)))
            self._hot = pages[:hot]
            self._cold = pages[hot:]
        if self.kind != "idle":
            share = spec.page_change_share
            memory.set_writes(max(1, round(share * memory.page_size)), rng)

    def set_throttle(self, pct: float) -> None:
        """Throttle the guest by ``pct`` %: it issues ``100 − pct`` % of its writes."""
        if not 0.0 <= pct < 100.0:
            raise SpecError("throttle_pct", f"must be in [0, 100), got {pct!r}")
        self.rate = self.base_rate * (1.0 - pct / 100.0)

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
            if not self._cold:
                k_hot = k
            self._scatter(self._hot, k_hot)
            self._scatter(self._cold, k - k_hot)
        self.writes_done += k
        return k

    def _stamp(self) -> int:
        """The mark this batch's writes leave (2–255, see :class:`SourceMemory`)."""
        self._stamps = self._stamps % 254 + 1
        return self._stamps + 1

    def _scatter(self, pages: list[int], k: int) -> None:
        size = len(pages)
        if k <= 0 or size == 0:
            return
        marks = self.memory.marks
        randbytes = self.rng.randbytes
        stamp = self._stamp()
        while k > 0:
            n = min(k, _CHUNK)
            k -= n
            draws = memoryview(randbytes(4 * n)).cast("I").tolist()
            idx = list(map(mod, draws, repeat(size)))
            if n > size // 2:
                idx = list(set(idx))  # many repeats: write each page once
            deque(map(marks.__setitem__, map(pages.__getitem__, idx), repeat(stamp)), 0)

    def _sweep(self, k: int) -> None:
        size = self.working_set
        laps, rest = divmod(k, size)
        start = self.region_start
        stamp = self._stamp()
        if laps:
            self._touch(start, start + size, stamp)
        if rest:
            a = self._walker
            b = a + rest
            if b <= size:
                self._touch(start + a, start + b, stamp)
            else:
                self._touch(start + a, start + size, stamp)
                self._touch(start, start + b - size, stamp)
        self._walker = (self._walker + k) % size

    def _touch(self, first: int, end: int, stamp: int) -> None:
        """Write once to every page in ``[first, end)`` at C speed."""
        self.memory.marks[first:end] = bytes((stamp,)) * (end - first)
