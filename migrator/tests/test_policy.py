from __future__ import annotations

from migrator.policy import stop_reason
from migrator.spec import MigrationSpec


def test_stop_rules_in_order() -> None:
    spec = MigrationSpec(min_dirty_pages=50, max_passes=3, downtime_limit_s=0.3)
    # 9155 pages of 4 KiB take 0.29999 s on 1 Gbit/s.
    assert stop_reason(spec, passes=1, remaining_pages=9155) == "downtime"
    off = MigrationSpec(min_dirty_pages=50, max_passes=3, downtime_limit_s=0.0)
    assert stop_reason(off, passes=1, remaining_pages=9155) is None
    assert stop_reason(off, passes=1, remaining_pages=50) == "threshold"
    assert stop_reason(off, passes=3, remaining_pages=9155) == "pass_cap"
