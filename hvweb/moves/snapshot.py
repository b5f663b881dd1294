"""What a viewer gets first on a websocket: a move's or a cluster's snapshot.

A move's record is the API's (``hvweb.api.serializers.MigrationSerializer``),
with its stages and passes as the API gives them, so the page that draws a
snapshot, the page that applies live frames and a script reading the API agree
on the field names.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F

from hvweb.api.serializers import (
    MigrationPassSerializer,
    MigrationSerializer,
    MigrationStageSerializer,
    NestedMigrationSerializer,
)
from hvweb.inventory.models import Cluster, VirtualMachine

from . import capacity
from .choices import MigrationState
from .models import Migration, MigrationEvent

#: Points of the bytes-over-time series a snapshot carries at most.
SERIES_POINTS = 400


def migration_snapshot(migration_id: int) -> dict[str, Any]:
    """Everything a viewer arriving now needs: the record, its stages and passes,
    the event log without progress, and a thinned bytes-over-time series."""
    m = Migration.objects.select_related(
        "vm", "cluster", "source", "destination", "requested_by"
    ).get(pk=migration_id)
    events = MigrationEvent.objects.filter(migration_id=m.pk, seq__lte=m.last_seq)
    log = list(events.exclude(kind="progress").values_list("data", flat=True))
    progress = events.filter(kind="progress")
    step = -(-progress.count() // SERIES_POINTS)  # thinned in SQL, not in Python
    if step > 1:
        progress = progress.annotate(k=F("seq") % step).filter(k=0)
    series = [
        {"t": p["data"]["t"], "bytes_sent": p["data"]["bytes_sent"],
         "remaining_dirty_pages": p["data"]["remaining_dirty_pages"]}
        for p in progress.values_list("data", flat=True)
    ]  # fmt: skip
    return {
        "type": "snapshot",
        "migration": MigrationSerializer(m).data,
        "stages": MigrationStageSerializer(m.stages.all(), many=True).data,
        "passes": MigrationPassSerializer(m.passes_done.all(), many=True).data,
        "log": log,
        "series": series,
        "last_seq": m.last_seq,
    }


def cluster_snapshot(cluster_id: int) -> dict[str, Any]:
    """Hosts with their VMs and memory, and the moves in flight, of one cluster.

    Each host's ``used_mib`` (memory held by its running and paused VMs) and
    ``reserved_mib`` (memory set aside by moves coming to it that have not
    switched over) are :mod:`hvweb.moves.capacity`'s, the figures every check
    and page uses: a VM that switched over counts as used on its destination,
    never also as reserved. Free memory is ``memory_mib - used_mib -
    reserved_mib``.
    """
    cluster = Cluster.objects.get(pk=cluster_id)
    load = capacity.load(cluster)
    vms = list(VirtualMachine.objects.filter(host__cluster=cluster).order_by("name"))
    active = Migration.objects.filter(
        cluster=cluster, state__in=MigrationState.active()
    ).select_related("vm", "cluster", "source", "destination")
    return {
        "type": "snapshot",
        "cluster": {"id": cluster.pk, "name": cluster.name},
        "hosts": [
            {
                "id": h.pk,
                "name": h.name,
                "state": h.state,
                "memory_mib": h.memory_mib,
                "used_mib": load.loads[h.pk].used_mib,
                "reserved_mib": load.loads[h.pk].reserved_mib,
            }
            for h in load.hosts.values()
        ],
        "vms": [
            {
                "id": v.pk,
                "name": v.name,
                "host": v.host_id,
                "memory_mib": v.memory_mib,
                "power_state": v.power_state,
            }
            for v in vms
        ],  # fmt: skip
        "migrations": NestedMigrationSerializer(active, many=True).data,
    }
