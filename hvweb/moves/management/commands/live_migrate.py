"""``manage.py live_migrate VM DEST``: start a live migration, optionally watch it."""

from __future__ import annotations

import json
import sys
import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from hvweb.audit.context import AuditedCommand
from hvweb.inventory.lookup import LookupError_, find_host, find_vm
from hvweb.inventory.models import Host, VirtualMachine
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration
from hvweb.moves.services import MigrationRefused, start_migration
from migrator import Stage, format_duration, format_size

from ._common import (
    add_move_options,
    exit_bad_options,
    move_options,
    record,
    user_named,
)

#: Exit codes: 0 moved (or accepted without --wait), 1 the move failed or was
#: cancelled, 2 bad arguments, 3 refused by the rules.
EXIT_FAILED, EXIT_REFUSED = 1, 3
WORKER_HINT_AFTER_S = 10


class Command(AuditedCommand):
    help = "Live-migrate a VM to another host of its cluster."

    def add_arguments(self, parser):
        parser.add_argument(
            "vm", help="the virtual machine: NAME, CLUSTER/NAME, its VMId or id:N"
        )
        parser.add_argument(
            "destination", help="the destination host of its cluster: NAME or id:N"
        )
        parser.add_argument("--wait", action="store_true", help="watch until it ends")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--user", help="act as this user (their teams and role)")
        add_move_options(parser)
        parser.add_argument(
            "--fail-link-at-pass", type=int, metavar="N",
            help="drill: the migration link drops during pre-copy pass N",
        )  # fmt: skip
        parser.add_argument("--timeout", type=float, help="give up waiting after S")

    def handle(self, *args, **o):
        user = user_named(o["user"])
        vms = VirtualMachine.objects.select_related("host__cluster")
        hosts = Host.objects.all()
        if user is not None:
            vms, hosts = vms.restrict(user), hosts.restrict(user)
        try:
            vm = find_vm(vms, o["vm"])
        except LookupError_ as exc:
            raise CommandError(f"vm: {exc}") from None
        try:
            # A host of the VM's own cluster, whatever other clusters hold.
            destination = find_host(
                hosts.filter(cluster_id=vm.host.cluster_id), o["destination"]
            )
        except LookupError_ as exc:
            where = vm.host.cluster.name
            raise CommandError(f"destination: {exc} in {where}") from None
        options = move_options(o)
        if o["fail_link_at_pass"] is not None:
            options["faults"] = {"link_failure_pass": o["fail_link_at_pass"]}
        try:
            migration = start_migration(vm, destination, user, **options)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            exit_bad_options(self.stderr, exc)
        except MigrationRefused as exc:
            if o["json"]:
                failures = [
                    {"code": f.code, "message": f.message} for f in exc.failures
                ]
                self.stdout.write(json.dumps({"refused": True, "failures": failures}))
            else:
                self.stderr.write(f"refused: {', '.join(exc.codes)}")
                for f in exc.failures:
                    self.stderr.write(f"  {f.code}: {f.message}")
            sys.exit(EXIT_REFUSED)
        if not o["json"]:
            self.stdout.write(
                f"move #{migration.pk}: {vm.name} {vm.host.name} -> {destination.name} "
                f"{migration.get_state_display().lower()}"
            )
        if o["wait"]:
            migration = self._watch(migration, o["timeout"], quiet=o["json"])
        if o["json"]:
            self.stdout.write(json.dumps(record(migration), indent=2))
        elif migration.state == MigrationState.SUCCEEDED:
            self.stdout.write(
                f"done: {migration.passes} passes, "
                f"{format_size(migration.bytes_sent or 0)} sent, "
                f"downtime {format_duration(migration.downtime_s or 0)}, "
                f"total {format_duration(migration.total_time_s or 0)} (simulated)"
            )
        elif not migration.active:
            self.stderr.write(
                # A cancel's message says it all; a failure leads with its code.
                migration.error_message
                if migration.state == MigrationState.CANCELLED
                else f"{migration.state}: {migration.error_code} "
                f"{migration.error_message}"
            )
        if o["wait"] and migration.state != MigrationState.SUCCEEDED:
            sys.exit(EXIT_FAILED)

    def _watch(self, migration: Migration, timeout: float | None, quiet: bool):
        began = time.monotonic()
        tty = self.stdout.isatty() and not quiet
        hinted = False
        while True:
            migration.refresh_from_db()
            if not migration.active:
                if tty:
                    self.stdout.write("")
                return migration
            waited = time.monotonic() - began
            if timeout is not None and waited > timeout:
                raise CommandError(
                    f"--timeout: move #{migration.pk} still {migration.state} "
                    f"after {timeout:g} s"
                )
            if not migration.started_at and waited > WORKER_HINT_AFTER_S and not hinted:
                hinted = True
                self.stderr.write(
                    "still waiting for a Celery worker to take the move: is one "
                    "running (celery -A hvweb worker)?"
                )
            if tty:
                self.stdout.write(f"\r{self._line(migration)}\033[K", ending="")
                self.stdout.flush()
            time.sleep(0.2)

    @staticmethod
    def _line(m: Migration) -> str:
        if m.state == MigrationState.QUEUED:
            return "queued: waiting for a migration slot on a host"
        if not m.stage:
            return "starting"
        stage = Stage(m.stage)
        line = f"[{stage.number}/7] {stage.label}"
        p = m.progress or {}
        if stage is Stage.MEMORY_TRANSFER and p:
            line += (
                f"  pass {p['pass_no']}  sent {format_size(p['bytes_sent'])}"
                f"  dirty {p['remaining_dirty_pages']} pages"
            )
        return line
