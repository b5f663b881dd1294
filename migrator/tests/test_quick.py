"""Quick migration: save, move, resume; the downtime is the whole transfer."""

from __future__ import annotations

import pytest

from migrator import SpecError
from migrator.engine import migrate
from migrator.predict import predict
from migrator.spec import MIB

from .conftest import small_spec

BUSY = {"kind": "uniform", "working_set_pages": 4096, "write_rate": 4e4}


def test_quick_migration_copies_memory_once_with_the_guest_saved() -> None:
    live = migrate(small_spec(32 * MIB, workload=BUSY, seed=4, downtime_limit_s=0.02))
    quick = migrate(
        small_spec(
            32 * MIB, workload=BUSY, seed=4, downtime_limit_s=0.02, move_kind="quick"
        )
    )
    assert live.passes > 1
    assert quick.passes == 1
    assert quick.workload_writes == 0
    assert quick.verified
    # The blackout lasts from the save to the switchover: the whole transfer.
    assert quick.downtime_s == pytest.approx(quick.total_time_s)
    assert quick.downtime_s > 5 * live.downtime_s


def test_the_model_predicts_a_quick_migration() -> None:
    spec = small_spec(
        32 * MIB, workload=BUSY, seed=4, downtime_limit_s=0.02, move_kind="quick"
    )
    done, model = migrate(spec), predict(spec)
    assert model.move_kind == "quick"
    assert model.passes == done.passes == 1
    assert model.downtime_s == pytest.approx(done.downtime_s, rel=0.02)
    assert model.total_time_s == pytest.approx(done.total_time_s, rel=0.02)
    assert "quick migration" in model.reason
    assert "the whole memory transfer" in model.reason


def test_an_unknown_move_kind_is_refused_by_name() -> None:
    with pytest.raises(SpecError, match="move_kind"):
        small_spec(move_kind="cold")
