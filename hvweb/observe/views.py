"""``/metrics``: the Prometheus exposition, for a scraper holding the bearer token.

Scrapers are not users: they present ``Authorization: Bearer <token>`` with the
token set in ``HVWEB_METRICS_TOKEN``. Without that setting the endpoint does
not exist (404): an endpoint nobody can authenticate to is hidden like any
object outside one's teams, and a console that never configured a scraper
shows no sign of one. With it, a missing or wrong token gets 401 with a
``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3) and no figures: the
metrics name every team's clusters, hosts and VMs.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import registry


def _presented_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.HVWEB_METRICS_TOKEN
    if not expected:
        raise Http404("metrics are off: set HVWEB_METRICS_TOKEN")
    if not hmac.compare_digest(_presented_token(request).encode(), expected.encode()):
        response = HttpResponse(
            "A bearer token is required: Authorization: Bearer <HVWEB_METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="hvweb metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
