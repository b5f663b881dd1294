"""``manage.py maintain_cluster CLUSTER``: rolling maintenance, host by host."""

from __future__ import annotations

import json
import sys
import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from hvweb.audit.context import AuditedCommand
from hvweb.inventory.access import may
from hvweb.inventory.lookup import LookupError_, find_cluster, find_host
from hvweb.inventory.models import Cluster
from hvweb.maintenance.models import MaintenanceRun
from hvweb.maintenance.rolling import (
    RunRefused,
    parse_moment,
    plan_run,
    start_run,
)
from hvweb.moves.management.commands._common import (
    add_move_options,
    exit_bad_options,
    move_options,
    user_named,
)
from migrator.errors import ParseError
from migrator.units import format_span, parse_duration

#: Exit codes: 0 done (or started), 1 the run failed or was cancelled, 2 bad
#: arguments, 3 refused (N-1, another run, a host down).
EXIT_FAILED, EXIT_REFUSED = 1, 3


class Command(AuditedCommand):
    help = (
        "Rolling maintenance of a cluster: for each host in turn, drain it, hold "
        "it for the maintenance period, resume it with failback."
    )

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="the cluster: NAME or id:N")
        parser.add_argument("--hosts", help="comma-separated hosts (default: all up)")
        parser.add_argument("--hold", default="5m", help="maintenance period per host")
        parser.add_argument(
            "--drain-only", action="store_true",
            help="drain the hosts and stop, leaving them paused (a scheduled drain)",
        )  # fmt: skip
        parser.add_argument("--start-at", help="start then (e.g. '2026-12-01 02:00')")
        parser.add_argument("--end-by", help="start no move after this")
        parser.add_argument(
            "--tz", default="UTC", help="your time zone for --start-at and --end-by"
        )
        parser.add_argument("--plan", action="store_true", help="print the plan only")
        parser.add_argument("--wait", action="store_true", help="wait for the run")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--user", help="act as this user (their teams and role)")
        add_move_options(parser)

    def handle(self, *args, **o):
        user = user_named(o["user"])
        clusters = (
            Cluster.objects.all() if user is None else Cluster.objects.restrict(user)
        )
        try:
            cluster = find_cluster(clusters, o["cluster"])
            hosts = None
            if o["hosts"]:
                hosts = [find_host(cluster.hosts.all(), ref.strip()).pk
                         for ref in o["hosts"].split(",") if ref.strip()]  # fmt: skip
        except LookupError_ as exc:
            raise CommandError(str(exc)) from None
        try:
            hold = parse_duration(o["hold"])
        except (ParseError, ValueError) as exc:
            self.stderr.write(f"--hold: {exc}")
            sys.exit(2)
        options = move_options(o)
        try:
            window = {
                "start_at": parse_moment("start_at", o["start_at"], o["tz"]),
                "end_by": parse_moment("end_by", o["end_by"], o["tz"]),
            }
            if o["plan"]:
                plan = plan_run(cluster, hosts, hold_s=hold,
                                drain_only=o["drain_only"], **options)  # fmt: skip
                self._plan(o, plan)
                sys.exit(EXIT_REFUSED if plan["n_minus_one"] else 0)
            if user is not None and not may(user, "operate", cluster):
                raise PermissionDenied(
                    "Rolling maintenance needs the operator or administrator role."
                )
            run = start_run(
                cluster, user, hosts, hold_s=hold, drain_only=o["drain_only"],
                time_zone=o["tz"], **window, **options,
            )  # fmt: skip
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            exit_bad_options(self.stderr, exc)
        except RunRefused as exc:
            self.stderr.write(f"refused: {exc.code}: {exc.message}")
            sys.exit(EXIT_REFUSED)
        if not o["json"]:
            self.stdout.write(
                f"maintenance run #{run.pk} started: {run.plan['summary']}"
            )
        if o["wait"]:
            seen = 0
            while True:
                run.refresh_from_db()
                if not o["json"]:
                    for line in run.journal[seen:]:
                        self.stdout.write(line["text"])
                seen = len(run.journal)
                if not run.active:
                    break
                time.sleep(0.5)
        if o["json"]:
            self.stdout.write(json.dumps(_record(run), indent=2))
        if run.state in (MaintenanceRun.FAILED, MaintenanceRun.CANCELLED):
            self.stderr.write(f"run #{run.pk} {run.state}: {run.error}")
            sys.exit(EXIT_FAILED)

    def _plan(self, o, plan) -> None:
        if o["json"]:
            self.stdout.write(json.dumps(plan, indent=2))
            return
        self.stdout.write(plan["summary"])
        for step in plan["steps"]:
            start = format_span(step["start_s"]) if step["start_s"] else "0 s"
            end, drain = format_span(step["end_s"]), format_span(step["drain_s"])
            self.stdout.write(
                f"{step['host']}: {start} → {end}: drain {drain}, "
                f"hold {format_span(step['hold_s'])}, fail back about "
                f"{format_span(step['failback_s'])} ({step['summary']})"
            )
            for stay in step["stays"]:
                self.stdout.write(f"    {stay}")
        for problem in plan["n_minus_one"]:
            self.stdout.write(f"refused (N-1): {problem}")


def _record(run: MaintenanceRun) -> dict:
    from hvweb.api.serializers import MaintenanceRunSerializer

    return MaintenanceRunSerializer(run).data
