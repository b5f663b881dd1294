from __future__ import annotations

import random

import pytest

from migrator.memory import SourceMemory, dirty_runs, plan_layout
from migrator.spec import MIB, MigrationSpec


def _naive_runs(marks: bytes) -> tuple[list[int], list[int]]:
    pages = [i for i, m in enumerate(marks) if m]
    return pages, [p + 1 for p in pages]


def _expand(starts: list[int], ends: list[int]) -> list[int]:
    return [p for a, b in zip(starts, ends, strict=True) for p in range(a, b)]


@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.5, 0.97, 1.0])
def test_dirty_runs_find_exactly_the_marked_pages(density: float) -> None:
    rng = random.Random(5)
    marks = bytes(1 if rng.random() < density else 0 for _ in range(5000))
    starts, ends = dirty_runs(marks)
    assert _expand(starts, ends) == _naive_runs(marks)[0]
    assert all(a < b for a, b in zip(starts, ends, strict=True))


def test_dirty_runs_merge_dense_neighbours() -> None:
    marks = bytes([0, 1, 1, 1, 0, 0, 1, 1, 0, 1] * 100)
    starts, ends = dirty_runs(marks)
    assert (starts[:3], ends[:3]) == ([1, 6, 9], [4, 8, 10])


def test_filled_memory_has_exactly_the_zero_pages_asked() -> None:
    ps = 4096
    mem = SourceMemory.filled(
        pages=300, page_size=ps, zero_pages=77, rng=random.Random(1)
    )
    zero_page = bytes(ps)
    zeros = [i for i in range(300) if mem.data[i * ps : (i + 1) * ps] == zero_page]
    assert len(zeros) == 77
    assert all(mem.data[i * ps] != 0 for i in range(300) if i not in set(zeros))


def test_fill_is_seeded() -> None:
    a = SourceMemory.filled(
        pages=64, page_size=4096, zero_pages=5, rng=random.Random(3)
    )
    b = SourceMemory.filled(
        pages=64, page_size=4096, zero_pages=5, rng=random.Random(3)
    )
    c = SourceMemory.filled(
        pages=64, page_size=4096, zero_pages=5, rng=random.Random(4)
    )
    assert a.data == b.data
    assert a.data != c.data


def test_layout_samples_only_beyond_the_budget() -> None:
    whole = plan_layout(
        MigrationSpec(memory_bytes=64 * MIB, memory_budget_bytes=256 * MIB)
    )
    assert not whole.sampled and whole.scale == 1.0
    sampled = plan_layout(
        MigrationSpec(memory_bytes=64 * MIB, memory_budget_bytes=8 * MIB)
    )
    assert sampled.sampled
    assert sampled.resident_bytes <= 8 * MIB
    assert sampled.sim_pages * sampled.scale == pytest.approx(16384)
    default = plan_layout(MigrationSpec(memory_bytes=1 << 30))
    assert default.sampled  # two copies of 1 GiB exceed the 1 GiB default
