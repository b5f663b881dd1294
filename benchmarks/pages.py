"""Benchmark the dashboard: server-side page render times and live event rates.

    python benchmarks/pages.py [--requests 60] [--rates 20,50,100] [--seconds 8]

It builds a throwaway data folder (SQLite, embedded Redis), applies the
migrations, seeds the demo inventory and runs a few real moves (unpaced, in
this process) so that the history and the migration pages have content. Then:

1. **Render times**: each main page is requested ``--requests`` times through
   Django's test client as demo-operator (no network: the time is the server's,
   middleware, queries and templates included); p50/p95/max per page and the
   p95 of all of them are printed against the 100 ms target.
2. **Events per second**: daphne serves the real ASGI app; Chromium opens a
   migration page; this process records progress and pass events on that move
   through ``hvweb.moves.journal`` (database row + Redis channel layer, as the
   worker does) at each rate for ``--seconds``. The page reports every frame's
   lag (from the event's timestamp to the moment the page applied it); the
   move keeps up when every frame arrives in order, none is missing, and the lag
   stays flat instead of growing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def setup_django(data_dir: Path) -> None:
    os.environ["HVWEB_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "hvweb.settings"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from hvweb.core.collect import collect_if_changed

    collect_if_changed()  # the pages name the hashed static files


def seed_with_history(moves: int) -> None:
    """The demo inventory and ``moves`` real finished moves (run eagerly here)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from hvweb.inventory.models import VirtualMachine
    from hvweb.moves.services import start_migration
    from hvweb.moves.tasks import run_migration
    from hvweb.moves.views import ranked_destinations

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    operator = get_user_model().objects.get(username="demo-operator")
    names = ["prod-web-1", "prod-idle-1", "prod-batch-1", "prod-web-2", "prod-app-1"]
    for i in range(moves):
        vm = VirtualMachine.objects.select_related("host__cluster").get(
            name=names[i % len(names)]
        )
        destination = ranked_destinations(vm)[0].host
        move = start_migration(vm, destination, operator, speed=0, downtime_limit_ms=5)
        # The dispatcher sends the job by name (send_task), which Celery's eager
        # mode ignores: run it here, as a worker would.
        run_migration(move.pk)


def bench_pages(requests: int) -> float:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from hvweb.inventory.models import Cluster, Host, VirtualMachine
    from hvweb.moves.models import Migration

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="demo-operator"))
    prod = Cluster.objects.get(name="CLU-PROD")
    lab = Cluster.objects.get(name="CLU-LAB")
    move = Migration.objects.filter(state="succeeded").first()
    pages = {
        "clusters overview": "/",
        "cluster CLU-PROD": prod.get_absolute_url(),
        "cluster CLU-LAB": lab.get_absolute_url(),
        "host HV-PROD-1": Host.objects.get(name="HV-PROD-1").get_absolute_url(),
        "VM prod-db-1": VirtualMachine.objects.get(name="prod-db-1").get_absolute_url(),
        "VM lab-local-disk": VirtualMachine.objects.get(
            name="lab-local-disk"
        ).get_absolute_url(),
        "migration (finished)": move.get_absolute_url(),
        "history": "/migrations/",
        "history filtered": f"/migrations/?cluster={prod.pk}&state=succeeded",
        "history CSV": "/migrations.csv",
    }
    print(f"\nPage render times, {requests} requests each, server side (ms)")
    print("wall = elapsed; cpu = this process's CPU time (steadier on a shared box)")
    print(f"{'page':<24}{'wall p50':>9}{'p95':>7}{'max':>7}{'cpu p50':>9}{'p95':>7}")
    every, every_cpu = [], []
    for name, url in pages.items():
        for _ in range(3):  # warm caches and connections
            client.get(url)
        times, cpu = [], []
        for _ in range(requests):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        every += times
        every_cpu += cpu
        print(
            f"{name:<24}{statistics.median(times):>9.1f}{p95(times):>7.1f}"
            f"{max(times):>7.1f}{statistics.median(cpu):>9.1f}{p95(cpu):>7.1f}"
        )
    overall = p95(every)
    verdict = "within" if overall <= 100 else "OVER"
    print(f"{'all pages':<24}{statistics.median(every):>9.1f}{overall:>7.1f}"
          f"{max(every):>7.1f}{statistics.median(every_cpu):>9.1f}"
          f"{p95(every_cpu):>7.1f}   wall p95 {verdict} the 100 ms target")  # fmt: skip
    return overall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daphne(port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    """daphne on ``port`` (``env``: extra variables), once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "hvweb.asgi:application"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start: see {log}") from None
            time.sleep(0.1)


def publish(migration_id: int, rate: int, seconds: float) -> tuple[int, float]:
    """Record progress events (every 20th a finished pass) at ``rate`` per second,
    as the worker does: a row and a channel-layer message each."""
    from django.db import connection

    from hvweb.moves import journal

    pages = 1000  # per progress step
    sent = 0
    start = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                sent += 1
                t = sent / 10
                if sent % 20 == 0:
                    journal.record(migration_id, "pass_finished", {
                        "kind": "pass_finished", "t": t, "pass_no": sent // 20,
                        "pages_sent": 20 * pages, "pages_dirtied": 500,
                        "zero_pages": 0, "bytes": 20 * pages * 4096,
                        "duration_s": 2.0, "dirty_rate": 250.0,
                        "expected_downtime_s": 0.016, "remaining_dirty_pages": 500,
                    })  # fmt: skip
                else:
                    journal.record(migration_id, "progress", {
                        "kind": "progress", "t": t, "pass_no": sent // 20 + 1,
                        "bytes_sent": sent * pages * 4096,
                        "remaining_dirty_pages": 500_000 - sent,
                        "dirty_rate": 250.0, "link_rate": 30_518.0,
                    })  # fmt: skip
            time.sleep(max(0.0, sent / rate - (time.perf_counter() - start)))
        return sent, time.perf_counter() - start
    finally:
        connection.close()


def run_in_thread(function, *args):
    """Run ``function`` in a thread of its own: Playwright's sync API keeps an
    event loop in this one, where Django's ORM and async_to_sync refuse to run."""
    out: dict = {}

    def target():
        try:
            out["value"] = function(*args)
        except BaseException as exc:  # re-raised in the caller
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def bench_events(rates: list[int], seconds: float, data_dir: Path) -> list[dict]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from hvweb.inventory.models import VirtualMachine
    from hvweb.moves.models import Migration

    user = get_user_model().objects.get(username="demo-operator")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    port = free_port()
    daphne = start_daphne(port, data_dir / "daphne.log")
    # Only this process (not daphne) talks to the database beside Playwright's
    # loop, and only from the main thread between Playwright calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    results = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            base = f"http://127.0.0.1:{port}"
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}]
            )
            print(f"\nLive events on the migration page, {seconds:g} s per rate")
            print(
                f"{'asked/s':>8}{'sent/s':>8}{'frames':>8}{'applied':>8}"
                f"{'lag p50':>9}{'p95':>7}{'max':>7}{'last ms':>8}  verdict"
            )
            for rate in rates:
                vm = VirtualMachine.objects.select_related("host__cluster").get(
                    name="prod-db-2"
                )
                move = Migration.objects.create(
                    vm=vm, cluster=vm.host.cluster, source=vm.host,
                    destination=vm.host.cluster.hosts.exclude(pk=vm.host_id).first(),
                    requested_by=user, performance_option="compression", speed=1,
                    reserved_memory_mib=vm.memory_mib, state="running",
                    stage="memory_transfer",
                )  # fmt: skip
                page = context.new_page()
                page.goto(f"{base}/migrations/{move.pk}/")
                page.wait_for_selector('#connection[data-state="live"]')
                sent, took = run_in_thread(publish, move.pk, rate, seconds)
                last = Migration.objects.get(pk=move.pk).last_seq
                caught = time.perf_counter()
                try:
                    page.wait_for_function(
                        f"hvwebMigration.state.lastSeq >= {last}", timeout=10_000
                    )
                    tail_ms = (time.perf_counter() - caught) * 1000
                except Exception:
                    tail_ms = float("inf")
                stats = page.evaluate(
                    "(s => ({lags: s.lags, applied: s.applied, seq: s.lastSeq}))"
                    "(hvwebMigration.state)"
                )
                lags = stats["lags"] or [0]
                ok = stats["seq"] == stats["applied"] == last
                ok = ok and tail_ms < 1000 and p95(lags) < 1000
                row = {
                    "rate": rate, "sent_per_s": sent / took, "frames": last,
                    "applied": stats["applied"], "lag_p50": statistics.median(lags),
                    "lag_p95": p95(lags), "lag_max": max(lags), "tail_ms": tail_ms,
                    "ok": ok,
                }  # fmt: skip
                results.append(row)
                verdict = "keeps up" if ok else "FALLS BEHIND"
                print(
                    f"{rate:>8}{row['sent_per_s']:>8.1f}{last:>8}{stats['applied']:>8}"
                    f"{row['lag_p50']:>9.0f}{row['lag_p95']:>7.0f}"
                    f"{row['lag_max']:>7.0f}{tail_ms:>8.0f}  {verdict}"
                )
                Migration.objects.filter(pk=move.pk).update(state="succeeded")
                page.close()
            browser.close()
    finally:
        os.killpg(daphne.pid, signal.SIGTERM)
        daphne.wait(15)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rates", default="20,50,100")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--moves", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hvweb-bench-") as tmp:
        data_dir = Path(tmp)
        setup_django(data_dir)
        from django.conf import settings

        from hvweb import embedded_redis

        redis = embedded_redis.start(settings.REDIS_SOCKET, stdout=subprocess.DEVNULL)
        try:
            print("Seeding the demo and running", args.moves, "moves …", flush=True)
            seed_with_history(args.moves)
            overall = bench_pages(args.requests)
            rows = bench_events(
                [int(r) for r in args.rates.split(",")], args.seconds, data_dir
            )
        finally:
            embedded_redis.stop(redis, settings.REDIS_SOCKET)
    twenty = next((r for r in rows if r["rate"] == 20), None)
    good = overall <= 100 and (twenty is None or twenty["ok"])
    print(f"\nSummary: page render p95 {overall:.1f} ms (target ≤ 100 ms); "
          + ", ".join(f"{r['rate']}/s {'keeps up' if r['ok'] else 'falls behind'}"
                      f" (lag p95 {r['lag_p95']:.0f} ms)" for r in rows))  # fmt: skip
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
