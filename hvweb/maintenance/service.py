"""Drain a host and keep its plan: the one entry the page, API and CLI call."""

from __future__ import annotations

from django.db import transaction

from hvweb.inventory.models import Host
from hvweb.moves.drain import DrainOutcome, drain_host
from hvweb.moves.options import MoveOptions

from .models import DrainRecord
from .plan import plan_for

__all__ = ["drain_and_record"]


def drain_and_record(
    host: Host, user=None, *, start_by=None, **options
) -> tuple[DrainOutcome, DrainRecord | None]:
    """:func:`hvweb.moves.drain.drain_host`, then the record of its timed plan.

    The plan is built from the moves the drain admitted, with the same code as
    a dry run (:func:`hvweb.maintenance.plan.timeline`), so the drain is
    checked against the plan of what it did. No record when it started no move.
    """
    with transaction.atomic():
        outcome = drain_host(host, user, start_by=start_by, **options)
        if not outcome.moves:
            return outcome, None
        opts = MoveOptions.parse(outcome.host.cluster, **options)
        plan = plan_for(outcome.host, outcome.moves, opts)
        record = DrainRecord.objects.create(
            host=outcome.host,
            cluster=outcome.host.cluster,
            requested_by=user,
            plan=plan.to_dict(),
        )
        record.migrations.set(outcome.moves)
    return outcome, record
