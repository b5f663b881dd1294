"""A Content-Security-Policy on every response: scripts and styles from this
server only.

The pages keep no inline script or style (a test enforces it), Plotly.js and
Swagger UI are served from here, and the docs page loads its start-up script
as a file (drf-spectacular's split view). One allowance remains: Plotly.js
puts its few global rules (the modebar's tooltips, the notifier) into an
empty ``<style>`` element through the CSSOM (``insertRule``, which a policy
does not govern), so ``style-src`` allows an inline style whose content is the
empty string, by that string's hash, and nothing else. Without it Plotly's
``addStyleRule`` finds no sheet and the modebar's tooltips lose their style
(plotly.js issues 2355 and 7543, https://github.com/plotly/plotly.js/issues/7543).
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["POLICY", "ContentSecurityPolicyMiddleware"]

#: The CSP hash of an empty inline style: sha256 of b"".
EMPTY_STYLE = "'sha256-" + base64.b64encode(hashlib.sha256(b"").digest()).decode() + "'"

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {EMPTY_STYLE}",
        # Swagger UI and the admin draw some icons as data: SVGs.
        "img-src 'self' data:",
        "font-src 'self'",
        # 'self' covers the page's own ws:/wss: origin (CSP Level 3).
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Sets :data:`POLICY` on every response that has no policy of its own."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
