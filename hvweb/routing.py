"""Websocket routes; ``hvweb.asgi`` wraps them in the origin check and session auth."""

from django.urls import path

from hvweb.moves.consumers import ClusterConsumer, MigrationConsumer

websocket_urlpatterns = [
    path("ws/migrations/<int:pk>/", MigrationConsumer.as_asgi()),
    path("ws/clusters/<int:pk>/", ClusterConsumer.as_asgi()),
]
