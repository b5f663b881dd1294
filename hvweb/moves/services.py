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

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied

from hvweb.inventory.access import may
from hvweb.inventory.models import Host, VirtualMachine
from migrator.rules import Failure

from . import capacity, lifecycle
from .capacity import Destination
from .lifecycle import CancelRefused, MigrationRefused
from .models import Migration
from .options import MoveOptions

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
