from __future__ import annotations

import itertools

import pytest

from migrator.predict import predict
from migrator.spec import MIB, MigrationSpec, WorkloadSpec


def test_idle_guest_is_one_pass_of_its_non_zero_pages() -> None:
    spec = MigrationSpec(memory_bytes=16 * MIB, zero_fraction=0.25)
    p = predict(spec)
    assert p.passes == 1 and p.converges and p.stop_reason == "downtime"
    assert p.bytes_sent == (4096 - 1024) * 4096 + spec.state_size
    # The pass and the state are timed apart: equal up to float rounding.
    assert p.total_time_s == pytest.approx(
        (3072 * 4096 * 8 + spec.state_size * 8) / 1e9
    )


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


BUSY = WorkloadSpec(kind="uniform", working_set_pages=4096, write_rate=2e4)


def test_compression_predicts_deltas_for_resent_pages() -> None:
    plain = predict(MigrationSpec(memory_bytes=64 * MIB, workload=BUSY))
    packed = predict(
        MigrationSpec(
            memory_bytes=64 * MIB, workload=BUSY, performance_option="compression"
        )
    )
    assert packed.performance_option == "compression"
    assert packed.bytes_per_pass[0] == plain.bytes_per_pass[0]  # first copy plain
    assert packed.downtime_s < plain.downtime_s / 2
    assert packed.total_time_s < plain.total_time_s


def test_smb_outruns_one_tcp_connection_only_on_a_fast_link() -> None:
    def total(option: str, bandwidth: float) -> float:
        spec = MigrationSpec(
            memory_bytes=64 * MIB, bandwidth_bps=bandwidth, performance_option=option
        )
        return predict(spec).total_time_s

    assert total("smb", 1e9) == total("tcpip", 1e9)
    assert total("smb", 10e9) == pytest.approx(total("tcpip", 10e9) * 0.4, rel=0.05)


def test_the_reason_speaks_an_operators_words() -> None:
    p = predict(
        MigrationSpec(memory_bytes=64 * MIB, workload=BUSY, downtime_limit_s=0.02)
    )
    assert p.converges and p.passes > 1
    assert p.reason.startswith(f"converges in {p.passes} passes; downtime about ")
    assert p.reason.endswith("within the 20 ms limit")
