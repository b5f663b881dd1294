"""``manage.py import_hyperv FILE --team T``: bring in a real Hyper-V cluster."""

from __future__ import annotations

import json
import os
import sys

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from hvweb.audit.context import AuditedCommand
from hvweb.inventory.choices import StorageKind, WorkloadProfile
from hvweb.inventory.importers.apply import run_import
from hvweb.inventory.importers.document import (
    MAX_IMPORT_BYTES,
    ImportRefused,
    too_large,
)
from hvweb.inventory.importers.plan import ImportOptions
from hvweb.inventory.importers.report import plan_lines
from hvweb.inventory.models import Team

#: Exit codes: 0 imported (or dry run done), 1 the file was refused, 2 bad
#: arguments.
EXIT_REFUSED, EXIT_USAGE = 1, 2


class Command(AuditedCommand):
    help = (
        "Import a cluster exported by scripts/export-hyperv.ps1 into a team: "
        "--dry-run shows what would change, field by field."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the export (JSON: UTF-8 or UTF-16)")
        parser.add_argument("--team", required=True, help="the team that owns it")
        parser.add_argument("--dry-run", action="store_true", help="change nothing")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--remove-missing", action="store_true",
            help="remove VMs (and empty hosts and CSVs) no longer in the cluster",
        )  # fmt: skip
        parser.add_argument(
            "--workload", choices=WorkloadProfile.values, default=WorkloadProfile.WEB,
            help="the workload profile assumed for new VMs (default: web)",
        )  # fmt: skip
        parser.add_argument(
            "--storage-kind", choices=StorageKind.values,
            help="the SAN, when the file does not say (default: kept, else iscsi)",
        )  # fmt: skip
        parser.add_argument(
            "--user", help="act as this user (must administer the team)"
        )

    def handle(self, *args, **o):
        from hvweb.moves.management.commands._common import user_named

        user = user_named(o["user"])
        team = Team.objects.filter(name=o["team"]).first()
        if team is None:
            raise CommandError(f"--team: no team named {o['team']!r}")
        path = o["file"]
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise CommandError(f"file: {exc.strerror}: {path}") from None
        try:
            if size > MAX_IMPORT_BYTES:
                raise too_large(size)
            with open(path, "rb") as f:
                data = f.read()
            options = ImportOptions(
                remove_missing=o["remove_missing"],
                workload_profile=o["workload"],
                storage_kind=o["storage_kind"],
            )
            result = run_import(
                data, team=team, user=user, options=options,
                dry_run=o["dry_run"], file_name=os.path.basename(path),
            )  # fmt: skip
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.stderr.write(f"--{field.replace('_', '-')}: {' '.join(messages)}")
            sys.exit(EXIT_USAGE)
        except ImportRefused as exc:
            if o["json"]:
                problems = [p.as_dict() for p in exc.problems]
                body = {"refused": True, "problems": problems, "more": exc.more}
                self.stdout.write(json.dumps(body, indent=2))
            else:
                self.stderr.write(f"refused: {path} was not imported; nothing changed.")
                for problem in exc.problems:
                    self.stderr.write(f"  {problem}")
                if exc.more:
                    self.stderr.write(f"  ... and {exc.more} more")
            sys.exit(EXIT_REFUSED)
        if o["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, default=str))
            return
        self.stdout.write("\n".join(plan_lines(result)))
