"""The console heals itself: kill a part of a running console, it comes back.

Each test drives the one-command console (``python -m hvweb.launcher``) as an
operator would, on a data folder of its own: it kills a part with SIGKILL (the
Celery worker, the Redis, daphne) while a move runs, and asserts that
``/healthz`` answers 200 again within the bound without anyone restarting
anything, and where the VM is at the end, as the API and the page show it.

The console runs on SQLite and the embedded Redis (the one-command layout),
except in the Redis outage test, which points ``REDIS_URL`` at a redis-server of
its own on a free port. Either way the tests bring their own stack, so they run
the same in both CI passes.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvweb.tests.test_launcher import ROOT, alive, command_line, free_port

pytestmark = pytest.mark.slow

#: How long a restarted part may take to make /healthz answer 200 again.
HEAL_BOUND_S = 30.0
#: The issue's bound once Redis is back after an outage.
REDIS_BACK_BOUND_S = 10.0
#: The test console's reaper: a move whose heartbeat is this old is failed.
REAPER_TIMEOUT_S = 6


class Console:
    """A launcher started by a test, its output in a file, and an HTTP client."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        data_dir.mkdir(exist_ok=True)
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "launcher.out"
        environment = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
        }
        environment.update(
            HVWEB_DATA_DIR=str(data_dir),
            HVWEB_QUEUE=f"faults-{uuid.uuid4().hex[:8]}",
            HVWEB_WORKER_CONCURRENCY="2",
            HVWEB_REAPER_INTERVAL_S="1",
            HVWEB_HEARTBEAT_TIMEOUT_S=str(REAPER_TIMEOUT_S),
            PYTHONUNBUFFERED="1",
        )
        environment.update(env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hvweb.launcher", "--port", str(self.port)],
            cwd=ROOT, env=environment, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_for_output("hvweb is running at", timeout=120)
        self.tokens: dict[str, str] = {}

    # -- the launcher's output and children ------------------------------------

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never printed {needle!r}:\n{self.output()}")
            time.sleep(0.1)

    def pid(self, part: str) -> int:
        """The pid of the launcher's child ``part`` (worker, webhooks, web or
        redis). The moves' worker is the one that runs beat."""
        marker = {
            "worker": b"--beat",
            "webhooks": b"hvweb-webhooks-",
            "web": b"daphne",
            "redis": b"redis-server",
        }
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            pid = int(entry.name)
            if (
                parent == self.process.pid
                and alive(pid)
                and marker[part] in command_line(pid)
            ):
                return pid
        raise AssertionError(f"no {part} under the launcher:\n{self.output()}")

    def kill(self, part: str) -> int:
        pid = self.pid(part)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    # -- HTTP ------------------------------------------------------------------

    def healthz(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def wait_healthy(self, bound: float) -> float:
        """Seconds until /healthz answers 200; fails past ``bound``."""
        started = time.monotonic()
        while self.healthz() != 200:
            waited = time.monotonic() - started
            assert waited < bound, (
                f"/healthz not 200 after {waited:.1f} s:\n" + (self.output()[-4000:])
            )
            time.sleep(0.2)
        return time.monotonic() - started

    def password(self, user: str) -> str:
        return json.loads((self.data_dir / "demo-logins.json").read_text())[user]

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        user = "demo-operator"
        if user not in self.tokens:
            _, reply = self._request(
                "POST",
                "/api/token/",
                {"username": user, "password": self.password(user)},
                {},
            )
            self.tokens[user] = reply["token"]
        return self._request(
            method, path, body, {"Authorization": f"Token {self.tokens[user]}"}
        )

    def _request(self, method, path, body, headers) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def session_cookie(self, user: str = "demo-operator") -> str:
        """Log in through the login page; the session cookie's value."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{self.base}/login/", timeout=30).read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = urllib.parse.urlencode(
            {
                "username": user,
                "password": self.password(user),
                "csrfmiddlewaretoken": csrf,
            }
        ).encode()
        request = urllib.request.Request(
            f"{self.base}/login/", data=form, headers={"Referer": f"{self.base}/login/"}
        )
        opener.open(request, timeout=30).read()
        return next(c.value for c in jar if c.name == "sessionid")

    def page(self, path: str, cookie: str) -> str:
        request = urllib.request.Request(
            self.base + path, headers={"Cookie": f"sessionid={cookie}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    # -- moves -----------------------------------------------------------------

    def ids(self, vm: str, destination: str) -> tuple[int, int]:
        _, vms = self.api("GET", f"/api/vms/?name={vm}")
        _, hosts = self.api("GET", f"/api/hosts/?name={destination}")
        return vms["results"][0]["id"], hosts["results"][0]["id"]

    def start_move(self, vm: str, destination: str, speed: float) -> tuple[int, dict]:
        vm_id, host_id = self.ids(vm, destination)
        return self.api(
            "POST",
            "/api/migrations/",
            {"vm": vm_id, "destination": host_id, "speed": speed},
        )

    def move(self, pk: int) -> dict:
        status, move = self.api("GET", f"/api/migrations/{pk}/")
        assert status == 200, move
        return move

    def wait_move(self, pk: int, timeout: float, until=None) -> dict:
        """The move once ``until(move)`` holds (by default: once it ended)."""
        until = until or (lambda m: m["state"] not in {"queued", "running"})
        deadline = time.monotonic() + timeout
        while not until(move := self.move(pk)):
            assert time.monotonic() < deadline, f"move {pk} stuck: {move}"
            time.sleep(0.2)
        return move

    def vm_host(self, name: str) -> str:
        """The name of the host the VM runs on, as the API says."""
        _, vms = self.api("GET", f"/api/vms/?name={name}")
        _, host = self.api("GET", f"/api/hosts/{vms['results'][0]['host']}/")
        return host["name"]


def in_memory_transfer(move: dict) -> bool:
    return move["stage"] == "memory_transfer"


class Stream:
    """A move's page stream, followed as the page's script does: on a dropped
    connection, reconnect with ``?resume_from=<last seq seen>``."""

    def __init__(self, console: Console, pk: int) -> None:
        self.url = f"ws://127.0.0.1:{console.port}/ws/migrations/{pk}/"
        self.options = {
            "origin": console.base,
            "additional_headers": [("Cookie", f"sessionid={console.session_cookie()}")],
            "open_timeout": 30,
            "max_size": None,
        }
        self.seqs: list[int] = []

    @contextlib.contextmanager
    def open(self):
        """A connection past its snapshot (resuming after the last frame seen)."""
        from websockets.sync.client import connect

        resume = f"?resume_from={self.seqs[-1]}" if self.seqs else ""
        with connect(self.url + resume, **self.options) as ws:
            snapshot = json.loads(ws.recv(timeout=30))
            assert snapshot["type"] == "snapshot"
            if not self.seqs:
                self.seqs.extend(range(1, snapshot["last_seq"] + 1))
            yield ws

    def read(self, ws, frames: int) -> None:
        for _ in range(frames):
            self.seqs.append(json.loads(ws.recv(timeout=30))["seq"])

    def read_until_dropped(self, ws, timeout: float) -> None:
        """Read until the server drops the connection (fails after ``timeout``)."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + timeout
        with contextlib.suppress(ConnectionClosed, OSError):
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "the stream stayed open"
                self.seqs.append(json.loads(ws.recv(timeout=left))["seq"])

    def read_to_the_end(self, ws) -> dict:
        while True:
            frame = json.loads(ws.recv(timeout=60))
            self.seqs.append(frame["seq"])
            if frame["kind"] in {"completed", "failed", "cancelled"}:
                return frame

    def whole(self) -> bool:
        """Every frame once, in order: nothing lost, nothing twice."""
        return self.seqs == list(range(1, self.seqs[-1] + 1))


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[Console]:
    """One console on the embedded default, shared by the kill tests."""
    console = Console(tmp_path_factory.mktemp("console"))
    try:
        yield console
    finally:
        assert console.stop() == 0, console.output()[-4000:]


@pytest.fixture
def running_move(console):
    """Starts a move of about ten seconds and waits until it sends memory."""

    def start(vm: str, destination: str, speed: float = 1.0) -> int:
        status, move = console.start_move(vm, destination, speed)
        assert status == 201, move
        console.wait_move(move["id"], 30, until=in_memory_transfer)
        return move["id"]

    return start


def test_a_killed_worker_is_restarted_and_its_move_fails_with_the_vm_on_its_source(
    console, running_move
):
    pk = running_move("prod-db-1", "HV-PROD-2")
    web, redis = console.pid("web"), console.pid("redis")
    killed = console.kill("worker")
    healed = console.wait_healthy(HEAL_BOUND_S)
    print(f"worker killed: /healthz 200 again after {healed:.1f} s")
    assert console.pid("worker") != killed
    assert (console.pid("web"), console.pid("redis")) == (web, redis)
    assert re.search(
        r"worker exited with code -9 \(SIGKILL\) after [\d.]+ s; the others keep "
        r"running; restarting it in 1 s",
        console.output(),
    )
    # The move died with its worker: the reaper fails it, the VM never left.
    move = console.wait_move(pk, REAPER_TIMEOUT_S + 20)
    assert (move["state"], move["error_code"]) == ("failed", "WORKER_LOST")
    assert console.vm_host("prod-db-1") == "HV-PROD-1"
    # The new worker takes new moves.
    status, again = console.start_move("prod-db-1", "HV-PROD-2", speed=0)
    assert status == 201, again
    assert console.wait_move(again["id"], 60)["state"] == "succeeded"
    assert console.vm_host("prod-db-1") == "HV-PROD-2"


def test_a_killed_embedded_redis_is_restarted_and_the_running_move_carries_on(
    console, running_move
):
    pk = running_move("prod-web-1", "HV-PROD-3", speed=0.5)
    stream = Stream(console, pk)
    worker, web = console.pid("worker"), console.pid("web")
    with stream.open() as ws:
        stream.read(ws, 2)
        console.kill("redis")
        healed = console.wait_healthy(HEAL_BOUND_S)
        # daphne drops the sockets whose channel-layer reads broke; the page's
        # script reconnects and resumes, joining its groups on the new Redis.
        stream.read_until_dropped(ws, 30)
    print(f"embedded Redis killed: /healthz 200 again after {healed:.1f} s")
    assert (console.pid("worker"), console.pid("web")) == (worker, web)
    assert "redis exited with code -9 (SIGKILL)" in console.output()
    with stream.open() as ws:
        final = stream.read_to_the_end(ws)
    assert (final["kind"], final["state"]) == ("completed", "succeeded")
    assert stream.whole()
    assert console.move(pk)["state"] == "succeeded"
    assert console.vm_host("prod-web-1") == "HV-PROD-3"
    # The web process queues moves on the new Redis, and the worker takes them.
    status, again = console.start_move("prod-web-1", "HV-PROD-1", speed=0)
    assert status == 201, again
    assert console.wait_move(again["id"], 60)["state"] == "succeeded"
    assert console.vm_host("prod-web-1") == "HV-PROD-1"


def test_a_killed_daphne_is_restarted_without_touching_moves_and_streams_resume(
    console, running_move
):
    pk = running_move("prod-db-2", "HV-PROD-1")
    stream = Stream(console, pk)
    worker = console.pid("worker")
    with stream.open() as ws:
        stream.read(ws, 3)
        console.kill("web")
        stream.read_until_dropped(ws, 10)
    healed = console.wait_healthy(HEAL_BOUND_S)
    print(f"daphne killed: /healthz 200 again after {healed:.1f} s")
    assert console.pid("worker") == worker
    assert "web exited with code -9 (SIGKILL)" in console.output()
    with stream.open() as ws:
        final = stream.read_to_the_end(ws)
    assert (final["kind"], final["state"]) == ("completed", "succeeded")
    assert stream.whole()
    move = console.move(pk)
    assert (move["state"], move["error_code"]) == ("succeeded", "")
    assert console.vm_host("prod-db-2") == "HV-PROD-1"


def test_the_data_folder_and_its_files_are_the_owners_alone(console):
    entries = list(console.data_dir.iterdir())
    names = {e.name for e in entries}
    assert {"hvweb.sqlite3", "secret_key", "demo-logins.json", "redis.sock"} <= names
    assert oct(console.data_dir.stat().st_mode & 0o777) == "0o700"
    modes = {e.name: oct(e.stat().st_mode & 0o777) for e in entries}
    opened = {
        name: mode
        for name, mode in modes.items()
        if mode not in {"0o600", "0o700"} and name != "launcher.out"
    }
    assert opened == {}


# --- A real Redis that goes away for five seconds ------------------------------------


class RedisServer:
    """A redis-server of the test's own on a free port, stopped and started at will."""

    def __init__(self, folder: Path) -> None:
        from hvweb import embedded_redis

        self.port = free_port()
        self.folder = folder
        self.command = [
            embedded_redis.executable(),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(folder),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def test_the_worker_rides_out_a_five_second_redis_outage_during_a_move(tmp_path):
    redis = RedisServer(tmp_path)
    console = Console(
        tmp_path / "data",
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        # The launcher's default. With it, Celery 5.7.0's own consumer ended the
        # worker at the first outage (with 2 processes it often did not).
        HVWEB_WORKER_CONCURRENCY="4",
    )
    try:
        status, move = console.start_move("prod-db-1", "HV-PROD-2", speed=0.8)
        assert status == 201, move
        pk = move["id"]
        console.wait_move(pk, 30, until=in_memory_transfer)
        worker = console.pid("worker")

        redis.kill()
        outage_started = time.monotonic()
        assert console.healthz() == 503
        # A move asked for now is refused at once, and its VM stays.
        status, refused = console.start_move("prod-web-1", "HV-PROD-3", speed=0)
        assert status == 201, refused
        assert (refused["state"], refused["error_code"]) == (
            "failed",
            "QUEUE_UNAVAILABLE",
        )
        assert "job queue (Redis) did not take the move" in refused["error_message"]
        time.sleep(max(0.0, 5 - (time.monotonic() - outage_started)))

        redis.start()
        healed = console.wait_healthy(REDIS_BACK_BOUND_S)
        print(f"Redis back after a 5 s outage: /healthz 200 after {healed:.1f} s")
        assert console.pid("worker") == worker  # rode it out, not restarted

        move = console.wait_move(pk, 90)
        assert move["state"] == "succeeded", move
        assert console.vm_host("prod-db-1") == "HV-PROD-2"
        assert console.vm_host("prod-web-1") == "HV-PROD-1"
        # The page shows what the database holds.
        page = console.page(f"/migrations/{pk}/", console.session_cookie())
        assert re.search(
            rf'<div id="migration" data-migration="{pk}"[^>]* data-state="succeeded"',
            page,
        ), page[:2000]
        # And the queue works again: a new move runs to its end.
        status, again = console.start_move("prod-web-1", "HV-PROD-3", speed=0)
        assert status == 201, again
        assert console.wait_move(again["id"], 60)["state"] == "succeeded"
        assert "Unrecoverable error" not in console.output()
    finally:
        code = console.stop()
        redis.kill()
    assert code == 0, console.output()[-4000:]
