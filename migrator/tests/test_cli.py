from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
JSON_KEYS = {
    "passes",
    "stop_reason",
    "pages_per_pass",
    "final_dirty_pages",
    "bytes_sent",
    "zero_pages",
    "total_time_s",
    "downtime_s",
    "verified",
    "sampled",
    "wall_time_s",
    "allocation_time_s",
    "predicted",
}


def _json(*flags: str) -> dict[str, object]:
    out = io.StringIO()
    assert main(["simulate", *flags, "--json"], out=out) == 0
    data: dict[str, object] = json.loads(out.getvalue())
    return data


def test_simulate_json_has_every_field() -> None:
    data = _json(
        "--memory",
        "4MiB",
        "--workload",
        "uniform",
        "--working-set-pages",
        "256",
        "--write-rate",
        "20000",
        "--seed",
        "3",
    )
    assert JSON_KEYS <= set(data)
    assert data["verified"] is True and data["sampled"] is False
    assert data["stop_reason"] in ("downtime", "threshold", "pass_cap")
    assert data["passes"] == len(data["pages_per_pass"])  # type: ignore[arg-type]
    predicted = data["predicted"]
    assert isinstance(predicted, dict) and "converges" in predicted


def test_zero_fraction_gives_exactly_rounded_zero_pages() -> None:
    data = _json("--memory", "4MiB", "--zero-fraction", "0.3", "--state-size", "0")
    assert data["zero_pages"] == round(0.3 * 1024)
    assert data["bytes_sent"] == (1024 - 307) * 4096


def test_flags_set_the_stop_rules() -> None:
    data = _json(
        "--memory",
        "4MiB",
        "--workload",
        "uniform",
        "--working-set-pages",
        "512",
        "--write-rate",
        "1M",
        "--downtime-limit",
        "0",
        "--max-passes",
        "3",
    )
    assert data["stop_reason"] == "pass_cap" and data["passes"] == 3


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--memory", "lots"], "--memory"),
        (["--bandwidth", "fast"], "--bandwidth"),
        (["--downtime-limit", "soon"], "--downtime-limit"),
        (["--zero-fraction", "2"], "--zero-fraction"),
        (["--workload", "chaos"], "--workload"),
        (["--page-size", "3000"], "--page-size"),
        (["--workload", "uniform", "--write-rate", "10"], "--working-set-pages"),
        (
            [
                "--memory",
                "4MiB",
                "--working-set-pages",
                "5000",
                "--workload",
                "uniform",
                "--write-rate",
                "5",
            ],
            "--working-set-pages",
        ),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(
    flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", *flags])
    assert info.value.code == 2
    assert named in capsys.readouterr().err


def test_readable_summary_without_json() -> None:
    out = io.StringIO()
    assert main(["simulate", "--memory", "4MiB"], out=out) == 0
    text = out.getvalue()
    assert "completed; the VM runs on the destination" in text
    assert "verified           yes" in text


def test_module_runs_and_loads_no_django() -> None:
    code = (
        "import sys, runpy\n"
        "import migrator, migrator.cli, migrator.bench, migrator.pacing\n"
        "assert 'django' not in sys.modules, 'django imported'\n"
        "sys.argv = ['migrator', 'simulate', '--memory', '2MiB', '--json']\n"
        "runpy.run_module('migrator', run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verified"] is True


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_but_not_with_json() -> None:
    out = _Terminal()
    assert main(["simulate", "--memory", "8MiB"], out=out) == 0
    text = out.getvalue()
    assert "\r[" in text and "100.0%" in text
    assert "completed; the VM runs on the destination" in text
    quiet = _Terminal()
    assert main(["simulate", "--memory", "8MiB", "--json"], out=quiet) == 0
    assert "\r[" not in quiet.getvalue()
    assert json.loads(quiet.getvalue())["verified"] is True


def test_performance_options_reach_the_spec_and_the_json() -> None:
    common = ["--memory", "8MiB", "--bandwidth", "10Gbit/s"]
    smb = _json(*common, "--performance-option", "smb")
    tcp = _json(*common)
    assert smb["predicted"]["performance_option"] == "smb"  # type: ignore[index]
    # One TCP connection carries 4 Gbit/s; SMB the link's 10.
    assert smb["total_time_s"] == pytest.approx(tcp["total_time_s"] * 0.4, rel=0.02)  # type: ignore[operator]
    packed = _json("--memory", "8MiB", "--compression")
    assert packed["predicted"]["performance_option"] == "compression"  # type: ignore[index]


def test_a_contradictory_option_names_its_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--compression", "--performance-option", "smb"])
    assert exit_.value.code == 2
    assert "--compression" in capsys.readouterr().err


POLICY_KEYS = {
    "policy",
    "throttle_pct_per_pass",
    "downtime_limit_ms_per_pass",
    "guest_slowdown_pct",
    "aborted",
}


def test_simulate_policy_json_carries_the_policy_fields() -> None:
    out = io.StringIO()
    flags = ["--memory", "16MiB", "--workload", "uniform", "--working-set-pages",
             "4096", "--write-rate", "100000", "--bandwidth", "100Mbit/s",
             "--downtime-limit", "100ms", "--policy", "escalate", "--json"]  # fmt: skip
    assert main(["simulate", *flags], out=out) == 1  # aborted: the VM stayed put
    data = json.loads(out.getvalue())
    assert POLICY_KEYS <= set(data) and POLICY_KEYS <= set(data["predicted"])
    assert data["policy"] == data["predicted"]["policy"] == "escalate"
    assert data["aborted"] is True and data["failure_code"] == "NOT_CONVERGING"
    assert data["location"] == "source"
    assert data["downtime_limit_ms_per_pass"][:3] == [150, 200, 300]
    assert data["predicted"]["aborted"] is True
