"""Benchmark of the realtime path: a move's events reaching websocket viewers.

Starts the real stack with the launcher (embedded Redis, a Celery worker with
four processes, daphne) on a throwaway data folder, then measures:

1. latency from the task's event to a websocket client while 4 moves run at
   once (one viewer each); the clock starts at the frame's ``at`` stamp, taken
   before the database commit, so commit time counts against us;
2. how many subscribers one daphne process serves on one move with no lost
   sequence number: every viewer must see its snapshot's ``last_seq`` followed
   by every later number, in order, up to the move's end.

    python benchmarks/realtime.py [--subscribers 200] [--moves 4]

Targets (issue 5): p95 latency <= 50 ms; >= 200 subscribers without a gap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Websocket handshakes in flight at once while the viewers arrive.
RAMP = 25
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(data_dir: str, port: int, concurrency: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(HVWEB_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="hvweb.settings")
    process = subprocess.Popen(
        [sys.executable, "-m", "hvweb.launcher", "--port", str(port), "--no-seed",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    log = open(Path(data_dir) / "stack.log", "w")  # noqa: SIM115
    for line in process.stdout:
        log.write(line)
        if "hvweb is running at" in line:
            # Keep draining: a full pipe would stall the stack's logging, and
            # with it daphne and the worker.
            threading.Thread(
                target=shutil.copyfileobj, args=(process.stdout, log), daemon=True
            ).start()
            return process
        if "error:" in line:
            print(line, end="")
    raise SystemExit("the stack did not start")


def build_inventory(
    moves: int,
    *,
    prefix: str = "BENCH",
    limit: int | None = None,
    link_mbps: int = 1000,
    memory_mib: int = 256,
    write_rate: int = 20_000,
    working_set_pages: int = 8_000,
):
    """A cluster with 2·moves hosts and `moves` web VMs, and an operator's
    session; ``limit`` simultaneous moves per host (default: all of them)."""
    from django.test import Client

    from hvweb.inventory.testing import make_member, make_vm, make_world

    # A fresh name each run: with --use-env the database may hold earlier runs.
    world = make_world(f"{prefix}{int(time.time())}", hosts=2 * moves)
    world.cluster.max_simultaneous_migrations = limit or moves
    world.cluster.link_bandwidth_mbps = link_mbps
    world.cluster.save()
    vms = [world.vm] + [
        make_vm(world.hosts[i], f"{world.team.name}-web-{i + 1}", csv=world.csv)
        for i in range(1, moves)
    ]
    for vm in vms:
        vm.memory_mib, vm.workload_profile = memory_mib, "web"
        vm.write_rate, vm.working_set_pages = write_rate, working_set_pages
        vm.save()
    user = make_member(world.team, "operator", f"{world.team.name}-operator")
    client = Client()
    client.force_login(user)
    return world, vms, user, client.cookies["sessionid"].value


async def watch(
    url: str,
    cookie: str,
    origin: str,
    sink: dict,
    gate: asyncio.Semaphore | None = None,
) -> None:
    """One viewer: snapshot, then frames until the move ends; records seqs and lag.

    ``gate`` bounds the handshakes in flight: viewers arrive in a ramp, as
    browsers do, rather than as one synchronised burst.
    """
    from websockets.asyncio.client import connect

    async with contextlib.AsyncExitStack() as stack:
        if gate is not None:
            await stack.enter_async_context(gate)
        ws = await stack.enter_async_context(
            connect(
                url, origin=origin, max_size=None, open_timeout=60,
                additional_headers=[("Cookie", f"sessionid={cookie}")],
            )
        )  # fmt: skip
        snapshot = json.loads(await ws.recv())
        if gate is not None:
            gate.release()
            stack.push_async_callback(gate.acquire)  # balanced on the way out
        sink["start"] = snapshot["last_seq"]
        sink["seqs"] = []
        sink["lag_ms"] = []
        if snapshot["migration"]["state"] not in ("queued", "running"):
            return
        async for raw in ws:
            received = time.time()
            frame = json.loads(raw)
            if frame.get("type") != "event":
                continue
            sink["seqs"].append(frame["seq"])
            sent = datetime.fromisoformat(frame["at"]).timestamp()
            sink["lag_ms"].append((received - sent) * 1000)
            if frame["kind"] in ("completed", "failed", "cancelled"):
                return


def gapless(sink: dict) -> bool:
    seqs = sink.get("seqs", [])
    return bool(seqs) and seqs == list(
        range(sink["start"] + 1, sink["start"] + 1 + len(seqs))
    )


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


async def latency_run(
    base_ws: str, origin: str, cookie: str, world, vms, user
) -> list[float]:
    from asgiref.sync import sync_to_async

    from hvweb.moves.services import start_migration

    moves = []
    for i, vm in enumerate(vms):
        target = world.hosts[len(vms) + i]
        moves.append(await sync_to_async(start_migration)(vm, target, user, speed=0.3))
    sinks = [{} for _ in moves]
    await asyncio.gather(*(
        watch(f"{base_ws}/ws/migrations/{m.pk}/", cookie, origin, s)
        for m, s in zip(moves, sinks, strict=True)
    ))  # fmt: skip
    assert all(gapless(s) for s in sinks), "a viewer missed a sequence number"
    return [lag for s in sinks for lag in s["lag_ms"]]


async def fanout_run(
    base_ws: str, origin: str, cookie: str, vm, destination, user, subscribers: int
):
    from asgiref.sync import sync_to_async

    from hvweb.moves.services import start_migration

    move = await sync_to_async(start_migration)(vm, destination, user, speed=0.15)
    sinks = [{} for _ in range(subscribers)]
    gate = asyncio.Semaphore(RAMP)
    began = time.monotonic()
    results = await asyncio.gather(
        *(
            watch(f"{base_ws}/ws/migrations/{move.pk}/", cookie, origin, s, gate)
            for s in sinks
        ),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    complete = sum(gapless(s) for s in sinks)
    lags = [lag for s in sinks for lag in s.get("lag_ms", [])]
    return complete, errors, lags, time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--moves", type=int, default=4)
    parser.add_argument(
        "--use-env",
        action="store_true",
        help="run on DATABASE_URL / REDIS_URL (a database of its own, migrated "
        "here) instead of SQLite and the embedded Redis",
    )
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="hvweb-bench-")
    port = free_port()
    os.environ.update(HVWEB_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="hvweb.settings")
    if not args.use_env:
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    backends = (
        "DATABASE_URL and REDIS_URL" if args.use_env else "SQLite, embedded Redis"
    )
    stack = start_stack(data_dir, port, concurrency=args.moves)
    print(f"stack log: {data_dir}/stack.log")
    try:
        import django

        django.setup()
        world, vms, user, cookie = build_inventory(args.moves)
        base_ws, origin = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        lags = asyncio.run(latency_run(base_ws, origin, cookie, world, vms, user))
        # The VMs now sit on the second half of the hosts; move one back.
        vms[0].refresh_from_db()
        complete, errors, fan_lags, took = asyncio.run(
            fanout_run(
                base_ws, origin, cookie, vms[0], world.hosts[0], user, args.subscribers
            )
        )
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(60)
    p50, p95 = percentile(lags, 50), percentile(lags, 95)
    f95 = percentile(fan_lags, 95) if fan_lags else float("nan")
    fan_ok = complete >= 200 and not errors
    n = args.moves
    rows = [
        (f"latency p50, {n} moves ({len(lags)} frames)", f"{p50:.1f} ms", "", ""),
        (f"latency p95, {n} moves", f"{p95:.1f} ms", "<= 50 ms", p95 <= 50),
        (f"latency max, {n} moves", f"{max(lags):.1f} ms", "", ""),
        (
            f"subscribers on one move, no gap (ramp {RAMP}, {took:.0f} s)",
            f"{complete}/{args.subscribers}",
            ">= 200",
            fan_ok,
        ),
        (f"fan-out latency p95, {args.subscribers} viewers", f"{f95:.1f} ms", "", ""),
    ]
    print(f"stack: {backends}; one daphne, one worker with {n} processes")
    print(f"{'measure (event -> websocket client)':48} {'value':>12} {'target':>10}")
    for name, value, target, ok in rows:
        verdict = "" if ok == "" else ("PASS" if ok else "FAIL")
        print(f"{name:48} {value:>12} {target:>10}  {verdict}")
    if errors:
        print(f"{len(errors)} viewers failed, e.g. {errors[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
