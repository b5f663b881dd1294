"""Starting and cancelling moves: the one service the pages, admin, API and CLI call.

``start_migration`` checks the user's role and the options, then hands the
request to the one admission (:func:`hvweb.moves.lifecycle.admit`), which
evaluates the rules (``migrator.rules`` through ``hvweb.inventory.snapshots``)
with the cluster's load (:mod:`hvweb.moves.capacity`), refuses with every
failing rule, reserves the destination's memory and either dispatches the move
to a Celery worker or queues it when a host has reached its cluster's
simultaneous-migration limit. ``cancel_migration`` applies Hyper-V's rule: a
move can be cancelled while queued or during stages 1–3. The destination
evaluations (``evaluate_destinations``, ``ranked_destinations``) read the same
capacity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from hvweb.inventory.access import may
from hvweb.inventory.choices import PerformanceOption
from hvweb.inventory.models import Cluster, Host, VirtualMachine
from migrator.errors import SpecError
from migrator.rules import Failure
from migrator.spec import Faults

from . import capacity, lifecycle
from .capacity import Destination
from .lifecycle import CancelRefused, MigrationRefused
from .models import Migration

__all__ = [
    "CancelRefused",
    "MigrationRefused",
    "MoveOptions",
    "cancel_migration",
    "Destination",
    "current_failures",
    "evaluate_destinations",
    "ranked_destinations",
    "start_migration",
]

MAX_DOWNTIME_LIMIT_MS = 60_000
MAX_SPEED = 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveOptions:
    """A move's options, checked where they enter (field-keyed errors)."""

    performance_option: str
    downtime_limit_ms: int
    speed: float
    faults: Mapping[str, Any]

    @classmethod
    def parse(
        cls,
        cluster: Cluster,
        *,
        performance_option: str | None = None,
        downtime_limit_ms: Any = None,
        speed: Any = None,
        faults: Mapping[str, Any] | None = None,
    ) -> MoveOptions:
        """Options with the cluster's defaults; ValidationError names bad fields."""
        errors: dict[str, str] = {}
        option = performance_option or cluster.performance_option
        if option not in PerformanceOption.values:
            errors["performance_option"] = (
                f"{option!r} is not a performance option; choose one of "
                f"{', '.join(PerformanceOption.values)}."
            )
        limit = 300 if downtime_limit_ms is None else downtime_limit_ms
        if isinstance(limit, bool) or not isinstance(limit, int):
            try:
                limit = int(str(limit))
            except ValueError:
                limit = -1
        if not 0 <= limit <= MAX_DOWNTIME_LIMIT_MS:
            errors["downtime_limit_ms"] = (
                f"must be a whole number of milliseconds from 0 (no limit) to "
                f"{MAX_DOWNTIME_LIMIT_MS}."
            )
        pace = cluster.simulation_speed if speed is None else speed
        try:
            pace = float(pace)
        except (TypeError, ValueError):
            pace = math.nan
        if not (pace == 0 or 0.0001 <= pace <= MAX_SPEED):
            errors["speed"] = (
                f"must be 0 (unpaced) or a factor from 0.0001 to {MAX_SPEED:g} "
                "(simulated seconds per wall second)."
            )
        fault_fields = dict(faults or {})
        try:
            Faults(**fault_fields)
        except SpecError as exc:
            errors["faults"] = str(exc)
        except TypeError as exc:
            errors["faults"] = f"unknown fault: {exc}"
        if errors:
            raise ValidationError(errors)
        return cls(
            performance_option=option,
            downtime_limit_ms=limit,
            speed=pace,
            faults=fault_fields,
        )


def evaluate_destinations(
    vm: VirtualMachine, destinations: Iterable[Host]
) -> list[Destination]:
    """Every rule and operational check failing for moving ``vm`` now, per host.

    The cluster's load (memory held and reserved, moves under way per host,
    this VM's own active move) is read once, however many destinations are
    asked about.
    """
    destinations = list(destinations)
    return capacity.for_vm(vm, destinations).evaluate(vm, destinations)


def current_failures(vm: VirtualMachine, destination: Host) -> tuple[Failure, ...]:
    """Every rule and operational check failing for moving ``vm`` to one host."""
    return capacity.failures_now(vm, destination)


def ranked_destinations(vm: VirtualMachine) -> list[Destination]:
    """Every other host of the VM's cluster: ready first, then those where the
    move would wait in the queue, then blocked ones; each by free memory."""
    return capacity.for_vm(vm).ranked(vm)


def start_migration(
    vm: VirtualMachine,
    destination: Host,
    user=None,
    **options: Any,
) -> Migration:
    """Request a move of ``vm`` to ``destination`` on behalf of ``user``.

    ``user`` None is the server itself (``manage.py`` without ``--user``).
    Raises PermissionDenied for a user who may not operate the VM, ValidationError
    for bad options and MigrationRefused with every failing rule. Nothing is
    stored unless the move is accepted.
    """
    if user is not None and not (
        may(user, "operate", vm) and may(user, "view", destination)
    ):
        raise PermissionDenied("You may not start moves of this VM.")
    opts = MoveOptions.parse(vm.host.cluster, **options)
    return lifecycle.admit(vm, destination, requested_by=user, options=opts)


def cancel_migration(migration: Migration, user=None) -> Migration:
    """Cancel a move no worker has started at once; ask a worker to stop its own.

    Raises PermissionDenied or CancelRefused (:func:`hvweb.moves.lifecycle.cancel`
    says when Hyper-V accepts a cancel).
    """
    if user is not None and not may(user, "operate", migration):
        raise PermissionDenied("You may not cancel moves in this cluster.")
    who = user.get_username() if user is not None else "the server"
    return lifecycle.cancel(migration.pk, who)
