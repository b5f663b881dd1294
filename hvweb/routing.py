"""Websocket routes; ``hvweb.asgi`` wraps them in the origin check and session auth."""

websocket_urlpatterns: list = []
