from __future__ import annotations

import pytest

from migrator.spec import MigrationSpec, WorkloadSpec
from migrator.transport import blackout_seconds, delta_bytes, send_seconds

PS = 4096
BUSY = WorkloadSpec(kind="uniform", working_set_pages=1024, write_rate=1e4)


def test_tcp_options_are_held_to_one_connection_smb_is_not() -> None:
    fast = {"bandwidth_bps": 10e9, "tcp_stream_bps": 4e9}
    assert MigrationSpec(**fast).link_bps == 4e9  # type: ignore[arg-type]
    assert MigrationSpec(performance_option="compression", **fast).link_bps == 4e9  # type: ignore[arg-type]
    assert MigrationSpec(performance_option="smb", **fast).link_bps == 10e9  # type: ignore[arg-type]
    assert MigrationSpec(bandwidth_bps=1e9).link_bps == 1e9


def test_compression_is_used_only_when_encoding_outruns_the_link() -> None:
    assert MigrationSpec(performance_option="compression").compresses
    slow = MigrationSpec(performance_option="compression", compression_bps=0.5e9)
    assert not slow.compresses  # Hyper-V sends plain rather than wait
    assert (
        delta_bytes(
            MigrationSpec(
                workload=BUSY, performance_option="compression", compression_bps=0.5e9
            )
        )
        == PS
    )
    assert not MigrationSpec(performance_option="smb").compresses


def test_the_slower_of_link_and_encoder_paces_a_batch() -> None:
    spec = MigrationSpec(bandwidth_bps=1e9, compression_bps=2e9, compression=True)
    assert send_seconds(spec, 1e6) == pytest.approx(8e-3)  # link only
    assert send_seconds(spec, 1e6, 1e6) == pytest.approx(8e-3)  # link slower
    assert send_seconds(spec, 1e5, 1e6) == pytest.approx(4e-3)  # encoder slower


@pytest.mark.parametrize(("share", "lines"), [(0.05, 4), (0.4, 26), (1.0, 64)])
def test_a_resent_page_costs_the_lines_a_write_changed(
    share: float, lines: int
) -> None:
    workload = WorkloadSpec(
        kind="uniform", working_set_pages=64, write_rate=1.0, page_change_share=share
    )
    spec = MigrationSpec(workload=workload, performance_option="compression")
    assert delta_bytes(spec) == min(PS, lines * 64 + 4)


def test_blackout_sends_resent_pages_as_deltas_and_the_state() -> None:
    spec = MigrationSpec(workload=BUSY, performance_option="compression")
    plain = MigrationSpec(workload=BUSY)
    state = spec.state_size * 8 / 1e9
    assert blackout_seconds(plain, 1000) == pytest.approx(1000 * PS * 8 / 1e9 + state)
    assert blackout_seconds(spec, 1000) == pytest.approx(
        1000 * delta_bytes(spec) * 8 / 1e9 + state
    )
    # A page never sent goes plain, deltas or not.
    assert blackout_seconds(spec, 0, 1000) == blackout_seconds(plain, 1000)
