"""A real Celery worker and the Redis channel layer carry work across processes."""

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from hvweb.core.tasks import ping
from hvweb.core.testing import WebsocketCommunicator


@pytest.mark.django_db(transaction=True)
def test_a_task_round_trips_through_a_real_worker(celery_worker):
    result = ping.delay()
    assert result.get(timeout=30) == {
        "pong": True,
        "worker": celery_worker.split("@")[1],
    }


class GroupListener(AsyncJsonWebsocketConsumer):
    """Joins the group named in the scope and forwards realtime envelopes."""

    async def connect(self):
        self.group = self.scope["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def hvweb_event(self, message):
        await self.send(text_data=message["text"])


@pytest.mark.django_db(transaction=True)
def test_an_event_sent_by_a_worker_reaches_a_websocket_consumer(celery_worker):
    group = f"test.{uuid.uuid4().hex}"

    async def scenario():
        communicator = WebsocketCommunicator(GroupListener.as_asgi(), "/ws/test/")
        communicator.scope["group"] = group
        connected, _ = await communicator.connect()
        assert connected
        await asyncio.to_thread(lambda: ping.delay(reply_group=group).get(timeout=30))
        frame = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return frame

    frame = asyncio.run(scenario())
    assert (frame["type"], frame["kind"]) == ("event", "pong")
    assert frame["worker"] == celery_worker.split("@")[1]


def _nice_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # stat's 19th field, counted after the name


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    kids.append(int(entry.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_pool_runs_the_simulations_below_the_web_process_priority(start_worker):
    """The simulated guests must not starve daphne on a shared machine: the
    worker's pool processes run HVWEB_WORKER_NICE steps nicer; its main
    process (which takes the jobs off the queue) keeps its priority."""
    worker = start_worker("nice", concurrency=2, HVWEB_WORKER_NICE="7")
    main = worker.process.pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # each child lowers itself once forked
        pool = _children_of(main)
        steps = {_nice_of(pid) - _nice_of(main) for pid in pool}
        if len(pool) >= 2 and steps == {7}:
            break
        time.sleep(0.1)
    assert len(pool) >= 2
    assert steps == {7}
