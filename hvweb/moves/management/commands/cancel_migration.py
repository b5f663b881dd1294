"""``manage.py cancel_migration ID``: cancel a queued move or one in stages 1–3."""

from __future__ import annotations

import json
import sys

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from hvweb.audit.context import AuditedCommand
from hvweb.moves.models import Migration
from hvweb.moves.services import CancelRefused, cancel_migration

from ._common import record, user_named


class Command(AuditedCommand):
    help = "Cancel a live migration (while queued or in stages 1-3)."

    def add_arguments(self, parser):
        parser.add_argument("id", type=int, help="the move's number")
        parser.add_argument("--user", help="act as this user (their teams and role)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **o):
        user = user_named(o["user"])
        moves = Migration.objects.all()
        if user is not None:
            moves = moves.restrict(user)
        migration = moves.filter(pk=o["id"]).first()
        if migration is None:
            raise CommandError(f"id: no move #{o['id']}")
        try:
            migration = cancel_migration(migration, user)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except CancelRefused as exc:
            self.stderr.write(f"refused: {exc.code}: {exc.message}")
            sys.exit(3)
        if o["json"]:
            self.stdout.write(json.dumps(record(migration), indent=2))
        elif migration.state == "cancelled":
            self.stdout.write(f"move #{migration.pk} cancelled")
        else:
            self.stdout.write(
                f"move #{migration.pk}: cancel requested; the worker stops it within "
                "a second and the VM stays on its source"
            )
