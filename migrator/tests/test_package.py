from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import migrator

ROOT = Path(__file__).resolve().parents[2]


def test_importing_migrator_loads_no_django() -> None:
    code = "import sys, migrator; from migrator import *; " + (
        "print('django' in sys.modules, 'numpy' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_all_names_exist() -> None:
    for name in migrator.__all__:
        assert hasattr(migrator, name), name
