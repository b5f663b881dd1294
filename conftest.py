"""Fixtures shared by the whole suite: a real Redis and a real Celery worker.

Redis is ``REDIS_URL`` when set (CI points it at its own database number), else
the embedded server started on the test data folder's socket. The worker runs in
its own process against the test database, so tests that use it need committed
data: mark them ``django_db(transaction=True)``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent
#: How old a running move's heartbeat gets before the test worker's reaper acts.
REAPER_TIMEOUT_S = 6
#: Whether the suite runs on PostgreSQL (CI's second pass).
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from django.conf import settings

    from hvweb import embedded_redis

    if not settings.REDIS_EMBEDDED:
        yield settings.REDIS_URL
        return
    process = embedded_redis.start(settings.REDIS_SOCKET, stdout=subprocess.DEVNULL)
    try:
        yield settings.REDIS_URL
    finally:
        embedded_redis.stop(process, settings.REDIS_SOCKET)


def database_url_for_children() -> str:
    """A DATABASE_URL naming the test database, for processes the suite starts."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return parts._replace(path=f"/{name}").geturl()


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.setdefault("DJANGO_SETTINGS_MODULE", "hvweb.settings_test")
    return env


class Worker:
    """A ``celery worker`` process started by the suite, on the test database."""

    def __init__(
        self,
        name: str,
        database_url: str,
        *,
        queue: str | None = None,
        beat: bool = False,
        concurrency: int = 2,
        pool: str | None = None,
        **env: str,
    ) -> None:
        from hvweb.celery import app

        self.name = f"{name}@{socket.gethostname()}"
        self.log_path = ROOT / "var" / "test" / f"{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "hvweb", "worker",
            "--loglevel", "INFO", "--without-mingle", "--without-gossip",
            "--concurrency", str(concurrency), "--hostname", self.name,
        ]  # fmt: skip
        if queue:
            command += ["--queues", queue]
        if pool:
            command += ["--pool", pool]
        if beat:
            schedule = ROOT / "var" / "test" / f"{name}-beat-schedule"
            command += ["--beat", "--schedule", str(schedule)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env(DATABASE_URL=database_url, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[self.name], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the worker did not start: see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool: a machine that died mid-move."""
        os.killpg(self.process.pid, 9)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def start_worker(django_db_setup, django_db_blocker, redis_url):
    """Start extra workers (stopped at the end of the session)."""
    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    workers: list[Worker] = []

    def start(name: str, **kwargs) -> Worker:
        worker = Worker(f"{name}-{os.getpid()}", database_url, **kwargs)
        workers.append(worker)
        return worker

    start.workers = workers  # every worker started so far, for tests that pause them
    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="session")
def celery_worker(start_worker) -> str:
    """The suite's real worker; its beat runs the reaper every second, so a move
    whose worker was killed fails within REAPER_TIMEOUT_S. Yields its name."""
    worker = start_worker(
        "hvweb-test",
        beat=True,
        HVWEB_REAPER_INTERVAL_S="1",
        HVWEB_HEARTBEAT_TIMEOUT_S=str(REAPER_TIMEOUT_S),
    )
    return worker.name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def daphne(database_url: str, log_name: str, **env: str) -> Iterator[str]:
    """daphne serving the real ASGI application (HTTP and websockets) on
    ``database_url``, in its own process; yields its base URL (no trailing /)."""
    port = _free_port()
    log_path = ROOT / "var" / "test" / log_name
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "hvweb.asgi:application"],
            cwd=ROOT, env=child_env(DATABASE_URL=database_url, **env),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"daphne did not start: see {log_path}"
                        ) from None
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(process.pid, 15)
            process.wait(15)


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, redis_url) -> Iterator[str]:
    """The suite's daphne on the test database."""
    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    with daphne(database_url, "daphne.log") as url:
        yield url


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`).

    Module-scoped: Playwright's sync API keeps an event loop running in this
    thread while it is open, which other modules' ``asyncio.run`` must not meet.
    That loop would also make Django refuse the tests' own synchronous ORM calls,
    so async safety is relaxed for the browser modules only (never for children:
    see ``child_env``).
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium"
        )
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@contextlib.contextmanager
def routed_to(queue: str) -> Iterator[None]:
    """Send the Celery tasks started inside to ``queue`` instead of the default."""
    from hvweb.celery import app

    # Under the Django setting's own name: Celery 5.6 reads the namespaced key
    # (``CELERY_TASK_DEFAULT_QUEUE``) before ``task_default_queue``, whatever
    # was set last, so setting the short name alone routed nothing there.
    default = app.conf.task_default_queue
    app.conf.CELERY_TASK_DEFAULT_QUEUE = queue
    try:
        yield
    finally:
        app.conf.CELERY_TASK_DEFAULT_QUEUE = default


@pytest.fixture
def unworked_queue(redis_url) -> Iterator[None]:
    """Moves started in the test wait in a queue no worker reads, as recorded."""
    import redis

    queue = f"unworked-{uuid.uuid4().hex[:8]}"
    with routed_to(queue):
        yield
    redis.Redis.from_url(redis_url).delete(queue)


def _deadlocked(exc: BaseException | None) -> bool:
    """Whether PostgreSQL chose ``exc`` (or what caused it) as a deadlock's victim."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == "40P01":  # deadlock_detected
            return True
        exc = exc.__cause__
    return False


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_a_deadlock() -> Iterator[None]:
    """A transactional test's flush is tried again when PostgreSQL ends it as a
    deadlock's victim.

    The worker is another process: after a test's move has ended it may still
    write (the move's last events, the next queued move's dispatch) while the
    flush's TRUNCATE takes every table. When each holds a table the other
    wants, PostgreSQL ends one of them ("deadlock detected"); when it ended the
    flush, the rows stayed and every later test failed on them ("Team with this
    Name already exists"). PostgreSQL's advice for a deadlock's victim is to run
    the transaction again (the manual's "Explicit Locking: Deadlocks"); the
    flush is one transaction and the worker's write is over by then.
    """
    from django.core.management.base import CommandError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self) -> None:
        for attempt in range(5):
            try:
                return original(self)
            except CommandError as exc:
                if attempt == 4 or not _deadlocked(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = _fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets a channel layer of its own.

    Tests run their websockets in an event loop of their own (``asyncio.run``).
    channels-redis keeps its receive lock on the layer: a test that timed out
    while a consumer was receiving left it bound to that test's closed loop,
    and the next tests failed with "Lock ... is bound to a different event
    loop". Dropping the layers after each test starts the next afresh.
    """
    yield
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_move_outlives_its_test(request) -> Iterator[None]:
    """End every maintenance run and move a test leaves behind before the
    database is flushed.

    A worker still writing a move's rows while the flush truncates the tables
    deadlocks on PostgreSQL. A run still active is advanced by the worker's beat
    every tick (and starts moves): on PostgreSQL the flush after a maintenance
    test that timed out deadlocked with it ("deadlock detected": the flush's
    TRUNCATE waiting for the worker's step, the step for a table the flush had
    locked), the flush failed and every later test found the old rows. Runs are
    ended first (a step in progress holds the run's row, so this waits for it),
    then the moves: those no worker has taken yet are ended at once (a late
    delivery then finds them over); running ones are cancelled and waited for.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (
        marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # so this ends before the flush
    yield
    from hvweb.maintenance.models import MaintenanceRun
    from hvweb.moves.choices import MigrationState
    from hvweb.moves.models import Migration

    MaintenanceRun.objects.filter(state__in=MaintenanceRun.ACTIVE).update(
        state=MaintenanceRun.CANCELLED
    )
    Migration.objects.filter(
        state__in=MigrationState.active(), started_at__isnull=True
    ).update(state=MigrationState.CANCELLED)
    Migration.objects.filter(state=MigrationState.RUNNING).update(cancel_requested=True)
    deadline = time.monotonic() + 60
    while Migration.objects.filter(state=MigrationState.RUNNING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("a move kept running after its test ended")
        time.sleep(0.05)
