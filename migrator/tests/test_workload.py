from __future__ import annotations

import random

import pytest

from migrator.memory import SourceMemory, plan_layout
from migrator.spec import MIB, MigrationSpec, WorkloadSpec
from migrator.workload import Workload


def _make(kind: str, ws: int, rate: float, seed: int = 1) -> Workload:
    spec = MigrationSpec(
        memory_bytes=4 * MIB,
        workload=WorkloadSpec(kind=kind, working_set_pages=ws, write_rate=rate),
    )
    layout = plan_layout(spec)
    mem = SourceMemory.filled(
        pages=layout.sim_pages, page_size=4096, zero_pages=100, rng=random.Random(0)
    )
    return Workload(spec.workload, layout=layout, memory=mem, rng=random.Random(seed))


@pytest.mark.parametrize("kind", ["uniform", "hotcold", "sweep"])
def test_every_dirtied_page_changed_and_only_those(kind: str) -> None:
    wl = _make(kind, 200, 5000)
    before = bytes(wl.memory.data)
    done = wl.advance(0.01)
    assert done == 50
    assert len(wl.memory.settle()) > 0
    ps = 4096
    for page in range(wl.memory.pages):
        changed = (
            before[page * ps : (page + 1) * ps]
            != wl.memory.data[page * ps : (page + 1) * ps]
        )
        assert changed == bool(wl.memory.marks[page]), page


def test_write_count_follows_rate_times_time_with_carry() -> None:
    wl = _make("uniform", 300, 1000.0)
    total = sum(wl.advance(0.0007) for _ in range(1000))
    assert total == 700
    assert wl.writes_done == 700


def test_workload_is_seeded() -> None:
    a, b, c = (_make("uniform", 500, 20000, seed) for seed in (1, 1, 2))
    for wl in (a, b, c):
        wl.advance(0.01)
        wl.memory.settle()
    assert a.memory.data == b.memory.data and a.memory.marks == b.memory.marks
    assert a.memory.marks != c.memory.marks


def test_idle_writes_nothing() -> None:
    wl = _make("idle", 0, 0.0)
    assert wl.advance(10.0) == 0
    assert wl.memory.dirty_count() == 0


def test_hotcold_sends_most_writes_to_the_hot_set() -> None:
    wl = _make("hotcold", 1000, 2000)
    wl.advance(0.05)  # 100 writes, ~90 to 100 hot pages, ~10 to 900 cold
    hot_pages = wl._hot
    hot = sum(1 for p in hot_pages if wl.memory.marks[p])
    assert hot > 3 * (wl.memory.dirty_count() - hot)


def test_sweep_walks_its_region_in_order() -> None:
    wl = _make("sweep", 100, 1000)
    wl.advance(0.03)
    start = wl.region_start
    marked = [p for p in range(wl.memory.pages) if wl.memory.marks[p]]
    assert marked == list(range(start, start + 30))
    wl.advance(0.1)  # a full lap: the whole region
    assert wl.memory.dirty_count() == 100
