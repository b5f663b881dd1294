"""Shared helpers for the engine tests: small, seeded specs."""

from __future__ import annotations

from typing import Any

from migrator.spec import MIB, MigrationSpec, WorkloadSpec


def small_spec(memory: int = 8 * MIB, **kw: Any) -> MigrationSpec:
    """A small VM over a 1 Gbit/s link; keyword arguments override fields."""
    workload = kw.pop("workload", None)
    if isinstance(workload, dict):
        workload = WorkloadSpec(**workload)
    if workload is not None:
        kw["workload"] = workload
    kw.setdefault("bandwidth_bps", 1e9)
    return MigrationSpec(memory_bytes=memory, **kw)
