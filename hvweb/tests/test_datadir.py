"""The data folder is its owner's alone: 0700, its files 0600, also when an older
version left them open. (After a real start: ``test_faults``.)"""

from __future__ import annotations

import os
import subprocess
import sys

from hvweb.tests.test_launcher import ROOT


def test_a_data_folder_left_open_by_an_older_version_is_tightened_at_start(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    for name in ("hvweb.sqlite3", "secret_key", "demo-logins.json"):
        (data / name).write_text("")
        (data / name).chmod(0o644)
    (data / "static").mkdir(mode=0o755)
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "DJANGO_SETTINGS_MODULE": "hvweb.settings",
            "HVWEB_DATA_DIR": str(data),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert oct(data.stat().st_mode & 0o777) == "0o700"
    assert {e.name: oct(e.stat().st_mode & 0o777) for e in data.iterdir()} == {
        "hvweb.sqlite3": "0o600",
        "secret_key": "0o600",
        "demo-logins.json": "0o600",
        "static": "0o700",
    }
