"""The one start command: up on a free port, healthy, and gone without a trace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import ON_POSTGRES
from hvweb.launcher import database_problem

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def command_line(pid: int) -> bytes:
    """The process's command line, or b"" when it is already gone.

    A worker's short-lived helpers come and go between listing /proc and
    reading it, so a vanished pid is an empty command, not an error.
    """
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def launcher_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        HVWEB_DATA_DIR=str(tmp_path),
        # Its own queue: on a shared Redis, the suite's worker must not take its tasks.
        HVWEB_QUEUE=f"launcher-test-{uuid.uuid4().hex[:8]}",
        HVWEB_WORKER_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def start(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hvweb.launcher", "--port", str(port)],
        cwd=ROOT, env=launcher_env(tmp_path, **env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def read_until(process: subprocess.Popen[str], needle: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return "".join(seen)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"never printed {needle!r}; output:\n{''.join(seen)}")


def test_start_command_serves_healthz_and_sigterm_leaves_no_child(tmp_path):
    port = free_port()
    process = start(tmp_path, port)
    try:
        output = read_until(process, "hvweb is running at", timeout=120)
        assert f"http://127.0.0.1:{port}/" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            assert json.load(response)["failing"] == []
        children = descendants(process.pid)
        commands = b" ".join(command_line(pid) for pid in children)
        assert b"daphne" in commands and b"celery" in commands
        if not os.environ.get("REDIS_URL"):
            assert b"redis-server" in commands
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        time.sleep(0.5)
        assert [pid for pid in children if alive(pid)] == []
        assert not (tmp_path / "redis.sock").exists() or os.environ.get("REDIS_URL")
    finally:
        if process.poll() is None:
            process.kill()


def test_a_port_in_use_is_a_clear_error_not_a_hang(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start(tmp_path, port)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in out


@pytest.mark.skipif(not ON_POSTGRES, reason="needs the suite's PostgreSQL server")
def test_a_missing_postgresql_database_is_a_clear_error_not_a_wait(tmp_path):
    """Through the pool it was 20 s of warnings and "couldn't get a connection"."""
    missing = f"hvweb_missing_{uuid.uuid4().hex[:8]}"
    url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{missing}")
    began = time.monotonic()
    process = start(tmp_path, free_port(), DATABASE_URL=urlunsplit(url))
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 1, out
    assert f"has no database {missing!r}: create it (createdb -h " in out
    assert f" {missing}) or name one that exists" in out
    assert "couldn't get a connection" not in out
    assert time.monotonic() - began < 15, out


def test_a_database_server_out_of_reach_is_named():
    from django.db import connection
    from django.db.backends.postgresql.base import DatabaseWrapper

    port = free_port()  # nothing listens there
    unreachable = DatabaseWrapper({
        **connection.settings_dict, "ENGINE": "django.db.backends.postgresql",
        "NAME": "hvweb", "HOST": "127.0.0.1", "PORT": port, "USER": "postgres",
        "PASSWORD": "", "OPTIONS": {},
    })  # fmt: skip
    problem = database_problem(unreachable)
    assert problem.startswith(
        f"DATABASE_URL: cannot connect to database 'hvweb' on 127.0.0.1:{port}: "
    ), problem
    assert "refused" in problem
    # The suite's own database (SQLite, or a PostgreSQL one that exists): fine.
    assert database_problem(connection) is None


def test_a_child_that_keeps_failing_at_start_makes_the_launcher_give_up(tmp_path):
    """A dead child is restarted; one that fails at once, again and again, ends
    the launcher (exit 1) with every other child stopped."""
    port = free_port()
    process = start(tmp_path, port, HVWEB_RESTART_DELAY_S="0.2")
    try:
        read_until(process, "hvweb is running at", timeout=120)
        children = descendants(process.pid)
        daphne = next(pid for pid in children if b"daphne" in command_line(pid))
        with socket.socket() as squatter:
            os.kill(daphne, signal.SIGKILL)
            # Taken before the restarted daphne binds it (it needs ~2 s to boot):
            # every restart now fails with "Address already in use".
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + 5
            while True:  # until the killed daphne's socket is closed
                try:
                    squatter.bind(("127.0.0.1", port))
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the port stayed taken"
                    time.sleep(0.01)
            squatter.listen()
            out = read_until(process, "hvweb | stopped", timeout=120)
            assert process.wait(30) == 1
        assert "web exited with code -9 (SIGKILL)" in out
        assert "restarting web (restart 4)" in out
        assert "restarting it in 0.4 s" in out  # the pause doubles
        assert (
            "web exited with code 1 after" in out
            and "it failed 5 times in a row within 30 s of starting: giving up; "
            "stopping the others"
            in out
        )
        time.sleep(0.5)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()
