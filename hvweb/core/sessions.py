"""Sessions that end after ``HVWEB_SESSION_HOURS`` of inactivity, renewed by use.

``SESSION_COOKIE_AGE`` is the lifetime; a request renews the session (its
expiry in the database and the cookie's) once at least a minute has passed
since the last renewal, rather than writing the session on every request as
``SESSION_SAVE_EVERY_REQUEST`` would.
"""

from __future__ import annotations

import time

__all__ = ["RenewSessionMiddleware"]

#: Seconds between two renewals of one session.
RENEW_EVERY_S = 60
_KEY = "_hvweb_renewed"


class RenewSessionMiddleware:
    """Renew a signed-in session (after the session and auth middleware)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and user is not None and user.is_authenticated:
            now = int(time.time())
            if now - session.get(_KEY, 0) >= RENEW_EVERY_S:
                session[_KEY] = now  # marks it modified: saved, cookie re-sent
        return self.get_response(request)
