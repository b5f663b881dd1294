from __future__ import annotations

import itertools

from migrator.predict import predict
from migrator.spec import MIB, MigrationSpec, WorkloadSpec


def test_idle_guest_is_one_pass_of_its_non_zero_pages() -> None:
    spec = MigrationSpec(memory_bytes=16 * MIB, zero_fraction=0.25)
    p = predict(spec)
    assert p.passes == 1 and p.converges and p.stop_reason == "downtime"
    assert p.bytes_sent == (4096 - 1024) * 4096 + spec.state_size
    assert p.total_time_s == (3072 * 4096 * 8 + spec.state_size * 8) / 1e9


def test_never_converging_guest_says_so() -> None:
    spec = MigrationSpec(
        memory_bytes=16 * MIB,
        downtime_limit_s=0.0,
        workload=WorkloadSpec(kind="uniform", working_set_pages=2048, write_rate=1e6),
    )
    p = predict(spec)
    assert not p.converges
    assert p.stop_reason == "pass_cap" and p.passes == spec.pass_cap
    assert p.reason.startswith("will not converge")
    assert p.final_dirty_pages > 1900  # the working set stays dirty


def test_converging_guest_shrinks_geometrically() -> None:
    spec = MigrationSpec(
        memory_bytes=32 * MIB,
        downtime_limit_s=0.0,
        workload=WorkloadSpec(kind="uniform", working_set_pages=2048, write_rate=1e4),
    )
    p = predict(spec)
    assert p.converges and p.stop_reason == "threshold"
    sizes = p.pages_per_pass
    assert all(later < earlier for earlier, later in itertools.pairwise(sizes))
