from __future__ import annotations

import io
import json

from migrator.cli import main


def test_bench_quick_measures_every_target() -> None:
    out = io.StringIO()
    assert (
        main(["bench", "--quick", "--memory", "8MiB", "--runs", "1", "--json"], out=out)
        == 0
    )
    data = json.loads(out.getvalue())
    rows = {row["name"]: row for row in data["rows"]}
    assert data["memory_bytes"] == 8 << 20
    targeted = [row for row in rows.values() if row["passed"] is not None]
    assert len(targeted) == 5 + 4  # the engine's five, advice for four demo VMs
    assert all(row["value"] > 0 for row in rows.values())
    assert "plain bytearray copy (ceiling)" in rows
    floor = rows["  the same pages, bare copy (floor)"]
    assert 0 < floor["ratio"] and floor["passed"] is None


def test_bench_prints_a_table_with_verdicts() -> None:
    out = io.StringIO()
    assert main(["bench", "--quick", "--memory", "4MiB", "--runs", "1"], out=out) == 0
    text = out.getvalue()
    assert "PASS" in text or "FAIL" in text
    assert "QEMU" in text
