"""What the migration commands share: acting as a user, the JSON record."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from hvweb.api.serializers import FlatMigrationSerializer
from hvweb.inventory.choices import MigrationPolicy, PerformanceOption
from hvweb.moves.models import Migration


def add_move_options(parser) -> None:
    """The options of a move, as ``live_migrate`` and ``drain_host`` take them."""
    parser.add_argument(
        "--speed", type=float,
        help="simulated seconds per wall second (0: unpaced; default: the "
        "cluster's simulation speed)",
    )  # fmt: skip
    parser.add_argument(
        "--downtime-limit", type=int, dest="downtime_limit_ms", metavar="MS",
        help="stop pre-copy once the rest fits this blackout (ms; 0: no limit)",
    )  # fmt: skip
    parser.add_argument(
        "--performance-option", choices=PerformanceOption.values,
        help="default: the cluster's",
    )  # fmt: skip
    parser.add_argument(
        "--policy", choices=MigrationPolicy.values,
        help="convergence policy (default: the cluster's default_policy)",
    )  # fmt: skip


def move_options(o: dict[str, Any]) -> dict[str, Any]:
    """The move options given on the command line, for ``start_migration``."""
    keys = ("speed", "downtime_limit_ms", "performance_option", "policy")
    return {k: o[k] for k in keys if o[k] is not None}


#: The exit code of a bad option, as argparse uses it.
EXIT_USAGE = 2


def exit_bad_options(stderr, error: ValidationError) -> NoReturn:
    """Name each bad option and its rule on stderr; exit 2."""
    for field, messages in error.message_dict.items():
        stderr.write(f"{field}: {' '.join(messages)}")
    sys.exit(EXIT_USAGE)


def user_named(name: str | None):
    """The user to act as; None (no ``--user``) acts as the server itself."""
    if not name:
        return None
    try:
        return get_user_model().objects.get(username=name, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"--user: no active user named {name!r}") from None


def record(m: Migration) -> dict[str, Any]:
    """The move as ``--json`` prints it: the API's record with objects by name.

    Two keys are the CLI's own: ``error`` (``{code, stage, message}`` of a move
    that failed or was cancelled, else null) and ``passes``, the pass count
    under the name scripts used before the record took the API's
    (``pass_count``).
    """
    full = FlatMigrationSerializer(
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        ).get(pk=m.pk)
    ).data
    error = None
    if full["error_code"]:
        error = {
            "code": full["error_code"],
            "stage": full["failed_stage"] or None,
            "message": full["error_message"],
        }
    return {**full, "passes": full["pass_count"], "error": error}
