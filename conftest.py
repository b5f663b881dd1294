"""Fixtures shared by the whole suite: a real Redis and a real Celery worker.

Redis is ``REDIS_URL`` when set (CI points it at its own database number), else
the embedded server started on the test data folder's socket. The worker runs in
its own process against the test database, so tests that use it need committed
data: mark them ``django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent


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


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, redis_url) -> Iterator[str]:
    """A real ``celery worker`` process on the test database; yields its name."""
    from hvweb.celery import app

    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    name = f"hvweb-test-{os.getpid()}@{socket.gethostname()}"
    log = open(ROOT / "var" / "test" / "celery-worker.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hvweb", "worker", "--loglevel",
         "INFO", "--without-mingle", "--without-gossip", "--concurrency", "2",
         "--hostname", name],
        cwd=ROOT,
        env=child_env(DATABASE_URL=database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the Celery worker did not start: see var/test/celery-worker.log"
                )
        yield name
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, redis_url) -> Iterator[str]:
    """daphne serving the real ASGI application (HTTP and websockets) on the test
    database, in its own process; yields its base URL without a trailing slash."""
    with django_db_blocker.unblock():
        database_url = database_url_for_children()
    port = _free_port()
    log = open(ROOT / "var" / "test" / "daphne.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "hvweb.asgi:application"],
        cwd=ROOT,
        env=child_env(DATABASE_URL=database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
                        "daphne did not start: see var/test/daphne.log"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(15)
        log.close()


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
