"""What the migration commands share: acting as a user, the JSON record."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from hvweb.moves.models import Migration
from hvweb.moves.snapshot import migration_dict


def user_named(name: str | None):
    """The user to act as; None (no ``--user``) acts as the server itself."""
    if not name:
        return None
    try:
        return get_user_model().objects.get(username=name, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"--user: no active user named {name!r}") from None


def record(m: Migration) -> dict[str, Any]:
    """The move as ``--json`` prints it: its record, with names for the objects."""
    full = migration_dict(
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ).get(pk=m.pk)
    )
    error = None
    if full["error_code"]:
        error = {
            "code": full["error_code"],
            "stage": full["failed_stage"],
            "message": full["error_message"],
        }
    keep = (
        "id", "state", "stage", "passes", "stop_reason", "bytes_sent",
        "final_dirty_pages", "total_time_s", "downtime_s", "sampled", "verified",
        "predicted", "requested_by",
    )  # fmt: skip
    return {
        **{key: full[key] for key in keep},
        "vm": full["vm"]["name"],
        "source": full["source"]["name"],
        "destination": full["destination"]["name"],
        "error": error,
    }
