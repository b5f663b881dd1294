"""Sending one delivery: a signed JSON POST, retried with backoff for a day.

Each attempt is one task run; a failed attempt schedules the next with an
exponential delay (``HVWEB_WEBHOOK_RETRY_BASE_S`` doubling, at most 30 min,
below Redis' one-hour visibility timeout so a waiting retry is not delivered
twice) until a day has passed since the event, then the delivery is marked
failed. An attempt waits at most ``HVWEB_WEBHOOK_TIMEOUT_S`` (5 s) for each
connect and read. Redirects are not followed (one could lead into the
console's own network). The tasks run on their own queue
(``HVWEB_WEBHOOK_QUEUE``), so a slow or dead endpoint never holds a worker
slot a move needs.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hvweb.core.locking import ROW_ONLY

from . import signing, urlcheck
from .events import DELIVER_TASK
from .models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

#: A delivery whose attempt is this late was lost (a Redis flushed or restarted
#: with its queue, a broker down when it was queued): the sweeper sends it again.
LOST_AFTER = timedelta(minutes=5)
#: How long a delivery is retried before it is given up.
RETRY_FOR = timedelta(days=1)
#: The longest wait between two attempts (seconds).
MAX_DELAY_S = 30 * 60
USER_AGENT = "hvweb-webhooks/1"


def delay_after(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
    return min(settings.HVWEB_WEBHOOK_RETRY_BASE_S * 2 ** (attempt - 1), MAX_DELAY_S)


def post(url: str, secret: str, delivery: Delivery) -> int:
    """POST the delivery's payload, signed; the HTTP status, or raise."""
    vetted = urlcheck.check(url)  # again: the name may resolve elsewhere now
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hvweb-Event": delivery.event,
            "X-Hvweb-Delivery": str(delivery.pk),
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.sign(secret, timestamp, body),
        },
    )
    send = urlcheck.opener(vetted[0] if vetted else None)
    with send.open(request, timeout=settings.HVWEB_WEBHOOK_TIMEOUT_S) as reply:
        reply.read(65536)
        return reply.status


@shared_task(name=DELIVER_TASK, ignore_result=True, acks_late=True)
def deliver(delivery_id: int, attempt: int) -> str:
    """Attempt number ``attempt`` of a delivery; a stale or repeated one does
    nothing, nor does one whose endpoint was deleted or turned off."""
    delivery = (
        Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return "gone"  # the endpoint was deleted, and its deliveries with it
    if delivery.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        return delivery.status
    if delivery.attempts != attempt - 1:
        return f"stale attempt {attempt}"
    if not delivery.endpoint.active:
        return "endpoint off"
    code: int | None = None
    error = ""
    try:
        code = post(delivery.endpoint.url, delivery.endpoint.secret, delivery)
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}: {exc.reason}"
    except urlcheck.UnsafeURL as exc:
        error = f"refused: the URL {exc}"
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
        reason = getattr(exc, "reason", exc)
        error = f"{type(reason).__name__}: {reason}"
    ok = code is not None and 200 <= code < 300 and not error
    now = timezone.now()
    with transaction.atomic():
        current = (
            Delivery.objects.select_for_update(**ROW_ONLY)
            .filter(pk=delivery_id)
            .first()
        )
        if current is None or current.attempts != attempt - 1:
            return "gone or raced"
        current.attempts = attempt
        current.last_attempt_at = now
        current.last_status_code = code
        current.last_error = "" if ok else (error or f"HTTP {code}")
        retry_in = None
        if ok:
            current.status = DeliveryStatus.DELIVERED
            current.delivered_at = now
            current.next_attempt_at = None
        else:
            wait = delay_after(attempt)
            if now + timedelta(seconds=wait) - current.created_at <= RETRY_FOR:
                current.status = DeliveryStatus.RETRYING
                current.next_attempt_at = now + timedelta(seconds=wait)
                retry_in = wait
            else:
                current.status = DeliveryStatus.FAILED
                current.next_attempt_at = None
        current.save()
        if retry_in is not None:
            transaction.on_commit(
                lambda: deliver.apply_async(
                    (delivery_id, attempt + 1), countdown=retry_in
                )
            )
    if not ok:
        log.info("webhook delivery %s attempt %s failed: %s", delivery_id, attempt,
                 current.last_error)  # fmt: skip
    return current.status


@shared_task(name="hvweb.webhooks.requeue_lost", ignore_result=True)
def requeue_lost() -> list[int]:
    """Queue again the deliveries whose next attempt never came (run by beat).

    A delivery is pending until its first attempt and retrying between
    attempts; one still so well after its attempt was due lost its task. It
    is sent again as the same attempt: if the old task turns up after all,
    whichever runs second finds the attempt done and does nothing.
    """
    now = timezone.now()
    late = now - LOST_AFTER
    lost = list(
        Delivery.objects.filter(
            Q(status=DeliveryStatus.PENDING, created_at__lt=late)
            | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lt=late)
        ).values_list("pk", "attempts")
    )
    for pk, attempts in lost:
        deliver.apply_async((pk, attempts + 1))
    if lost:
        log.warning("re-queued %s lost webhook deliveries", len(lost))
    return [pk for pk, _ in lost]
