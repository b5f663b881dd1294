"""``/healthz``: whether the database, Redis and at least one worker answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hvweb.celery import app as celery_app

log = logging.getLogger(__name__)


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _redis() -> dict[str, object]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"embedded": settings.REDIS_EMBEDDED}


#: How long a worker may take to answer a ping before it counts as gone.
PING_TIMEOUT_S = 1.5
#: Once a worker has answered, a late reply is waited for this long again
#: before /healthz says 503: a worker busy starting its pool or a move answers
#: late, and a health check that flips 200 -> 503 -> 200 on that sends a load
#: balancer or an operator chasing nothing. A worker that is gone is still
#: reported after PING_TIMEOUT_S + PATIENCE_S.
PATIENCE_S = 3.0
#: Whether a worker has answered this process's /healthz yet.
_answered = False


def _workers() -> dict[str, object]:
    global _answered
    replies = celery_app.control.ping(timeout=PING_TIMEOUT_S, limit=1)
    waited = PING_TIMEOUT_S
    if not replies and _answered:
        replies = celery_app.control.ping(timeout=PATIENCE_S, limit=1)
        waited += PATIENCE_S
    if not replies:
        _answered = False  # gone: the next check does not wait twice
        raise RuntimeError(f"no Celery worker answered a ping within {waited:g} s")
    _answered = True
    return {"answered": sorted(name for reply in replies for name in reply)}


CHECKS: dict[str, Callable[[], dict[str, object]]] = {
    "database": _database,
    "redis": _redis,
    "worker": _workers,
}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers; 503 naming those that do not."""
    report: dict[str, object] = {}
    errors: dict[str, str] = {}  # the failing checks, in order
    for name, check in CHECKS.items():
        started = time.monotonic()
        if name == "worker" and "redis" in errors:
            # Workers are reached through Redis: asking would only wait for a timeout.
            errors[name] = "not asked: Redis does not answer"
            report[name] = {"ok": False, "error": errors[name]}
            continue
        try:
            detail = check()
            report[name] = {"ok": True, **detail}
        except Exception as exc:  # a health check reports every failure, whatever it is
            errors[name] = f"{type(exc).__name__}: {exc}"
            report[name] = {"ok": False, "error": errors[name]}
        report[name]["ms"] = round((time.monotonic() - started) * 1000, 1)  # type: ignore[index]
    body = {
        "status": "failing" if errors else "ok",
        "failing": list(errors),
        "checks": report,
    }
    if errors:
        log.warning(
            "/healthz: %s",
            "; ".join(f"{name}: {error}" for name, error in errors.items()),
        )
    return JsonResponse(body, status=503 if errors else 200)
