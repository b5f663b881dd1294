"""Where a webhook may point: https, and never into the console's own network.

An endpoint's URL is fetched by the server, so a URL naming a loopback or
private address would let a team administrator make hvweb call services that
only it can reach, such as a cloud's metadata service at 169.254.169.254
(server-side request forgery; OWASP's cheat sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html,
and https://apyguard.com/resources/guides/owasp-api7-ssrf: allow-list the
scheme, block private ranges, localhost and metadata addresses, resolve and
check the name before each request, do not follow redirects). The check
runs when an endpoint is saved and again before every delivery, since a name
can resolve elsewhere later; the delivery then connects to the address the
check vetted (:func:`opener`), while TLS still verifies the certificate
against the URL's host name, so a name that answers differently a moment
later (DNS rebinding) does not reach an internal address either.
``HVWEB_WEBHOOKS_ALLOW_LOCAL`` lifts both rules, for local testing only.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

__all__ = ["UnsafeURL", "check", "opener"]


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve ({exc}).") from None
    return sorted({info[4][0] for info in infos})


def check(url: str) -> list[str]:
    """Raise :class:`UnsafeURL` unless ``url`` may receive webhooks now.

    Returns the vetted addresses the host resolves to (none are vetted, and
    none returned, when ``HVWEB_WEBHOOKS_ALLOW_LOCAL`` is on).
    """
    parts = urlsplit(url)
    allow_local = settings.HVWEB_WEBHOOKS_ALLOW_LOCAL
    if parts.scheme != "https" and not (allow_local and parts.scheme == "http"):
        raise UnsafeURL(
            "must start with https:// (plain http only with "
            "HVWEB_WEBHOOKS_ALLOW_LOCAL, for local testing)."
        )
    if not parts.hostname:
        raise UnsafeURL("must name a host.")
    if parts.username or parts.password:
        raise UnsafeURL("must not carry a user or password; the secret signs.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("has an invalid port.") from None
    if allow_local:
        return []
    addresses = _resolve(parts.hostname, port)
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeURL(
                f"resolves to {ip}, a loopback, private or reserved address: "
                "webhooks go to public addresses only."
            )
    return addresses


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirect to {newurl} not followed", headers, fp
        )


def _pinned(connection_class, address: str):
    """``connection_class`` that connects to ``address`` whatever its host's
    name resolves to now; HTTPS still sends and verifies that name (SNI,
    certificate), since ``http.client`` wraps the socket with ``self.host``."""

    class Pinned(connection_class):
        def __init__(self, host, *args, **kwargs):
            super().__init__(host, *args, **kwargs)
            create = self._create_connection

            def to_address(where, *rest, **named):
                return create((address, where[1]), *rest, **named)

            self._create_connection = to_address

    return Pinned


def opener(
    address: str | None, context: ssl.SSLContext | None = None
) -> urllib.request.OpenerDirector:
    """An opener that follows no redirect and, given the ``address`` that
    :func:`check` vetted, connects there and nowhere else."""
    if address is None:
        return urllib.request.build_opener(
            _NoRedirects, urllib.request.HTTPSHandler(context=context)
        )

    class PinnedHTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(_pinned(http.client.HTTPConnection, address), req)

    class PinnedHTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(
                _pinned(http.client.HTTPSConnection, address), req,
                context=self._context,
            )  # fmt: skip

    return urllib.request.build_opener(
        _NoRedirects, PinnedHTTP, PinnedHTTPS(context=context)
    )
