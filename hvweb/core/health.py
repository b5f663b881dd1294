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


def _workers() -> dict[str, object]:
    replies = celery_app.control.ping(timeout=1.5, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping within 1.5 s")
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
