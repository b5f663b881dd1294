"""Benchmark the costs of issue 12's guards.

    python benchmarks/security.py [--streams 50] [--repeat 5]

1. The JSON depth check (``hvweb.core.jsonlimits``): its time on a realistic
   body (an API page of 500 VMs, about 0.4 MB, and a 64-node, 8,000-VM import
   document's worth of nesting) against ``json.loads`` of the same text, and
   the time to refuse the 2 KB, 1,000-deep body that used to be a 500.
2. Closing revoked websockets (``hvweb.moves.revocation``): ``--streams``
   cluster streams of one user are open through the real ASGI application and
   an embedded Redis channel layer on a throwaway SQLite folder; the user's
   membership is deleted, and the time until every stream has its error frame
   and its close (4403) is measured, ``--repeat`` times (median and max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def best_of(func, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def depth_check() -> None:
    from hvweb.core import jsonlimits

    vm = {
        "id": 1, "name": "prod-web-1", "host": 3, "cluster": 1, "memory_mib": 4096,
        "vcpus": 4, "power_state": "running", "highly_available": True,
        "automatic_start_action": "nothing", "workload_profile": "web",
        "write_rate": 2000, "working_set_pages": 4096,
        "disks": [{"id": 1, "name": "a.vhdx", "kind": "vhdx", "csv": 1,
                   "path": "C:\\\\ClusterStorage\\\\a.vhdx", "size_gib": 60}],
        "adapters": [{"id": 1, "name": "Network Adapter",
                      "mac_address": "00-15-5D-01-02-03", "virtual_switch": "vSwitch"}],
    }  # fmt: skip
    page = json.dumps({"count": 500, "results": [vm] * 500})
    check = best_of(lambda: jsonlimits.check_depth(page))
    parse = best_of(lambda: json.loads(page))
    print(
        f"depth check, API page of 500 VMs ({len(page) / 1e6:.2f} MB): "
        f"{check * 1e3:.2f} ms ({len(page) / check / 1e6:.0f} MB/s); "
        f"json.loads {parse * 1e3:.2f} ms; overhead {check / parse:.0%}"
    )
    bomb = "[" * 1000 + "]" * 1000

    def refuse() -> None:
        try:
            jsonlimits.loads(bomb)
        except jsonlimits.TooDeep:
            pass

    print(f"refusing the 2 KB, 1,000-deep body: {best_of(refuse) * 1e6:.0f} µs")


def revocation(streams: int, repeat: int) -> None:
    from channels.db import database_sync_to_async
    from django.core.management import call_command
    from django.test import Client

    from hvweb.asgi import application
    from hvweb.core.testing import WebsocketCommunicator
    from hvweb.inventory.models import Membership
    from hvweb.inventory.testing import make_member, make_world

    call_command("migrate", verbosity=0)
    world = make_world()
    path = f"/ws/clusters/{world.cluster.pk}/"
    results = []
    for round_no in range(repeat):
        user = make_member(world.team, "viewer", f"viewer-{round_no}")
        client = Client()
        client.force_login(user)
        headers = [
            (b"origin", b"http://127.0.0.1"),
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        ]

        async def scenario(user=user, headers=headers) -> float:
            sockets = [
                WebsocketCommunicator(application, path, headers=headers)
                for _ in range(streams)
            ]
            for ws in sockets:
                assert (await ws.connect(timeout=30))[0]
                await ws.receive_json_from(timeout=30)  # the snapshot
            start = time.perf_counter()
            await database_sync_to_async(
                lambda: Membership.objects.filter(user=user).delete()
            )()

            async def closed(ws) -> float:
                while True:
                    message = await ws.receive_output(timeout=30)
                    if message["type"] == "websocket.close":
                        assert message["code"] == 4403
                        return time.perf_counter() - start

            return max(await asyncio.gather(*(closed(ws) for ws in sockets)))

        results.append(asyncio.run(scenario()))
    print(
        f"{streams} open streams of a user whose membership is deleted: all closed "
        f"(4403) after median {statistics.median(results) * 1e3:.0f} ms, "
        f"max {max(results) * 1e3:.0f} ms over {repeat} rounds"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        setup_django(data)
        from django.conf import settings

        from hvweb import embedded_redis

        depth_check()
        redis = embedded_redis.start(settings.REDIS_SOCKET, stdout=subprocess.DEVNULL)
        try:
            revocation(args.streams, args.repeat)
        finally:
            embedded_redis.stop(redis, settings.REDIS_SOCKET)


if __name__ == "__main__":
    main()
