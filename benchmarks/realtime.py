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
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(data_dir: str, port: int, concurrency: int) -> subprocess.Popen[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(HVWEB_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="hvweb.settings")
    process = subprocess.Popen(
        [sys.executable, "-m", "hvweb.launcher", "--port", str(port), "--no-seed",
         "--concurrency", str(concurrency)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "hvweb is running at" in line:
            return process
        if "error:" in line:
            print(line, end="")
    raise SystemExit("the stack did not start")


def build_inventory(moves: int):
    """A cluster with 2·moves hosts and `moves` VMs, and an operator's session."""
    from django.test import Client

    from hvweb.inventory.testing import make_member, make_vm, make_world

    world = make_world("BENCH", hosts=2 * moves)
    world.cluster.max_simultaneous_migrations = moves
    world.cluster.link_bandwidth_mbps = 1000
    world.cluster.save()
    vms = [world.vm] + [
        make_vm(world.hosts[i], f"bench-web-{i + 1}", csv=world.csv)
        for i in range(1, moves)
    ]
    for vm in vms:
        vm.memory_mib, vm.workload_profile = 256, "web"
        vm.write_rate, vm.working_set_pages = 20_000, 8_000
        vm.save()
    user = make_member(world.team, "operator", "bench-operator")
    client = Client()
    client.force_login(user)
    return world, vms, user, client.cookies["sessionid"].value


async def watch(url: str, cookie: str, origin: str, sink: dict) -> None:
    """One viewer: snapshot, then frames until the move ends; records seqs and lag."""
    from websockets.asyncio.client import connect

    async with connect(
        url, origin=origin, additional_headers=[("Cookie", f"sessionid={cookie}")],
        max_size=None, open_timeout=60,
    ) as ws:  # fmt: skip
        snapshot = json.loads(await ws.recv())
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

    move = await sync_to_async(start_migration)(vm, destination, user, speed=0.25)
    sinks = [{} for _ in range(subscribers)]
    began = time.monotonic()
    results = await asyncio.gather(
        *(
            watch(f"{base_ws}/ws/migrations/{move.pk}/", cookie, origin, s)
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
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="hvweb-bench-")
    port = free_port()
    os.environ.update(HVWEB_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="hvweb.settings")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    stack = start_stack(data_dir, port, concurrency=args.moves)
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
            f"subscribers on one move, no gap ({took:.1f} s)",
            f"{complete}/{args.subscribers}",
            ">= 200",
            fan_ok,
        ),
        (f"fan-out latency p95, {args.subscribers} viewers", f"{f95:.1f} ms", "", ""),
    ]
    print(f"{'measure (event -> websocket client)':48} {'value':>12} {'target':>10}")
    for name, value, target, ok in rows:
        verdict = "" if ok == "" else ("PASS" if ok else "FAIL")
        print(f"{name:48} {value:>12} {target:>10}  {verdict}")
    if errors:
        print(f"{len(errors)} viewers failed, e.g. {errors[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
