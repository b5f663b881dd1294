"""An open websocket follows its user's access: when a membership goes, the account
is deactivated or the cluster changes hands, the stream closes (4403) and the next
frame never reaches it; a change that keeps access keeps the stream.

Real channel layer (Redis), real database, the ASGI application as daphne runs it.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from hvweb.asgi import application
from hvweb.core import realtime
from hvweb.core.testing import WebsocketCommunicator
from hvweb.inventory.models import Membership, Team
from hvweb.inventory.testing import make_member, make_world
from hvweb.moves.services import start_migration

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_url", "unworked_queue"),
]


def _headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]


async def _open(path: str, headers) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await ws.connect(timeout=10)
    assert connected
    snapshot = await ws.receive_json_from(timeout=10)
    assert snapshot["type"] == "snapshot"
    return ws


async def _next(ws, timeout=5.0) -> dict:
    """The next message the server sends: a frame (parsed) or a close.

    A cluster's stream is coalesced (``moves.hub``): its frames come inside
    ticks, between heartbeats; the first frame of the next tick is the frame.
    """
    while True:
        message = await ws.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return {"closed": message.get("code")}
        frame = json.loads(message["text"])
        if frame.get("type") == "heartbeat":
            continue
        if frame.get("type") == "tick":
            return frame["frames"][0]
        return frame


def _emit(cluster_id: int, marker: str) -> None:
    realtime.emit([realtime.cluster_group(cluster_id)], {"kind": marker, "seq": 0})


def _remove_membership(user, world) -> None:
    Membership.objects.filter(user=user, team=world.team).delete()


def _deactivate(user, world) -> None:
    user.is_active = False
    user.save()


def _move_membership_to_another_team(user, world) -> None:
    membership = Membership.objects.get(user=user, team=world.team)
    membership.team = Team.objects.get_or_create(name="Elsewhere")[0]
    membership.save()


def _hand_the_cluster_to_another_team(user, world) -> None:
    world.cluster.team = Team.objects.get_or_create(name="Elsewhere")[0]
    world.cluster.save()


def test_revoked_streams_close_before_the_next_frame_and_the_others_go_on():
    """One scene for every kind of revocation (a single event loop: the
    websocket stack's thread pools are set up once)."""
    world = make_world()
    handed = make_world("RED")
    removed = make_member(world.team, "viewer", "removed")
    deactivated = make_member(world.team, "viewer", "deactivated")
    moved = make_member(world.team, "viewer", "moved")
    staying = make_member(world.team, "viewer", "staying")
    lowered = make_member(world.team, "administrator", "lowered")
    red_viewer = make_member(handed.team, "viewer", "red-viewer")
    operator = make_member(world.team, "operator", "otto")
    migration = start_migration(world.vm, world.hosts[1], operator, speed=0)
    blue = f"/ws/clusters/{world.cluster.pk}/"
    red = f"/ws/clusters/{handed.cluster.pk}/"
    revocations = [
        (blue, removed, _remove_membership, world),
        (blue, deactivated, _deactivate, world),
        (blue, moved, _move_membership_to_another_team, world),
        (red, red_viewer, _hand_the_cluster_to_another_team, handed),
        (f"/ws/migrations/{migration.pk}/", operator, _remove_membership, world),
    ]
    headers = {
        u.pk: _headers(u) for u in (*(r[1] for r in revocations), staying, lowered)
    }

    def lower(user, world):
        membership = Membership.objects.get(user=user)
        membership.role = "viewer"
        membership.save()

    async def scenario():
        gone = [await _open(path, headers[user.pk]) for path, user, _, _ in revocations]
        kept = [await _open(blue, headers[u.pk]) for u in (staying, lowered)]
        await database_sync_to_async(lower)(lowered, world)
        outcomes = []
        for ws, (_, user, revoke, scene) in zip(gone, revocations, strict=True):
            await database_sync_to_async(revoke)(user, scene)
            outcomes.append((await _next(ws), await _next(ws)))
        await database_sync_to_async(_emit)(world.cluster.pk, "after")
        await database_sync_to_async(_emit)(handed.cluster.pk, "after")
        frames = [await _next(ws) for ws in kept]  # the frame is out by now
        await asyncio.sleep(0.5)
        # ... and never reached a revoked stream. (Checked without a timeout
        # on receive, which would cancel the consumer rather than disconnect it.)
        nothing = [await ws.receive_nothing(timeout=0.5) for ws in gone]
        assert nothing == [True] * len(gone)
        for ws in kept + gone:
            await ws.disconnect()
        return outcomes, frames

    outcomes, frames = asyncio.run(scenario())
    for (error, closed), (_, _, revoke, _) in zip(outcomes, revocations, strict=True):
        assert error["type"] == "error", (revoke.__name__, error)
        assert "access revoked" in error["error"]
        assert closed == {"closed": 4403}, (revoke.__name__, closed)
    # The others' streams go on, a lowered role (still a viewer) included.
    assert [f["kind"] for f in frames] == ["after", "after"]


def test_without_the_revocation_the_frame_would_arrive():
    """The control: an unrevoked stream receives the frame the test above shows
    never arrives (so its timeouts can fail)."""
    world = make_world()
    user = make_member(world.team, "viewer", "vic")
    headers = _headers(user)

    async def scenario():
        ws = await _open(f"/ws/clusters/{world.cluster.pk}/", headers)
        await database_sync_to_async(_emit)(world.cluster.pk, "after")
        frame = await _next(ws)
        await ws.disconnect()
        return frame

    assert asyncio.run(scenario())["kind"] == "after"
