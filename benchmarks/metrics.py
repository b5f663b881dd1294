"""Benchmark a Prometheus scrape of ``/metrics``: the issue asks under 200 ms.

    python benchmarks/metrics.py [--vms 1000] [--running 32] [--history 10000]
                                 [--repeat 20]

It builds a throwaway SQLite data folder (or uses ``DATABASE_URL``'s server,
in a database it creates and drops), with 4 clusters of 8 hosts carrying
``--vms`` VMs, ``--running`` moves in memory transfer with progress, a few
queued ones, and ``--history`` ended moves (succeeded, failed, aborted,
cancelled) behind them. Each scrape is a GET of ``/metrics`` with the bearer
token through Django's full request cycle (middleware, view, collector,
exposition); the median, the 95th percentile and the maximum wall time, the
queries per scrape and the size of the reply are printed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLUSTERS = 4
HOSTS = 8
TOKEN = "benchmark-token"


def setup_django(data_dir: Path) -> str | None:
    """Django on a fresh database; returns the PostgreSQL database to drop."""
    os.environ["HVWEB_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    os.environ["HVWEB_METRICS_TOKEN"] = TOKEN
    created = None
    if url := os.environ.get("DATABASE_URL"):
        import psycopg

        created = f"hvweb_bench_metrics_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created}"')
        base, _, _ = url.rpartition("/")
        os.environ["DATABASE_URL"] = f"{base}/{created}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return created


def build(vms: int, running: int, history: int) -> None:
    from hvweb.inventory.models import VirtualMachine
    from hvweb.inventory.testing import make_world
    from hvweb.moves.models import Migration

    rng = random.Random(1)
    worlds = [make_world(f"M{c}", hosts=HOSTS) for c in range(CLUSTERS)]
    all_vms = []
    for c, world in enumerate(worlds):
        all_vms += VirtualMachine.objects.bulk_create(
            VirtualMachine(
                name=f"m{c}-vm-{i}",
                host=world.hosts[i % HOSTS],
                memory_mib=2048,
                highly_available=True,
            )
            for i in range(vms // CLUSTERS)
        )
    world_of = {w.cluster.pk: w for w in worlds}
    moves = []

    def move(vm, **fields):
        world = world_of[vm.host.cluster_id]
        source = vm.host
        destination = next(h for h in world.hosts if h.pk != source.pk)
        return Migration(
            vm=vm, cluster=world.cluster, source=source, destination=destination,
            performance_option=rng.choice(["tcpip", "compression", "smb"]),
            speed=0, reserved_memory_mib=vm.memory_mib, **fields,
        )  # fmt: skip

    for vm in all_vms[:running]:
        moves.append(
            move(
                vm,
                state="running",
                stage="memory_transfer",
                progress={
                    "bytes_sent": rng.randrange(1 << 30),
                    "remaining_dirty_pages": rng.randrange(100_000),
                    "dirty_rate": rng.random() * 50_000,
                },
                predicted={"policy": "hyperv", "downtime_s": 0.2},
            )  # fmt: skip
        )
    for vm in all_vms[running : running + 8]:
        moves.append(move(vm, state="queued"))
    ends = ["succeeded"] * 8 + ["failed", "cancelled"]
    for i in range(history):
        vm = all_vms[running + 8 + i % (len(all_vms) - running - 8)]
        state = rng.choice(ends)
        downtime = rng.lognormvariate(-1.5, 0.6)
        moves.append(
            move(
                vm,
                state=state,
                error_code="NOT_CONVERGING"
                if i % 50 == 0 and state == "failed"
                else "",
                downtime_s=downtime if state == "succeeded" else None,
                total_time_s=rng.uniform(2, 120) if state == "succeeded" else None,
                predicted={
                    "policy": "hyperv",
                    "downtime_s": downtime * rng.uniform(0.7, 1.3),
                },
            )  # fmt: skip
        )
    Migration.objects.bulk_create(moves, batch_size=2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--running", type=int, default=32)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        created = setup_django(Path(tmp))
        try:
            run(args)
        finally:
            if created:
                from django.db import connections

                connections.close_all()
                import psycopg

                url = os.environ["DATABASE_URL"].rpartition("/")[0] + "/postgres"
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE "{created}" WITH (FORCE)')


def run(args) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    build(args.vms, args.running, args.history)
    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.get("/metrics", **headers).status_code == 200  # warm up
    times = []
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            reply = client.get("/metrics", **headers)
            times.append(time.perf_counter() - start)
        assert reply.status_code == 200
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"metrics scrape ({connection.vendor}): {args.vms} VMs, {args.running} "
        f"running moves, {args.history} ended: median "
        f"{statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {times[-1] * 1000:.1f} ms; {len(queries)} queries, "
        f"{len(reply.content) / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
