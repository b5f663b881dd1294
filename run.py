#!/usr/bin/env python3
"""hvweb's one entry point on a fresh machine: ``python3 run.py [start|test] [args]``.

``start`` (the default) creates ``.venv`` when missing, installs
``requirements.txt`` into it when that file changed, then runs the launcher
(``python -m hvweb.launcher``): migrations, demo inventory, the embedded Redis,
a Celery worker and daphne on http://127.0.0.1:$PORT/.

``test`` also installs ``requirements-test.txt`` and, when running as root
without Chromium, Debian's ``chromium`` package for the browser tests; then runs
pytest with any further arguments. Standard library only: it runs before the
virtual environment exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def log(message: str) -> None:
    print(f"run.py | {message}", flush=True)


def ensure_venv() -> None:
    if not PYTHON.exists():
        log(f"creating the virtual environment in {VENV.name}/")
        venv.EnvBuilder(with_pip=True).create(VENV)


def ensure_requirements(name: str) -> None:
    """pip-install ``name`` into the venv unless this exact file is installed."""
    requirements = ROOT / name
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("requirements*.txt")):
        digest.update(path.name.encode() + path.read_bytes())
    stamp = VENV / f".installed-{name}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    log(f"installing {name} (first run or changed requirements)")
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-r", str(requirements)],
        check=True,
    )  # fmt: skip
    stamp.write_text(digest.hexdigest())


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


def ensure_chromium() -> None:
    """Install Debian's Chromium for the browser tests when we may; else say why not."""
    if chromium_path():
        return
    if os.environ.get("HVWEB_SKIP_BROWSER"):
        log("browser tests skipped: HVWEB_SKIP_BROWSER is set")
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log(
            "browser tests will be skipped: Chromium is missing and installing it "
            "needs root and apt-get (apt-get install chromium)"
        )
        return
    log("installing Debian's chromium for the browser tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("start", [])
    if command not in {"start", "test"}:
        # Anything else goes to the launcher, e.g. `python3 run.py --port 8001`.
        command, args = "start", argv
    os.chdir(ROOT)
    ensure_venv()
    ensure_requirements("requirements.txt")
    if command == "start":
        os.execv(PYTHON, [str(PYTHON), "-m", "hvweb.launcher", *args])
    ensure_requirements("requirements-test.txt")
    ensure_chromium()
    os.execv(PYTHON, [str(PYTHON), "-m", "pytest", *args])
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
