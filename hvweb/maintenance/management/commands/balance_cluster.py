"""``manage.py balance_cluster CLUSTER``: bring every host under a memory level."""

from __future__ import annotations

import json
import sys

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError

from hvweb.api.serializers import BalancePlanSerializer
from hvweb.audit.context import AuditedCommand
from hvweb.inventory.lookup import LookupError_, find_cluster
from hvweb.inventory.models import Cluster
from hvweb.maintenance.balance import DEFAULT_LEVEL_PCT, balance_cluster, plan_balance
from hvweb.moves.management.commands._common import (
    add_move_options,
    exit_bad_options,
    move_options,
    user_named,
)


class Command(AuditedCommand):
    help = (
        "Balance a cluster as Failover Clustering's Node Fairness does: the fewest "
        "live moves that bring every host's memory use under a level (80 %)."
    )

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="the cluster: NAME or id:N")
        parser.add_argument("--level", type=float, default=DEFAULT_LEVEL_PCT,
                            help="memory use level, %% (default 80)")  # fmt: skip
        parser.add_argument("--plan", action="store_true", help="print the plan only")
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
        except LookupError_ as exc:
            raise CommandError(str(exc)) from None
        try:
            if o["plan"]:
                plan = plan_balance(cluster, o["level"], **move_options(o))
            else:
                plan = balance_cluster(cluster, user, o["level"], **move_options(o))
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            exit_bad_options(self.stderr, exc)
        if o["json"]:
            self.stdout.write(json.dumps(BalancePlanSerializer(plan).data, indent=2))
        else:
            self.stdout.write("\n".join(plan.lines()))
        if plan.stays:
            sys.exit(1)
