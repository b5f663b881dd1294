"""The client's address: the proxy's ``X-Forwarded-For`` only from trusted proxies.

Behind the README's nginx, daphne sees every request come from the proxy, so
the login lockout (five failures for one user name from one address) locked a
user out for everyone. ``HVWEB_TRUSTED_PROXIES`` lists the proxies' addresses
(or networks); a request from one of them is attributed to the address its
``X-Forwarded-For`` names, read from the right and skipping the trusted
proxies themselves (the left part is whatever the client chose to send).
From any other address the header is ignored: a client cannot pick the
address it is locked out or audited under. The lockout (django-axes) and the
audit trail (django-auditlog) both take their address from here.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings

__all__ = ["TrustedProxyAuditlogMiddleware", "client_ip", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.HVWEB_TRUSTED_PROXIES))


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    return address is not None and any(address in n for n in networks)


def client_ip(request) -> str | None:
    """The address a request came from, as the deployment's proxies say it."""
    remote = request.META.get("REMOTE_ADDR")
    networks = trusted_networks()
    if not networks or not _trusted(_address(remote or ""), networks):
        return remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return remote  # a malformed chain: keep what the socket says
        if not _trusted(address, networks):
            return str(address)
    return remote


class TrustedProxyAuditlogMiddleware(AuditlogMiddleware):
    """auditlog's middleware, with the address from :func:`client_ip`.

    auditlog's own takes the first ``X-Forwarded-For`` entry from anyone, so a
    client could write any address into the audit trail.
    """

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None

    def __call__(self, request):
        from hvweb.audit.context import acting, via_for_path

        with acting(None, via_for_path(request.path)):
            return super().__call__(request)
