"""``manage.py drain_host HOST``: pause a host and move its VMs away.

``--plan`` prints what the drain would do, on the clock, and changes nothing.
"""

from __future__ import annotations

import json
import sys
import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from hvweb.api.serializers import DrainPlanSerializer, FailbackOutcomeSerializer
from hvweb.audit.context import AuditedCommand
from hvweb.inventory.lookup import LookupError_, find_host
from hvweb.inventory.models import Host
from hvweb.maintenance.failback import plan_failback, resume_with_failback
from hvweb.maintenance.plan import plan_drain
from hvweb.maintenance.service import drain_and_record
from hvweb.moves.choices import MigrationState
from hvweb.moves.drain import DrainRefused, resume_host
from hvweb.moves.models import Migration

from ._common import (
    add_move_options,
    exit_bad_options,
    move_options,
    record,
    user_named,
)

#: Exit codes: 0 every running VM is leaving (with --wait: has left), 1 some
#: VM stays or a move failed, 2 bad arguments, 3 refused (the host is down).
EXIT_INCOMPLETE, EXIT_REFUSED = 1, 3


class Command(AuditedCommand):
    help = (
        "Pause a host and live-migrate each of its running VMs to the best other "
        "host of its cluster (--resume takes it out of pause)."
    )

    def add_arguments(self, parser):
        parser.add_argument("host", help="the host: NAME, CLUSTER/NAME or id:N")
        parser.add_argument(
            "--resume", action="store_true", help="resume the host instead"
        )
        parser.add_argument(
            "--failback",
            action="store_true",
            help="with --resume: bring back the VMs its last drain moved away "
            "(with --plan: print that plan)",
        )
        parser.add_argument(
            "--plan",
            action="store_true",
            help="print the timed plan (where each VM goes, when, how long) and "
            "change nothing",
        )
        parser.add_argument("--wait", action="store_true", help="wait for the moves")
        parser.add_argument("--timeout", type=float, help="give up waiting after S")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--user", help="act as this user (their teams and role)")
        add_move_options(parser)

    def handle(self, *args, **o):
        user = user_named(o["user"])
        hosts = Host.objects.all() if user is None else Host.objects.restrict(user)
        try:
            host = find_host(hosts, o["host"])
        except LookupError_ as exc:
            raise CommandError(f"host: {exc}") from None
        if o["failback"] and not o["resume"]:
            self.stderr.write("--failback: give it with --resume")
            sys.exit(2)
        try:
            if o["plan"]:
                planner = plan_failback if o["failback"] else plan_drain
                plan = planner(host, **move_options(o))
                self.stdout.write(
                    json.dumps(DrainPlanSerializer(plan).data, indent=2)
                    if o["json"]
                    else "\n".join(plan.lines())
                )
                return
            if o["resume"] and o["failback"]:
                back = resume_with_failback(host, user, **move_options(o))
                if o["json"]:
                    body = FailbackOutcomeSerializer(back).data
                    self.stdout.write(json.dumps(body, indent=2))
                else:
                    self.stdout.write("\n".join(back.lines()))
                if back.stayed:
                    sys.exit(EXIT_INCOMPLETE)
                return
            if o["resume"]:
                host = resume_host(host, user)
                self._say(o, {"host": host.name, "state": host.state},
                          f"{host.name} resumed: it takes VMs again")  # fmt: skip
                return
            outcome, _ = drain_and_record(host, user, **move_options(o))
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            exit_bad_options(self.stderr, exc)
        except DrainRefused as exc:
            self.stderr.write(f"refused: {exc.code}: {exc.message}")
            sys.exit(EXIT_REFUSED)
        if not o["json"]:
            self.stdout.write("\n".join(outcome.lines()))
        moves = [*outcome.moves, *outcome.under_way]
        if o["wait"]:
            moves = self._wait(moves, o["timeout"])
        failed = [m for m in moves if m.state not in MigrationState.active()
                  and m.state != MigrationState.SUCCEEDED]  # fmt: skip
        if o["json"]:
            body = {
                "host": host.name,
                "state": outcome.host.state,
                "complete": outcome.complete,
                "moves": [record(m) for m in moves],
                "stayed": [
                    {"vm": s.vm.name, "reason": s.reason,
                     "codes": [f.code for f in s.failures]}
                    for s in outcome.stayed
                ],
            }  # fmt: skip
            self.stdout.write(json.dumps(body, indent=2))
        else:
            for m in failed:
                self.stderr.write(
                    f"move #{m.pk} ({m.vm.name}) {m.state}: {m.error_message}"
                )
        if outcome.stayed or failed:
            sys.exit(EXIT_INCOMPLETE)

    def _say(self, o, body: dict, line: str) -> None:
        self.stdout.write(json.dumps(body) if o["json"] else line)

    def _wait(self, moves: list[Migration], timeout: float | None) -> list[Migration]:
        began = time.monotonic()
        ids = [m.pk for m in moves]
        while True:
            moves = list(
                Migration.objects.filter(pk__in=ids).select_related("vm", "destination")
            )
            if not any(m.active for m in moves):
                return moves
            if timeout is not None and time.monotonic() - began > timeout:
                busy = ", ".join(m.vm.name for m in moves if m.active)
                raise CommandError(
                    f"--timeout: still moving after {timeout:g} s: {busy}"
                )
            time.sleep(0.25)
