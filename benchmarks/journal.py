"""Benchmark a move's journal entry: the ORM's lock, read and save against
the one ``UPDATE ... RETURNING`` that events nobody audits now take.

    [DATABASE_URL=postgresql://.../hvweb_bench] python benchmarks/journal.py \\
        [--events 2000]

Without DATABASE_URL it runs on SQLite in a throwaway folder; with it, in that
database (migrated first). One move takes ``--events`` progress events each
way, in alternating rounds; printed: CPU time (this process's, all threads)
and wall time per event, for the step that changed (taking the next number
and applying the event's changes to the move's row) and for the whole entry
(that step, the frame, the event's row and the commit). The commits' messages
to viewers are not sent: each round runs in a transaction that is rolled back
(``--commit`` commits instead, and then needs the channel layer, REDIS_URL).

Why it matters: with 32 moves each writes about five progress events a
second, and the worker's CPU is what their viewers' frames wait for
(``benchmarks/fanout.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(commit: bool) -> None:
    os.environ.setdefault("HVWEB_DATA_DIR", tempfile.mkdtemp(prefix="hvweb-journal-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def a_move():
    from hvweb.inventory.testing import make_world
    from hvweb.moves.choices import MigrationState
    from hvweb.moves.models import Migration

    world = make_world(f"JRN{int(time.time())}")
    return Migration.objects.create(
        vm=world.vm, source=world.hosts[0], destination=world.hosts[1],
        cluster=world.cluster, state=MigrationState.RUNNING,
        reserved_memory_mib=world.vm.memory_mib, speed=1,
    )  # fmt: skip


def measure(step, n: int, commit: bool) -> tuple[float, float]:
    """CPU and wall milliseconds per call of ``step``, over ``n`` calls."""
    from django.db import transaction

    cpu, wall = time.process_time(), time.perf_counter()
    if commit:
        for _ in range(n):
            step()
    else:
        with transaction.atomic():
            for _ in range(n):
                step()
            transaction.set_rollback(True)
    return (
        (time.process_time() - cpu) * 1000 / n,
        (time.perf_counter() - wall) * 1000 / n,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--commit", action="store_true")
    args = parser.parse_args()
    setup(args.commit)
    from django.db import connection

    from hvweb.moves import journal

    move = a_move()
    data = {
        "t": 4.2, "pass": 1, "sent_pages": 9000, "remaining_pages": 7384,
        "outlook": {"eta_s": 3.1, "blackout_s": 0.12, "passes": 3},
    }  # fmt: skip
    changes = {"progress": data}
    steps = {
        "step, ORM (lock, read the row, save)": lambda: journal._advance_audited(
            move.pk, "progress", changes
        ),
        "step, one UPDATE ... RETURNING": lambda: journal._advance(
            move.pk, "progress", changes
        ),
    }
    per = max(1, args.events // args.rounds)
    for step in steps.values():  # warm: the ORM's caches, the connection
        measure(step, 20, args.commit)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            results[name].append(measure(step, per, args.commit))
    # The whole entry, through record() as the runner calls it, each way.
    quick = journal._advance
    whole: dict[str, list[tuple[float, float]]] = {"ORM": [], "one statement": []}
    try:
        for _ in range(args.rounds):
            for name in whole:
                one = name == "one statement"
                journal._advance = quick if one else journal._advance_audited
                whole[name].append(measure(
                    lambda: journal.record(move.pk, "progress", data, **changes),
                    per, args.commit,
                ))  # fmt: skip
    finally:
        journal._advance = quick

    def best(rows):
        return min(c for c, _ in rows), min(w for _, w in rows)

    print(f"database: {connection.vendor}; {args.rounds} rounds of {per} events; "
          f"best round shown (ms per event)")  # fmt: skip
    print(f"{'':44} {'CPU':>8} {'wall':>8}")
    for name, rows in results.items():
        cpu, wall = best(rows)
        print(f"{name:44} {cpu:8.3f} {wall:8.3f}")
    for name, rows in whole.items():
        cpu, wall = best(rows)
        print(f"{'whole entry, ' + name:44} {cpu:8.3f} {wall:8.3f}")
    orm_step, one_step = (results[name] for name in steps)
    (orm, _), (one, _) = best(orm_step), best(one_step)
    (w_orm, _), (w_one, _) = best(whole["ORM"]), best(whole["one statement"])
    saved = w_orm - w_one
    print(f"the step: {orm / one:.1f}x less CPU; the whole entry: "
          f"{w_orm / w_one:.2f}x less CPU ({saved:.2f} ms an event)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
