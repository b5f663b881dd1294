"""Websocket routes; ``hvweb.asgi`` wraps them in the origin check and session auth.

The last route catches every other path: Channels' ``URLRouter`` raises for a
path it does not know, and daphne answered that with a 500. Here it is refused
like an object one may not see (close code 4404, before the handshake).
"""

from django.urls import path, re_path

from hvweb.moves.consumers import ClusterConsumer, MigrationConsumer


async def no_such_path(scope, receive, send) -> None:
    """Refuse the handshake of a websocket path that does not exist."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 4404})


websocket_urlpatterns = [
    path("ws/migrations/<int:pk>/", MigrationConsumer.as_asgi()),
    path("ws/clusters/<int:pk>/", ClusterConsumer.as_asgi()),
    re_path(r"", no_such_path),
]
