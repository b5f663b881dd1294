"""Benchmark the drain planner: its speed, and its window against real drains.

    python benchmarks/drain_plan.py [--repeat 3] [--skip-drains]

1. Plan a drain of 200 VMs on one host of a 16-host cluster (mixed sizes,
   workloads and priorities; the predictor from cold each time): the median
   wall time of ``plan_drain`` (target under 1 s).
2. Drain each host of the demo's CLU-PROD in turn, unpaced (speed 0), with a
   real Celery worker on the embedded Redis in a throwaway data folder; then
   resume it. For each drain: the predicted window (the plan recorded with the
   drain), the actual one (the same per-host queue run with each move's
   measured simulated time) and their ratio (target: within 20 %), with every
   move's destination and kind checked against the dry-run plan made just
   before. ``--paced S`` drains HV-PROD-1 once more paced at S× real time and
   sets the predicted window beside the wall clock's times S.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(data_dir: Path) -> None:
    os.environ["HVWEB_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def wide_cluster(vms: int = 200, hosts: int = 16):
    from hvweb.inventory.models import VirtualDisk, VirtualMachine
    from hvweb.inventory.testing import make_world

    world = make_world("WIDE", hosts=hosts)
    for host in world.hosts:
        host.memory_mib = 1 << 20
        host.save()
    source = world.hosts[0]
    profiles = [
        ("idle", 50, 512),
        ("web", 2_000, 8_192),
        ("database", 8_000, 32_768),
        ("memory_hammer", 40_000, 65_536),
    ]
    sizes = (512, 1024, 1536, 2048)
    made = VirtualMachine.objects.bulk_create(
        VirtualMachine(
            name=f"wide-{i:03}", host=source, memory_mib=sizes[i % 4],
            highly_available=True, priority=(3000, 2000, 2000, 1000)[i % 4],
            workload_profile=profiles[i % 4][0], write_rate=profiles[i % 4][1],
            working_set_pages=min(profiles[i % 4][2], sizes[i % 4] * 256),
        )
        for i in range(vms - 1)
    )  # fmt: skip
    VirtualDisk.objects.bulk_create(
        VirtualDisk(vm=vm, name=f"{vm.name}.vhdx", csv=world.csv,
                    path=f"{world.csv.path}\\{vm.name}.vhdx")
        for vm in made
    )  # fmt: skip
    return source


def plan_speed(repeat: int) -> None:
    from hvweb.maintenance.plan import plan_drain
    from migrator.predict import forget_first_passes

    source = wide_cluster()
    times = []
    for _ in range(repeat):
        forget_first_passes()
        began = time.perf_counter()
        plan = plan_drain(source, speed=0)
        times.append(time.perf_counter() - began)
    median = statistics.median(times)
    runs = ", ".join(f"{t:.3f}" for t in times)
    print(
        f"plan: {len(plan.moves)} VMs on 16 hosts: median {median:.3f} s "
        f"(runs {runs}; target < 1 s); {plan.summary}"
    )


def demo_drains(data_dir: Path, paced: float) -> None:
    from hvweb import embedded_redis
    from hvweb.celery import app
    from hvweb.inventory import demo
    from hvweb.inventory.models import Host
    from hvweb.maintenance.compare import compare
    from hvweb.maintenance.plan import plan_drain
    from hvweb.maintenance.service import drain_and_record
    from hvweb.moves.drain import resume_host
    from hvweb.moves.models import Migration

    demo.seed(write=lambda *_: None)
    redis = embedded_redis.start(
        data_dir / "redis.sock", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = open(data_dir / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hvweb", "worker", "--loglevel",
         "WARNING", "--without-mingle", "--without-gossip", "--concurrency", "4",
         "--hostname", "bench@%h"],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start; see worker.log")
        ratios = []
        drains = [(n, 0.0) for n in ("HV-PROD-1", "HV-PROD-2", "HV-PROD-3")]
        for name, speed in drains + [("HV-PROD-1", paced)] * bool(paced):
            host = Host.objects.get(name=name)
            plan = plan_drain(host, speed=speed)
            outcome, record = drain_and_record(host, speed=speed)
            planned = [m.migration for m in plan.moves]
            same = [(m.vm.name, m.destination.name, m.kind) for m in planned] == [
                (m.vm.name, m.destination.name, m.kind) for m in outcome.moves
            ]
            ids = [m.pk for m in outcome.moves]
            while Migration.objects.filter(
                pk__in=ids, state__in=("queued", "running")
            ).exists():
                time.sleep(0.2)
            found = compare(record)
            ratios.append(found.ratio)
            paced_s = found.wall_window_s * speed
            print(
                f"drain {name} (speed {speed:g}): {len(ids)} moves, predicted window "
                f"{found.predicted_window_s:.2f} s, actual "
                f"{found.actual_window_s:.2f} s (predicted / actual "
                f"{found.ratio:.3f}); wall {found.wall_window_s:.2f} s"
                + (
                    f" × {speed:g} = {found.wall_window_s * speed:.2f} s (predicted / "
                    f"paced actual {found.predicted_window_s / paced_s:.3f})"
                    if speed
                    else ""
                )
                + f"; plan's destinations and kinds {'equal' if same else 'DIFFER'}"
            )
            for c in found.moves:
                print(
                    f"    {c.planned['vm']:<14} predicted {c.planned['seconds']:7.3f} "
                    f"s, actual {c.actual_seconds:7.3f} s ({c.ratio:.3f})"
                )
            resume_host(host)
        shown = ", ".join(f"{r:.3f}" for r in ratios)
        print(f"window ratios (predicted / actual): {shown} (target 0.8–1.2)")
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
        log.close()
        embedded_redis.stop(redis, data_dir / "redis.sock")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-drains", action="store_true")
    parser.add_argument(
        "--paced", type=float, default=1.0,
        help="also drain HV-PROD-1 paced at this speed (0: not)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hvb-") as folder:
        data_dir = Path(folder)
        setup_django(data_dir)
        plan_speed(args.repeat)
        if not args.skip_drains:
            demo_drains(data_dir, args.paced)


if __name__ == "__main__":
    main()
