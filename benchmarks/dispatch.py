"""Benchmark the dispatcher: how its cost grows with the queue.

    python benchmarks/dispatch.py [--sizes 50,100,200,400] [--repeat 5]

It builds a throwaway SQLite data folder and, for each size N, a cluster of 8
hosts whose first host carries N + 2 VMs: two of them are moving (the host is
at its limit of 2 simultaneous live migrations) and N wait in the queue, as
after draining that host. One running move has just ended, so one slot is free:
``dispatch_queued`` must start the oldest queued move and leave the others
waiting. Each call runs in a transaction that is rolled back (nothing is sent
to a worker), ``--repeat`` times; the median wall time, the process's CPU time
and the number of SQL queries per call are printed, with the ratio to the
previous size. A dispatcher linear in the queue doubles its time when the
queue doubles (ratio about 2); one that evaluates every queued move from the
database quadruples it (about 4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOSTS = 8


def setup_django(data_dir: Path) -> None:
    os.environ["HVWEB_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_queue(size: int) -> int:
    """A cluster whose first host drains ``size`` VMs; returns the cluster's id."""
    from hvweb.inventory.models import VirtualDisk, VirtualMachine
    from hvweb.inventory.testing import make_world
    from hvweb.moves.choices import MigrationState
    from hvweb.moves.models import Migration

    world = make_world(f"Q{size}", hosts=HOSTS)
    world.cluster.max_simultaneous_migrations = 2
    world.cluster.save()
    for host in world.hosts:
        host.memory_mib = 1 << 20
        host.save()
    source = world.hosts[0]
    vms = VirtualMachine.objects.bulk_create(
        VirtualMachine(
            name=f"q{size}-vm-{i}", host=source, memory_mib=512, highly_available=True
        )
        for i in range(size + 2)
    )
    VirtualDisk.objects.bulk_create(
        VirtualDisk(
            vm=vm, name=f"{vm.name}.vhdx", csv=world.csv,
            path=f"{world.csv.path}\\{vm.name}.vhdx",
        )
        for vm in vms
    )  # fmt: skip
    moves = [
        Migration(
            vm=vm, cluster=world.cluster, source=source,
            destination=world.hosts[1 + i % (HOSTS - 1)],
            performance_option="tcpip", speed=0, reserved_memory_mib=vm.memory_mib,
            state=MigrationState.RUNNING if i < 2 else MigrationState.QUEUED,
        )
        for i, vm in enumerate(vms)
    ]  # fmt: skip
    Migration.objects.bulk_create(moves)
    # The first running move has ended: one slot on the source is free.
    Migration.objects.filter(pk=moves[0].pk).update(state=MigrationState.SUCCEEDED)
    return world.cluster.pk


def dispatch_once(cluster_id: int) -> tuple[float, float, int, int]:
    """One dispatch, rolled back: wall ms, CPU ms, queries, moves started."""
    from django.db import connection, transaction

    from hvweb.moves.lifecycle import dispatch_queued

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(count):
        start, start_cpu = time.perf_counter(), time.process_time()
        started = dispatch_queued(cluster_id)
        wall = (time.perf_counter() - start) * 1000
        cpu = (time.process_time() - start_cpu) * 1000
        transaction.set_rollback(True)
    return wall, cpu, queries, len(started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200,400")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="hvweb-dispatch-") as data:
        setup_django(Path(data))
        print(f"dispatch_queued with one free slot, median of {args.repeat} calls")
        print(
            f"{'queued':>7}{'wall ms':>10}{'cpu ms':>9}{'queries':>9}{'started':>9}"
            f"{'wall ×':>9}{'cpu ×':>8}"
        )
        before = None
        for size in sizes:
            cluster_id = build_queue(size)
            runs = [dispatch_once(cluster_id) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            queries, started = runs[0][2], runs[0][3]
            ratio = (
                f"{wall / before[0]:>9.2f}{cpu / before[1]:>8.2f}"
                if before
                else f"{'':>9}{'':>8}"
            )
            print(f"{size:>7}{wall:>10.1f}{cpu:>9.1f}{queries:>9}{started:>9}{ratio}")
            before = (wall, cpu)


if __name__ == "__main__":
    main()
