"""Benchmark: the overview, cluster and VM pages at scale, with 32 moves in flight.

    python benchmarks/pages_scale.py [--requests 40]
    DATABASE_URL=postgresql://.../hvweb_bench python benchmarks/pages_scale.py

Seeds a database of its own (SQLite in a throwaway folder, or DATABASE_URL,
migrated here): one cluster of 64 hosts with 1,000 VMs (each with a disk on a
CSV and a network adapter), 500 finished moves in the history and 32 moves in
flight (dispatched to a queue no worker reads, so they stay running as
records: the pages read what they would read mid-move). The garbage
collector is set as the web process sets it at start (``hvweb.core.gctune``).
Each page is then requested ``--requests`` times as an operator through
Django's test client (the server's time: middleware, queries and templates)
and p50/p95 printed
against issue 13's target: overview, cluster and VM pages p95 <= 100 ms;
``/api/vms/`` with 500 per page is measured beside them.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOSTS, VMS, HISTORY, MOVES = 64, 1_000, 500, 32


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def seed():
    from django.utils import timezone

    from hvweb.inventory.models import NetworkAdapter, VirtualDisk, VirtualMachine
    from hvweb.inventory.testing import make_host, make_member, make_world
    from hvweb.moves.models import Migration
    from hvweb.moves.services import start_migration

    world = make_world(f"SCALE{int(time.time())}", hosts=1)
    world.cluster.max_simultaneous_migrations = 2
    world.cluster.save()
    hosts = world.hosts + [
        make_host(world.cluster, f"HV-{world.team.name}-{i}", memory_mib=262_144)
        for i in range(2, HOSTS + 1)
    ]
    hosts[0].memory_mib = 262_144
    hosts[0].save()
    world.vm.delete()
    vms = VirtualMachine.objects.bulk_create(
        VirtualMachine(
            name=f"{world.team.name.lower()}-vm-{i:04}", host=hosts[i % HOSTS],
            memory_mib=1024, highly_available=True, workload_profile="web",
            write_rate=2_000, working_set_pages=2_000,
        )
        for i in range(VMS)
    )  # fmt: skip
    VirtualDisk.objects.bulk_create(
        VirtualDisk(vm=vm, name=f"{vm.name}.vhdx", kind="vhdx", csv=world.csv,
                    path=f"{world.csv.path}\\\\{vm.name}.vhdx")
        for vm in vms
    )  # fmt: skip
    NetworkAdapter.objects.bulk_create(
        NetworkAdapter(vm=vm, mac_address=f"00-15-5D-{i // 65536:02X}-"
                       f"{i // 256 % 256:02X}-{i % 256:02X}", virtual_switch="vSwitch")
        for i, vm in enumerate(vms)
    )  # fmt: skip
    operator = make_member(world.team, "operator", f"{world.team.name}-operator")
    now = timezone.now()
    Migration.objects.bulk_create(
        Migration(
            vm=vms[i % VMS], cluster=world.cluster, source=hosts[i % HOSTS],
            destination=hosts[(i + 1) % HOSTS], requested_by=operator,
            performance_option="compression", speed=0, reserved_memory_mib=1024,
            state="succeeded", stage="network_redirection", passes=2,
            bytes_sent=1 << 30, total_time_s=9.0, downtime_s=0.02,
            started_at=now, finished_at=now,
        )
        for i in range(HISTORY)
    )  # fmt: skip
    # 32 moves in flight, from 32 hosts to 32 others, each VM a different one.
    from celery import current_app

    current_app.conf.CELERY_TASK_DEFAULT_QUEUE = f"unworked-{uuid.uuid4().hex[:8]}"
    flying = []
    for i in range(MOVES):
        vm = VirtualMachine.objects.select_related("host__cluster").get(pk=vms[i].pk)
        destination = hosts[(i % HOSTS + 32) % HOSTS]
        flying.append(start_migration(vm, destination, operator, speed=1))
    return world, hosts, vms, operator, flying


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="hvweb-pages-scale-")
    os.environ.update(HVWEB_DATA_DIR=data, DJANGO_SETTINGS_MODULE="hvweb.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from hvweb.core import gctune

    call_command("migrate", verbosity=0)
    from django.conf import settings

    redis = None
    if settings.REDIS_EMBEDDED:  # the moves in flight are dispatched through it
        import subprocess

        from hvweb import embedded_redis

        redis = embedded_redis.start(settings.REDIS_SOCKET, stdout=subprocess.DEVNULL)
    started = time.monotonic()
    world, hosts, vms, operator, flying = seed()
    print(f"seeded in {time.monotonic() - started:.1f} s on {connection.vendor}: "
          f"{HOSTS} hosts, {VMS} VMs, {HISTORY} finished moves, "
          f"{sum(m.state == 'running' for m in flying)} in flight")  # fmt: skip
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(operator)
    pages = {
        "overview": "/",
        "cluster": world.cluster.get_absolute_url(),
        "VM (moving)": vms[0].get_absolute_url(),
        "VM (idle)": vms[500].get_absolute_url(),
        # Measured too (issue 13 gave 256 ms), not one of the target's pages.
        "API 500 VMs": "/api/vms/?page_size=500",
    }
    targeted = {"overview", "cluster", "VM (moving)", "VM (idle)"}
    # As the web process does once it has started (hvweb/asgi.py): what was
    # built so far is frozen out of the collector's scans and the thresholds
    # set. The seed's own objects are dropped first: a server never held them.
    del world, hosts, vms, flying
    threshold = gctune.tune()
    print(f"garbage collector as in the web process: thresholds {threshold}, "
          f"{gc.get_freeze_count():,} start-up objects frozen")  # fmt: skip
    print("wall = elapsed; cpu = this process's CPU time (steadier on a shared box)")
    print(f"{'page':<14}{'wall p50':>8}{'p95':>8}{'cpu p50':>9}{'p95':>8}"
          f"{'queries':>9}{'KiB':>7}  target (wall p95)")  # fmt: skip
    worst = 0.0
    for name, url in pages.items():
        for _ in range(3):
            assert client.get(url).status_code == 200, url
        queries = []
        with connection.execute_wrapper(
            lambda run, sql, *a, seen=queries: seen.append(sql) or run(sql, *a)
        ):
            size = len(client.get(url).content)
        times, cpu = [], []
        for _ in range(args.requests):
            start, start_cpu = time.perf_counter(), time.process_time()
            client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        if name in targeted:
            worst = max(worst, p95(times))
            verdict = "<= 100 ms " + ("PASS" if p95(times) <= 100 else "FAIL")
        else:
            verdict = "(no target)"
        print(f"{name:<14}{statistics.median(times):>8.1f}{p95(times):>8.1f}"
              f"{statistics.median(cpu):>9.1f}{p95(cpu):>8.1f}"
              f"{len(queries):>9}{size / 1024:>7.0f}  {verdict}")  # fmt: skip
    print(f"worst p95 of the target's pages {worst:.1f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if os.environ.get("HVWEB_PROFILE"):  # where one overview request spends its time
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(client.get, pages[os.environ["HVWEB_PROFILE"]])
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    if redis is not None:
        embedded_redis.stop(redis, settings.REDIS_SOCKET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
