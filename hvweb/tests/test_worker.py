"""A real Celery worker and the Redis channel layer carry work across processes."""

import asyncio
import uuid

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conftest import WebsocketCommunicator
from hvweb.core.tasks import ping


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
