"""Where a webhook may point: https, and never into the console's own network.

An endpoint's URL is fetched by the server, so a URL naming a loopback or
private address would let a team administrator make hvweb call services that
only it can reach, such as a cloud's metadata service at 169.254.169.254
(server-side request forgery; OWASP's cheat sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Server_Side_Request_Forgery_Prevention_Cheat_Sheet.html,
and https://apyguard.com/resources/guides/owasp-api7-ssrf: allow-list the
scheme, block private ranges, localhost and metadata addresses, resolve and
check the name before each request). Redirects are not followed. The check
runs when an endpoint is saved and again before every delivery, since a name
can resolve elsewhere later. A name that answers differently between the
check and the connection a moment later (DNS rebinding) is not caught here;
an egress proxy or firewall that blocks private ranges closes that gap.
``HVWEB_WEBHOOKS_ALLOW_LOCAL`` lifts both rules, for local testing only.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

__all__ = ["UnsafeURL", "check"]


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"the host {host!r} does not resolve ({exc}).") from None
    return sorted({info[4][0] for info in infos})


def check(url: str) -> None:
    """Raise :class:`UnsafeURL` unless ``url`` may receive webhooks now."""
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
        return
    for address in _resolve(parts.hostname, port):
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeURL(
                f"resolves to {ip}, a loopback, private or reserved address: "
                "webhooks go to public addresses only."
            )
