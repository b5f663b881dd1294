"""What the migration commands share: acting as a user, the JSON record."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from hvweb.moves.models import Migration


def user_named(name: str | None):
    """The user to act as; None (no ``--user``) acts as the server itself."""
    if not name:
        return None
    try:
        return get_user_model().objects.get(username=name, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"--user: no active user named {name!r}") from None


def record(m: Migration) -> dict[str, Any]:
    """The move as ``--json`` prints it."""
    m = Migration.objects.select_related("vm", "source", "destination").get(pk=m.pk)
    error = None
    if m.error_code:
        error = {
            "code": m.error_code,
            "stage": m.failed_stage or None,
            "message": m.error_message,
        }
    return {
        "id": m.pk,
        "vm": m.vm.name,
        "state": m.state,
        "stage": m.stage or None,
        "source": m.source.name,
        "destination": m.destination.name,
        "passes": m.passes,
        "stop_reason": m.stop_reason or None,
        "bytes_sent": m.bytes_sent,
        "final_dirty_pages": m.final_dirty_pages,
        "total_time_s": m.total_time_s,
        "downtime_s": m.downtime_s,
        "sampled": m.sampled,
        "verified": m.verified,
        "predicted": m.predicted or None,
        "error": error,
    }
