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


def test_every_module_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import pkgutil, importlib, migrator\n"
        "for m in pkgutil.walk_packages(migrator.__path__, 'migrator.'):\n"
        "    if '.tests' not in m.name: importlib.import_module(m.name)\n"
        "new = {n.split('.')[0] for n in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'migrator'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
        timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "migrator"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
