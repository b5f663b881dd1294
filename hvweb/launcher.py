"""``python -m hvweb.launcher``: the whole console on one machine, in one command.

It applies migrations, seeds the demo inventory, starts the embedded Redis (unless
``REDIS_URL`` is set), one Celery worker with its beat (the reaper), a worker for
webhook deliveries (their own queue) and daphne, waits until ``/healthz`` answers
200 and prints where to go. Every child's output is prefixed with its name.

The launcher supervises its children: one that dies is started again after a
pause that doubles with each quick failure (1, 2, 4, 8 s), while the others keep
running; each restart is logged. It gives up, stops the rest and exits 1 only
when a child fails :data:`MAX_QUICK_FAILURES` times in a row, each within
:data:`STABLE_AFTER_S` of its start. Ctrl-C or SIGTERM stops every child it
started, and exits 0.

Supervision is our own rather than a library's: honcho stops every process when
one exits (Foreman's rule, ``honcho/manager.py``), while supervisord and circus
are daemons driven by a configuration file and a control socket (circus also
brings ZeroMQ and tornado). The console needs none of that, but it does need its
order: the embedded Redis answering before migrations and the worker start, and
every child bound to the launcher's life (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from pathlib import Path

STOP_GRACE_S = 10.0
HEALTH_TIMEOUT_S = 90.0
#: The pause before the first restart of a child that died; it doubles with
#: each quick failure in a row, up to RESTART_DELAY_MAX_S.
RESTART_DELAY_S = float(os.environ.get("HVWEB_RESTART_DELAY_S") or 1.0)
RESTART_DELAY_MAX_S = 30.0
#: A child that ran this long before dying had started well: its death is not
#: a quick failure, and the count of quick failures starts again.
STABLE_AFTER_S = 30.0
#: This many quick failures in a row and the launcher gives up.
MAX_QUICK_FAILURES = 5
_print_lock = threading.Lock()


def say(name: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{name:>8} | {line.rstrip()}\n")
        sys.stdout.flush()


class Stop(Exception):
    """Raised from the signal handler so that any wait ends at once."""


class GaveUp(Exception):
    """A child kept failing as soon as it started."""


class StopSignals:
    """SIGINT and SIGTERM end the launcher, but never in the middle of a spawn.

    The handler raises :class:`Stop` at once, except inside :meth:`deferred`
    (starting a child), where it only notes the signal: the exception then comes
    once the child is recorded, so that it is stopped with the others.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._depth = 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name
        if not self._depth:
            raise Stop(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.received:
            raise Stop(self.received)


try:  # loaded here, not in the child: nothing may take locks between fork and exec
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _libc = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the launcher itself is killed (Linux only)."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"code {code}"


class Child:
    """One supervised child: how to start it, its process and its restart history."""

    def __init__(
        self, name: str, spawn: Callable[[], subprocess.Popen[bytes]], pump: bool
    ) -> None:
        self.name = name
        self.spawn = spawn
        self.pump = pump
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.quick_failures = 0
        self.restart_at: float | None = None
        self.restarts = 0
        self.readers: list[threading.Thread] = []

    def start(self) -> None:
        self.process = self.spawn()
        self.started_at = time.monotonic()
        self.restart_at = None
        if self.pump and self.process.stdout is not None:
            reader = threading.Thread(target=self._pump, args=(self.process,))
            reader.daemon = True
            reader.start()
            self.readers.append(reader)

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            say(self.name, raw.decode("utf-8", "replace"))


class Supervisor:
    """Starts children in their own process groups, restarts the ones that die,
    and stops them all in reverse order."""

    def __init__(self, signals: StopSignals | None = None) -> None:
        self.children: list[Child] = []
        self.signals = signals or StopSignals()

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

        return self.add(name, spawn, pump=True)

    def add(
        self, name: str, spawn: Callable[[], subprocess.Popen[bytes]], pump: bool
    ) -> Child:
        """Start a child with ``spawn`` (called again for every restart)."""
        child = Child(name, spawn, pump)
        with self.signals.deferred():
            self.children.append(child)
            child.start()
        return child

    def tick(self) -> None:
        """Notice children that died and restart those whose pause is over.

        Raises :class:`GaveUp` when a child failed quickly too many times in a row.
        """
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if child.restart_at is None:
                if process is None or process.poll() is None:
                    continue
                self._bury(child)
                self._schedule_restart(
                    child, f"exited with {_describe(process.returncode)}"
                )
            elif now >= child.restart_at:
                child.restarts += 1
                say("hvweb", f"restarting {child.name} (restart {child.restarts})")
                try:
                    with self.signals.deferred():
                        child.start()
                except Stop:
                    raise
                except Exception as exc:  # a spawn that fails is a quick failure
                    child.process = None
                    child.started_at = time.monotonic()
                    self._schedule_restart(child, f"did not start: {exc}")

    def _schedule_restart(self, child: Child, what: str) -> None:
        ran = time.monotonic() - child.started_at
        if ran < STABLE_AFTER_S:
            child.quick_failures += 1
        else:
            child.quick_failures = 1
        if child.quick_failures >= MAX_QUICK_FAILURES:
            raise GaveUp(
                f"{child.name} {what}; it failed {child.quick_failures} times in a "
                f"row within {STABLE_AFTER_S:.0f} s of starting: giving up"
            )
        delay = min(
            RESTART_DELAY_S * 2 ** (child.quick_failures - 1), RESTART_DELAY_MAX_S
        )
        child.restart_at = time.monotonic() + delay
        say(
            "hvweb",
            f"{child.name} {what} after {ran:.1f} s; the others keep running; "
            f"restarting it in {delay:g} s",
        )

    @staticmethod
    def _bury(child: Child) -> None:
        """Kill what is left of a dead child's process group (a Celery worker's
        pool processes), so that one generation of it runs at a time."""
        assert child.process is not None
        _signal_group(child.process, signal.SIGKILL)
        for reader in child.readers:
            reader.join(timeout=2)
        child.readers = [r for r in child.readers if r.is_alive()]

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self._stop(child)
        for child in self.children:
            for reader in child.readers:
                reader.join(timeout=2)

    @staticmethod
    def _stop(child: Child) -> None:
        process = child.process
        if process is None:
            return
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


def database_problem(connection) -> str | None:
    """A sentence saying why the console cannot use the database of
    ``connection`` (a Django connection, not yet opened), or None.

    Asked once before anything starts: through the pool, a PostgreSQL database
    that does not exist was ten lines of warnings and "couldn't get a
    connection after 20.00 sec". One direct connection, with the parameters
    Django itself would use (``OPTIONS`` such as ``sslmode`` included),
    answers at once; when the server refuses the database, its maintenance
    database ``postgres`` tells whether the name exists at all, so the advice
    can be to create it.
    """
    if connection.vendor != "postgresql":
        return None  # SQLite: a file in the data folder, made by migrate
    import psycopg
    from django.core.exceptions import ImproperlyConfigured

    try:
        params = connection.get_connection_params()
    except ImproperlyConfigured as exc:
        return f"DATABASE_URL: {exc}"
    params.setdefault("connect_timeout", 5)
    name = params["dbname"]
    host, port = params.get("host", "localhost"), params.get("port", 5432)
    where = f"{host}:{port}"
    try:
        psycopg.connect(**params).close()
        return None
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0].rsplit("failed: ", 1)[-1]
    try:
        with psycopg.connect(**{**params, "dbname": "postgres"}) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
    except psycopg.Error:
        exists = True  # the server itself is out of reach: its reason says why
    if not exists:
        user = f" -U {params['user']}" if params.get("user") else ""
        return (
            f"DATABASE_URL: PostgreSQL on {where} has no database {name!r}: "
            f"create it (createdb -h {host} -p {port}{user} {name}) "
            f"or name one that exists"
        )
    return f"DATABASE_URL: cannot connect to database {name!r} on {where}: {reason}"


def healthz_status(url: str) -> tuple[int, str]:
    """``/healthz``'s status code and body (0 and the reason when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)


def wait_healthy(url: str, supervisor: Supervisor, timeout: float) -> None:
    """Supervise the children until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        supervisor.tick()
        status, last = healthz_status(url)
        if status == 200:
            return
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
    # Before Django: everything the console and its children write into the data
    # folder (SQLite, the Redis socket, the beat schedule) is the user's alone.
    os.umask(0o077)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command, get_commands
    from django.db import connection

    from hvweb import embedded_redis
    from hvweb.core.collect import collect_if_changed

    args = parse_args(argv, settings.PORT)
    problem = port_problem(args.host, args.port) or database_problem(connection)
    if problem:
        say("hvweb", problem)
        return 1

    signals = StopSignals()
    signals.install()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    supervisor = Supervisor(signals)
    code = 0
    try:
        if settings.REDIS_EMBEDDED:
            say("hvweb", f"starting the embedded Redis on {settings.REDIS_SOCKET}")
            supervisor.add(
                "redis",
                lambda: embedded_redis.start(
                    settings.REDIS_SOCKET,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                ),
                pump=False,
            )
        say(
            "hvweb",
            f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}",
        )
        call_command("migrate", interactive=False, verbosity=0)
        if collect_if_changed():
            say("hvweb", f"collected the static files into {settings.STATIC_ROOT}")
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
        # Webhook deliveries wait on other people's servers: their own worker and
        # queue, threads (they only wait on sockets), never a move's slot.
        supervisor.start(
            "webhooks",
            [
                python, "-m", "celery", "-A", "hvweb", "worker",
                "--queues", settings.HVWEB_WEBHOOK_QUEUE, "--pool", "threads",
                "--concurrency", "8", "--loglevel", "INFO",
                "--without-mingle", "--without-gossip",
                "--hostname", f"hvweb-webhooks-{args.port}@%h",
            ],
            # No answer to pings: /healthz's worker check means a move worker.
            {**env, "HVWEB_WORKER_REMOTE_CONTROL": "0"},
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
            supervisor.tick()
            time.sleep(0.2)
    except Stop as stop:
        say("hvweb", f"{stop}: stopping")
    except GaveUp as exc:
        say("hvweb", f"{exc}; stopping the others")
        code = 1
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
