"""``python -m hvweb.launcher``: the whole console on one machine, in one command.

It applies migrations, seeds the demo inventory, starts the embedded Redis (unless
``REDIS_URL`` is set), one Celery worker with its beat (the reaper) and daphne,
waits until ``/healthz`` answers 200 and prints where to go. Every child's output
is prefixed with its name. Ctrl-C or SIGTERM stops every child it started; a child
that dies stops the rest and exits non-zero.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 10.0
HEALTH_TIMEOUT_S = 90.0
_print_lock = threading.Lock()


def say(name: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{name:>8} | {line.rstrip()}\n")
        sys.stdout.flush()


class Stop(Exception):
    """Raised from the signal handler so that any wait ends at once."""


try:  # loaded here, not in the child: nothing may take locks between fork and exec
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _libc = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the launcher itself is killed (Linux only)."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    """Starts children in their own process groups and stops them in reverse."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(name, process)
        reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        reader.start()
        child.readers.append(reader)
        self.children.append(child)
        return child

    @staticmethod
    def _pump(child: Child) -> None:
        assert child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            say(child.name, raw.decode("utf-8", "replace"))

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.children.append(Child(name, process))

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self._stop(child)
        for child in self.children:
            for reader in child.readers:
                reader.join(timeout=2)

    @staticmethod
    def _stop(child: Child) -> None:
        process = child.process
        if process.poll() is None:
            say("hvweb", f"stopping {child.name}")
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                say(
                    "hvweb",
                    f"{child.name} still up after {STOP_GRACE_S:.0f} s; killing it",
                )
        # The whole group: Celery's pool processes are the worker's children.
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def port_problem(host: str, port: int) -> str | None:
    """A sentence saying why daphne could not listen on ``host:port``, or None."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use: stop what listens there "
                    f"or choose another port, e.g. PORT={port + 1}"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def wait_healthy(url: str, supervisor: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        dead = supervisor.first_dead()
        if dead is not None:
            raise RuntimeError(
                f"{dead.name} exited with code {dead.process.returncode} during start"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = exc.read().decode("utf-8", "replace")
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise RuntimeError(f"the console did not become healthy in {timeout:.0f} s: {last}")


def demo_logins(data_dir: Path) -> dict[str, str]:
    try:
        logins = json.loads((data_dir / "demo-logins.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in logins.items()}


def parse_args(argv: list[str] | None, default_port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hvweb", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HVWEB_BIND", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("HVWEB_WORKER_CONCURRENCY") or 4),
        help="Celery worker processes (each runs one migration at a time)",
    )
    parser.add_argument(
        "--no-seed", action="store_true", help="do not seed the demo inventory"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a port number (1-65535)")
    if args.concurrency < 1:
        parser.error("--concurrency: at least 1 worker process is needed")
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command, get_commands

    from hvweb import embedded_redis

    args = parse_args(argv, settings.PORT)
    problem = port_problem(args.host, args.port)
    if problem:
        say("hvweb", problem)
        return 1

    def on_signal(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    supervisor = Supervisor()
    code = 0
    try:
        if settings.REDIS_EMBEDDED:
            say("hvweb", f"starting the embedded Redis on {settings.REDIS_SOCKET}")
            redis = embedded_redis.start(
                settings.REDIS_SOCKET,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            supervisor.adopt("redis", redis)
        say(
            "hvweb",
            f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
        )
        call_command("migrate", interactive=False, verbosity=0)
        if not args.no_seed and "seed_demo" in get_commands():
            call_command("seed_demo")
        python = sys.executable
        supervisor.start(
            "worker",
            [
                python, "-m", "celery", "-A", "hvweb", "worker", "--beat",
                "--loglevel", "INFO", "--without-mingle", "--without-gossip",
                "--concurrency", str(args.concurrency),
                "--hostname", f"hvweb-{args.port}@%h",
                "--schedule", str(Path(settings.DATA_DIR) / "celerybeat-schedule"),
            ],
            env,
        )  # fmt: skip
        supervisor.start(
            "web",
            [python, "-m", "daphne", "-b", args.host, "-p", str(args.port),
             "hvweb.asgi:application"],
            env,
        )  # fmt: skip
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        base = f"http://{shown_host}:{args.port}"
        wait_healthy(f"{base}/healthz", supervisor, HEALTH_TIMEOUT_S)
        say("hvweb", f"hvweb is running at {base}/  (Ctrl-C stops it)")
        for user, password in demo_logins(Path(settings.DATA_DIR)).items():
            say("hvweb", f"  log in as {user} / {password}")
        while True:
            dead = supervisor.first_dead()
            if dead is not None:
                say(
                    "hvweb",
                    f"{dead.name} exited with code {dead.process.returncode}; "
                    "stopping the others",
                )
                code = 1
                break
            time.sleep(0.2)
    except Stop as stop:
        say("hvweb", f"{stop}: stopping")
    except Exception as exc:  # the launcher reports any start failure, then cleans up
        say("hvweb", f"error: {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        if settings.REDIS_EMBEDDED:
            Path(settings.REDIS_SOCKET).unlink(missing_ok=True)
    say("hvweb", "stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
