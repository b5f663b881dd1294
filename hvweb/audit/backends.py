"""Login rate limiting: django-axes, for every login that comes with a request."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class RateLimitedLoginBackend(AxesStandaloneBackend):
    """Axes' lockout check, skipped for logins made by code without a request.

    Every web entry point (the login page, the admin's login, the API's token
    endpoint) passes the request to ``authenticate()``, so axes counts and
    refuses there. Code that authenticates without one (Django's test client
    ``login()``, a shell) has no address to rate-limit; axes would raise for it.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
