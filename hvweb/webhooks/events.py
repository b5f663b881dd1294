"""The fan-out: an event becomes one delivery per endpoint that asked for it.

:func:`publish` records the deliveries and queues one Celery task per
delivery once they are committed; the task (:mod:`hvweb.webhooks.tasks`) does
the network part, so nothing here waits on an endpoint. The payload of a move
is the API's record of it (``MigrationSerializer``): a script that reads the
API and a receiver of webhooks see one shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from hvweb.api.serializers import MaintenanceRunSerializer, MigrationSerializer
from hvweb.inventory.choices import HostState, PowerState
from hvweb.inventory.models import Host
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration

from .models import EVENTS, Delivery, Endpoint

__all__ = [
    "DELIVER_TASK",
    "publish",
    "publish_drain",
    "publish_maintenance",
    "publish_migration",
]

log = logging.getLogger(__name__)

#: The Celery task that sends one delivery (``hvweb.webhooks.tasks.deliver``).
DELIVER_TASK = "hvweb.webhooks.deliver"


def publish(team_id: int, event: str, key: str, data: dict[str, Any]) -> list[int]:
    """Record ``event`` for each of the team's endpoints that wants it; returns
    the new deliveries' ids. An event with a ``key`` already delivered to an
    endpoint is not recorded twice."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    created: list[int] = []
    endpoints = [
        e
        for e in Endpoint.objects.filter(team_id=team_id, active=True)
        if e.wants(event)
    ]
    if not endpoints:
        return created
    payload = {
        "id": key,
        "event": event,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }
    for endpoint in endpoints:
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(
                    endpoint=endpoint, event=event, key=key, payload=payload
                )
        except IntegrityError:  # the same event reached the fan-out twice
            continue
        created.append(delivery.pk)
        transaction.on_commit(lambda pk=delivery.pk: _send(pk), robust=True)
    return created


def _send(delivery_id: int) -> None:
    from .tasks import deliver

    deliver.apply_async((delivery_id, 1))


def publish_migration(migration_id: int, event: str, key: str) -> list[int]:
    """Publish ``event`` about a move, with the API's record of it."""
    migration = (
        Migration.objects.select_related(
            "vm", "cluster", "source", "destination", "requested_by"
        )
        .filter(pk=migration_id)
        .first()
    )
    if migration is None:
        return []
    data = {"migration": MigrationSerializer(migration).data}
    return publish(migration.cluster.team_id, event, key, data)


def publish_drain(host_id: int) -> list[int]:
    """``host.drain.completed`` once a paused host has no move leaving it.

    The key is the host and the last move that left it, so two moves ending
    together both reach here and one delivery goes out.
    """
    host = Host.objects.select_related("cluster").filter(pk=host_id).first()
    if host is None or host.state != HostState.PAUSED:
        return []
    leaving = Migration.objects.filter(source_id=host_id)
    if leaving.filter(state__in=MigrationState.active()).exists():
        return []
    last = leaving.order_by("-pk").values_list("pk", flat=True).first()
    if last is None:
        return []
    staying = host.virtual_machines.filter(power_state=PowerState.RUNNING)
    data = {
        "host": _host(host),
        "cluster": {"id": host.cluster_id, "name": host.cluster.name},
        "running_vms_left": staying.count(),
        "last_migration": last,
    }
    return publish(
        host.cluster.team_id, "host.drain.completed", f"host.{host.pk}.drained.{last}",
        data,
    )  # fmt: skip


def publish_maintenance(run, event: str, key: str, host_id: int | None) -> list[int]:
    """Publish ``maintenance.<event>`` about a rolling maintenance run, with the
    API's record of it (and, for ``host.completed``, the host)."""
    data: dict[str, Any] = {"run": MaintenanceRunSerializer(run).data}
    host = Host.objects.filter(pk=host_id).first() if host_id is not None else None
    if host is not None:
        data["host"] = _host(host)
    return publish(run.cluster.team_id, f"maintenance.{event}", key, data)


def _host(host: Host) -> dict[str, Any]:
    """A host as the host events carry it."""
    return {"id": host.pk, "name": host.name, "state": host.state}
