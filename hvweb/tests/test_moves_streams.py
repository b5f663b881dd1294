"""The websocket streams of moves and clusters, through the real ASGI stack."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest
from django.db import connections
from django.db.backends.signals import connection_created

from conftest import routed_to
from hvweb.asgi import application
from hvweb.core.testing import WebsocketCommunicator
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.models import Migration
from hvweb.moves.services import start_migration

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", cookie.encode()),
    ]


async def off_loop(func, *args, **kwargs):
    """``func`` on a thread of the loop's executor, its database connection
    closed after: the thread ends with the test's loop, and a connection it
    kept would never go back to PostgreSQL's pool (ten such leaks and every
    later consumer waits for one: the stream tests' timeouts on PostgreSQL)."""

    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def connect(path: str, headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers)


async def frames_until(communicator, stop, timeout=30.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await communicator.receive_json_from(
            timeout=deadline - time.monotonic()
        )
        got.append(frame)
        if stop(frame):
            return got
    raise AssertionError(f"stream did not reach its stop frame; got {got[-3:]}")


@pytest.fixture
def world():
    w = make_world()
    w.operator = make_member(w.team, "operator")
    w.vm.memory_mib = 64
    w.vm.workload_profile = "web"
    w.vm.write_rate = 20_000
    w.vm.working_set_pages = 4_000
    w.vm.save()
    w.cluster.link_bandwidth_mbps = 200  # about 3 s of moving at speed 1
    w.cluster.save()
    return w


def test_snapshot_then_resume_delivers_every_sequence_number_exactly_once(
    celery_worker, client, world
):
    headers = session_headers(client, world.operator)
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    path = f"/ws/migrations/{migration.pk}/"

    async def scenario():
        first = connect(path, headers)
        assert (await first.connect())[0]
        snap1 = await first.receive_json_from(timeout=10)
        assert snap1["type"] == "snapshot"
        seen1 = await frames_until(
            first, lambda f: f.get("seq", 0) >= snap1["last_seq"] + 8
        )
        await first.disconnect()
        await asyncio.sleep(0.6)  # frames keep coming while nobody listens
        second = connect(path, headers)
        assert (await second.connect())[0]
        snap2 = await second.receive_json_from(timeout=10)
        resume_from = seen1[-1]["seq"]
        assert snap2["last_seq"] > resume_from
        await second.send_json_to({"resume_from": resume_from})
        seen2 = await frames_until(
            second, lambda f: f.get("kind") in ("completed", "failed"), timeout=60
        )
        await second.disconnect()
        return snap1, seen1, seen2

    snap1, seen1, seen2 = asyncio.run(scenario())
    migration.refresh_from_db()
    assert migration.state == "succeeded"
    assert all(f["type"] == "event" for f in seen1 + seen2)
    seqs1 = [f["seq"] for f in seen1]
    seqs2 = [f["seq"] for f in seen2]
    assert seqs1 == list(range(snap1["last_seq"] + 1, seqs1[-1] + 1))
    # Live frames that arrived before the resume request came first: every
    # number once, ordered by seq on the client.
    assert sorted(seqs2) == list(range(seqs1[-1] + 1, migration.last_seq + 1))
    kinds = [f["kind"] for f in seen1 + seen2]
    assert "pass_finished" in kinds and kinds[-1] == "completed"


def test_resume_from_in_the_url_replays_in_order_after_the_snapshot(
    celery_worker, client, world
):
    headers = session_headers(client, world.operator)
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=1)
    path = f"/ws/migrations/{migration.pk}/"

    async def scenario():
        first = connect(path, headers)
        assert (await first.connect())[0]
        snap1 = await first.receive_json_from(timeout=10)
        seen1 = await frames_until(
            first, lambda f: f.get("seq", 0) >= snap1["last_seq"] + 5
        )
        await first.disconnect()
        await asyncio.sleep(0.6)
        second = connect(f"{path}?resume_from={seen1[-1]['seq']}", headers)
        assert (await second.connect())[0]
        snap2 = await second.receive_json_from(timeout=10)
        seen2 = await frames_until(
            second, lambda f: f.get("kind") in ("completed", "failed"), timeout=60
        )
        await second.disconnect()
        return snap1, seen1, snap2, seen2

    snap1, seen1, snap2, seen2 = asyncio.run(scenario())
    migration.refresh_from_db()
    assert snap2["type"] == "snapshot" and snap2["last_seq"] > seen1[-1]["seq"]
    seqs = [f["seq"] for f in seen1 + seen2]
    assert seqs == list(range(snap1["last_seq"] + 1, migration.last_seq + 1))


def test_the_snapshot_of_a_finished_move_holds_its_whole_history(
    celery_worker, client, world
):
    migration = start_migration(
        world.vm, world.hosts[1], world.operator, speed=0, downtime_limit_ms=1
    )
    deadline = time.monotonic() + 60
    while Migration.objects.get(pk=migration.pk).active:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    migration.refresh_from_db()
    headers = session_headers(client, world.operator)

    async def scenario():
        late = connect(f"/ws/migrations/{migration.pk}/", headers)
        assert (await late.connect())[0]
        snap = await late.receive_json_from(timeout=10)
        await late.disconnect()
        return snap

    snap = asyncio.run(scenario())
    assert snap["last_seq"] == migration.last_seq
    assert [s["stage"] for s in snap["stages"]][0] == "configuration_transfer"
    assert len(snap["stages"]) == 7
    assert [p["pass_no"] for p in snap["passes"]] == list(
        range(1, migration.passes + 1)
    )
    assert snap["migration"]["state"] == "succeeded"
    assert snap["log"][-1]["kind"] == "completed"


def test_a_member_of_another_team_cannot_subscribe(client, world):
    stranger = make_member(make_world("RED").team, "administrator")
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    headers = session_headers(client, stranger)

    async def scenario():
        results = []
        for path in (
            f"/ws/migrations/{migration.pk}/",
            f"/ws/clusters/{world.cluster.pk}/",
        ):
            communicator = connect(path, headers)
            connected, _ = await communicator.connect()
            results.append(connected)
            await communicator.disconnect()
        anonymous = connect(f"/ws/clusters/{world.cluster.pk}/", headers[:2])
        results.append((await anonymous.connect())[0])
        return results

    assert asyncio.run(scenario()) == [False, False, False]


def test_a_foreign_origin_is_refused(client, world):
    headers = session_headers(client, world.operator)
    headers[0] = (b"origin", b"https://evil.example")

    async def scenario():
        communicator = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert asyncio.run(scenario()) is False


def test_the_consumers_connections_are_closed_when_their_calls_end(
    client, world, redis_url
):
    """hvweb.core.testing.WebsocketCommunicator: each database call of a consumer closes
    its connection after it, as under daphne. Channels' own communicator kept
    them open in the loop's threads, which ended with the test's loop: on
    PostgreSQL the pool lost one per thread and test until it ran dry."""
    headers = session_headers(client, world.operator)
    opened = []

    def note(sender, connection, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            opened.append(connection)

    async def scenario():
        for path in (f"/ws/clusters/{world.cluster.pk}/", "/ws/migrations/0/"):
            viewer = connect(path, headers)
            await viewer.connect()
            await viewer.disconnect()

    connection_created.connect(note)
    try:
        asyncio.run(scenario())
    finally:
        connection_created.disconnect(note)
    assert opened  # the handshakes read the database off the main thread
    assert [c for c in opened if c.connection is not None] == []


def test_malformed_frames_get_an_error_and_the_stream_goes_on(
    client, world, unworked_queue
):
    # No worker runs the move: its live frames would come between the answers.
    viewer = make_member(world.team, "viewer")
    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    headers = session_headers(client, viewer)

    async def scenario():
        communicator = connect(f"/ws/migrations/{migration.pk}/", headers)
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=10)  # the snapshot
        answers = []
        for raw in (
            "{not json",
            "[1, 2]",
            json.dumps({"resume_from": "x"}),
            json.dumps({"hello": 1}),
        ):
            await communicator.send_to(text_data=raw)
            answers.append(await communicator.receive_json_from(timeout=10))
        await communicator.send_to(bytes_data=b"\xff\xfe")
        answers.append(await communicator.receive_json_from(timeout=10))
        await communicator.send_json_to({"type": "ping"})
        answers.append(await communicator.receive_json_from(timeout=10))
        await communicator.disconnect()
        return answers

    answers = asyncio.run(scenario())
    assert [a["type"] for a in answers] == ["error"] * 5 + ["pong"]
    assert "resume_from" in answers[2]["error"]


def cluster_stream_of_a_move(client, world) -> tuple[dict, list[dict]]:
    """The cluster's snapshot, then its frames while the world's VM moves to
    its second host, up to the move's ``completed`` frame (a worker runs it)."""
    headers = session_headers(client, world.operator)

    async def scenario():
        communicator = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        assert (await communicator.connect())[0]
        snap = await communicator.receive_json_from(timeout=10)
        migration = await off_loop(
            start_migration, world.vm, world.hosts[1], world.operator, speed=0
        )
        ticks = await frames_until(
            communicator,
            lambda t: any(
                f.get("kind") == "completed" and f["migration"] == migration.pk
                for f in t.get("frames", [])
            ),
        )
        await communicator.disconnect()
        return snap, [f for t in ticks for f in t.get("frames", [])]

    return asyncio.run(scenario())


def test_the_cluster_stream_shows_hosts_vms_and_the_move_that_relocates_a_vm(
    celery_worker, client, world
):
    snap, frames = cluster_stream_of_a_move(client, world)
    assert {h["name"] for h in snap["hosts"]} == {h.name for h in world.hosts}
    assert [v["host"] for v in snap["vms"] if v["name"] == world.vm.name] == [
        world.hosts[0].pk
    ]
    online = [
        f
        for f in frames
        if f["kind"] == "stage_started" and f["data"]["stage"] == "online"
    ]
    assert len(online) == 1
    assert (online[0]["vm"], online[0]["destination"]) == (
        world.vm.pk,
        world.hosts[1].pk,
    )


def drop_an_event(migration: Migration, kind: str, **changes) -> int:
    """Journal an event of the move as if the channel layer then lost its frame:
    the rows are written, nothing is sent. Returns its sequence number."""
    from django.db import transaction

    from hvweb.moves.frames import frame
    from hvweb.moves.models import MigrationEvent

    with transaction.atomic():
        m = Migration.objects.select_for_update().get(pk=migration.pk)
        for field, value in changes.items():
            setattr(m, field, value)
        m.last_seq += 1
        m.save()
        MigrationEvent.objects.create(
            migration=m, seq=m.last_seq, kind=kind, data=frame(m, m.last_seq, kind, {})
        )
    return m.last_seq


def test_a_move_page_recovers_a_lost_last_frame_from_the_journal(
    client, world, unworked_queue
):
    from hvweb.moves.consumers import CATCH_UP_S

    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    headers = session_headers(client, world.operator)

    async def scenario():
        viewer = connect(f"/ws/migrations/{migration.pk}/", headers)
        assert (await viewer.connect(timeout=10))[0]
        snap = await viewer.receive_json_from(timeout=10)
        lost = await off_loop(drop_an_event, migration, "cancelled", state="cancelled")
        started = time.monotonic()
        frame = await viewer.receive_json_from(timeout=CATCH_UP_S + 5)
        took = time.monotonic() - started
        await viewer.disconnect()
        return snap, lost, frame, took

    snap, lost, frame, took = asyncio.run(scenario())
    assert lost == snap["last_seq"] + 1
    assert (frame["seq"], frame["kind"], frame["state"]) == (
        lost,
        "cancelled",
        "cancelled",
    )
    assert took <= CATCH_UP_S + 1.5


def test_a_cluster_board_is_corrected_by_the_heartbeat_when_a_frame_is_lost(
    client, world, unworked_queue
):
    from hvweb.moves.hub import HEARTBEAT_S

    migration = start_migration(world.vm, world.hosts[1], world.operator, speed=0)
    headers = session_headers(client, world.operator)

    async def scenario():
        viewer = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        assert (await viewer.connect(timeout=10))[0]
        snap = await viewer.receive_json_from(timeout=10)
        first = await viewer.receive_json_from(timeout=HEARTBEAT_S + 5)
        await off_loop(drop_an_event, migration, "cancelled", state="cancelled")
        second = await viewer.receive_json_from(timeout=HEARTBEAT_S + 5)
        await viewer.disconnect()
        return snap, first, second

    snap, first, second = asyncio.run(scenario())
    assert [m["id"] for m in snap["migrations"]] == [migration.pk]
    assert first["type"] == second["type"] == "heartbeat"
    assert [m["id"] for m in first["moves"]] == [migration.pk]
    assert second["moves"] == []  # the move ended, though no frame said so
    reserved = {h["id"]: h["reserved_mib"] for h in second["hosts"]}
    assert reserved[world.hosts[1].pk] == 0  # its reservation went with it


def test_the_cluster_stream_is_coalesced_into_a_few_ticks_a_second(
    start_worker, client, world
):
    from hvweb.moves.hub import TICK_S

    # Progress faster than the ticks (the default, 5 a second, is close to
    # their 4): there is something to coalesce.
    queue = f"coalesce-{uuid.uuid4().hex[:8]}"
    start_worker(
        "coalesce", queue=queue, concurrency=1, HVWEB_QUEUE=queue,
        HVWEB_PROGRESS_PER_SECOND="20",
    )  # fmt: skip
    headers = session_headers(client, world.operator)

    async def scenario():
        viewer = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        assert (await viewer.connect(timeout=10))[0]
        await viewer.receive_json_from(timeout=10)
        with routed_to(queue):
            migration = await off_loop(
                start_migration, world.vm, world.hosts[1], world.operator, speed=1
            )
        started = time.monotonic()
        got = await frames_until(
            viewer,
            lambda t: any(f["kind"] == "completed" for f in t.get("frames", [])),
            timeout=60,
        )
        took = time.monotonic() - started
        await viewer.disconnect()
        return migration, got, took

    migration, got, took = asyncio.run(scenario())
    ticks = [t for t in got if t["type"] == "tick"]
    frames = [f for t in ticks for f in t["frames"]]
    migration.refresh_from_db()
    progress_sent = migration.events.filter(kind="progress").count()
    assert len(ticks) <= took / TICK_S + 3  # a few a second, not one per frame
    # A tick holds no two progress frames of the move in a row: a later one
    # replaces the one before, unless another frame (a stage, a pass) came
    # between them, which must not be folded over (ClusterHub._add). Every
    # other frame arrives, in order.
    for tick in ticks:
        kinds = [f["kind"] for f in tick["frames"]]
        pairs = zip(kinds, kinds[1:], strict=False)
        assert ("progress", "progress") not in pairs, kinds
    assert len([f for f in frames if f["kind"] == "progress"]) < progress_sent
    others = [f["seq"] for f in frames if f["kind"] != "progress"]
    assert others == sorted(others)
    assert set(
        migration.events.exclude(kind="progress").values_list("seq", flat=True)
    ) == set(others)


def test_a_viewer_arriving_as_the_last_one_leaves_still_gets_the_stream(
    client, world, unworked_queue
):
    """The hub unsubscribes when its last viewer leaves; one joining during that
    must keep a subscription of its own."""
    headers = session_headers(client, world.operator)

    async def scenario():
        first = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        assert (await first.connect(timeout=10))[0]
        await first.receive_json_from(timeout=10)
        second = connect(f"/ws/clusters/{world.cluster.pk}/", headers)
        leaving = asyncio.ensure_future(first.disconnect())
        assert (await second.connect(timeout=10))[0]
        await leaving
        await second.receive_json_from(timeout=10)  # its snapshot
        migration = await off_loop(
            start_migration, world.vm, world.hosts[1], world.operator, speed=0
        )
        got = await frames_until(
            second,
            lambda t: any(f["migration"] == migration.pk for f in t.get("frames", [])),
            timeout=15,
        )
        await second.disconnect()
        return got

    got = asyncio.run(scenario())
    assert got[-1]["type"] == "tick"


def test_ticks_come_less_often_while_their_fan_out_would_take_the_process():
    """A tick to hundreds of viewers on a busy machine took 250 ms to send:
    four a second left daphne nothing for reading the channel layer, and the
    moves' frames waited in Redis until they expired. The fan-out is held to
    FANOUT_SHARE of the hub's time; every frame still goes out."""
    from hvweb.moves.hub import ClusterHub

    class SlowViewer:
        def __init__(self) -> None:
            self.got: list[list[int]] = []

        async def send_frame(self, text: str) -> None:
            time.sleep(0.01)  # a websocket send never waits: it holds the loop
            self.got.append([f["seq"] for f in json.loads(text)["frames"]])

    async def scenario():
        hub = ClusterHub(1)
        viewers = [SlowViewer() for _ in range(20)]  # 200 ms a tick
        for viewer in viewers:
            hub.viewers[viewer] = None
        ticker = asyncio.ensure_future(hub._tick())
        began = time.monotonic()
        for seq in range(1, 41):  # a frame every 50 ms for 2 s
            hub._add({"migration": 1, "seq": seq, "kind": "stage_started"})
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # the last tick
        took = time.monotonic() - began
        ticker.cancel()
        return viewers, took

    viewers, took = asyncio.run(scenario())
    ticks = len(viewers[0].got)
    assert [s for tick in viewers[0].got for s in tick] == list(range(1, 41))
    fan_out = ticks * 20 * 0.01
    assert fan_out / took <= 0.5, (ticks, took)  # FANOUT_SHARE, with a margin
