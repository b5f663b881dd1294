"""The websockets' origin check: the page's origin, port included.

Channels' ``AllowedHostsOriginValidator`` compares only the Origin's host name
with ``ALLOWED_HOSTS``, so a page served from ``http://127.0.0.1:1`` (any
other program on the machine) could open a socket with the user's cookie.
Here the Origin must be the site itself, as a browser sends it for its own
pages: the same scheme's port and host as the request's Host header (and
that host allowed), or one of ``CSRF_TRUSTED_ORIGINS`` exactly, the same
rule Django's CSRF check applies to a POST.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

__all__ = ["SameOriginValidator", "origin_allowed"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """Whether a socket with this Origin may reach this Host."""
    if not origin or not host:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = str(parts.port) if parts.port else None
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return False
    host_name, host_port = split_domain_port(host)
    if not host_name or not validate_host(host_name, settings.ALLOWED_HOSTS):
        return False
    bare = host_name[1:-1] if host_name.startswith("[") else host_name
    return parts.hostname == bare and (origin_port or default) == (host_port or default)


class SameOriginValidator:
    """ASGI middleware: refuse a websocket whose Origin is not this site."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if origin_allowed(_header(scope, b"origin"), _header(scope, b"host")):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
