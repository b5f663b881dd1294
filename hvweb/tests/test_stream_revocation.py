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
from channels.testing import WebsocketCommunicator
from django.test import Client

from hvweb.asgi import application
from hvweb.core import realtime
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
    """The next message the server sends: a frame (parsed) or a close."""
    message = await ws.receive_output(timeout=timeout)
    if message["type"] == "websocket.close":
        return {"closed": message.get("code")}
    return json.loads(message["text"])


def _emit(cluster_id: int, marker: str) -> None:
    realtime.emit([realtime.cluster_group(cluster_id)], {"kind": marker, "seq": 0})


def _remove_membership(user, world) -> None:
    Membership.objects.filter(user=user, team=world.team).delete()


def _deactivate(user, world) -> None:
    user.is_active = False
    user.save()


def _move_membership_to_another_team(user, world) -> None:
    membership = Membership.objects.get(user=user, team=world.team)
    membership.team = Team.objects.create(name="Elsewhere")
    membership.save()


def _hand_the_cluster_to_another_team(user, world) -> None:
    world.cluster.team = Team.objects.create(name="Elsewhere")
    world.cluster.save()


@pytest.mark.parametrize(
    "revoke",
    [
        _remove_membership,
        _deactivate,
        _move_membership_to_another_team,
        _hand_the_cluster_to_another_team,
    ],
)
def test_a_revoked_cluster_stream_closes_before_the_next_frame(revoke):
    world = make_world()
    leaving = make_member(world.team, "viewer", "leaving")
    staying = make_member(world.team, "viewer", "staying")
    if revoke is _hand_the_cluster_to_another_team:
        staying = make_member(Team.objects.create(name="Heir"), "viewer", "heir")
    path = f"/ws/clusters/{world.cluster.pk}/"
    leaving_headers, staying_headers = _headers(leaving), _headers(staying)

    async def scenario():
        gone = await _open(path, leaving_headers)
        kept = (
            await _open(path, staying_headers)
            if revoke is not _hand_the_cluster_to_another_team
            else None
        )
        await database_sync_to_async(revoke)(leaving, world)
        error = await _next(gone)
        closed = await _next(gone)
        await database_sync_to_async(_emit)(world.cluster.pk, "after")
        with pytest.raises(asyncio.TimeoutError):
            await gone.receive_output(timeout=1.5)  # the frame never arrives
        other = await _next(kept) if kept else None
        if kept:
            await kept.disconnect()
        return error, closed, other

    error, closed, other = asyncio.run(scenario())
    assert error["type"] == "error" and "access revoked" in error["error"]
    assert closed == {"closed": 4403}
    if other is not None:
        assert other["kind"] == "after"  # the others' streams go on


def test_a_lowered_role_keeps_the_stream_and_its_frames():
    world = make_world()
    user = make_member(world.team, "administrator", "ann")
    path = f"/ws/clusters/{world.cluster.pk}/"
    headers = _headers(user)

    def lower(user, world):
        Membership.objects.filter(user=user).update(role="viewer")
        Membership.objects.get(user=user).save()  # the signal, as the admin sends it

    async def scenario():
        ws = await _open(path, headers)
        await database_sync_to_async(lower)(user, world)
        await asyncio.sleep(0.5)  # the re-check ran, and kept the stream
        await database_sync_to_async(_emit)(world.cluster.pk, "after")
        frame = await _next(ws)
        await ws.disconnect()
        return frame

    assert asyncio.run(scenario())["kind"] == "after"


def test_a_revoked_migration_stream_closes_too():
    world = make_world()
    operator = make_member(world.team, "operator", "otto")
    migration = start_migration(world.vm, world.hosts[1], operator, speed=0)
    headers = _headers(operator)

    async def scenario():
        ws = await _open(f"/ws/migrations/{migration.pk}/", headers)
        await database_sync_to_async(_remove_membership)(operator, world)
        return await _next(ws), await _next(ws)

    error, closed = asyncio.run(scenario())
    assert error["type"] == "error" and closed == {"closed": 4403}


def test_without_the_revocation_the_frame_would_arrive():
    """The control: the same stream, unrevoked, receives the frame the tests
    above show never arrives (so their timeouts can fail)."""
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
