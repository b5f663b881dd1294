"""Plain-dict views of moves and clusters: websocket snapshots, CLI ``--json``.

One shape per thing, used by every reader, so the page that draws a snapshot and
the page that applies live frames agree on the field names.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Sum

from hvweb.inventory.models import Cluster, VirtualMachine
from hvweb.inventory.rowsnapshots import memory_held_mib

from .choices import MigrationState
from .models import Migration, MigrationEvent

#: Points of the bytes-over-time series a snapshot carries at most.
SERIES_POINTS = 400


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def migration_dict(m: Migration) -> dict[str, Any]:
    """The move's record: who, what, where it stands, what it did."""
    return {
        "id": m.pk,
        "vm": {"id": m.vm_id, "name": m.vm.name, "memory_mib": m.vm.memory_mib},
        "cluster": {"id": m.cluster_id, "name": m.cluster.name},
        "source": {"id": m.source_id, "name": m.source.name},
        "destination": {"id": m.destination_id, "name": m.destination.name},
        "requested_by": m.requested_by.get_username() if m.requested_by else None,
        "performance_option": m.performance_option,
        "downtime_limit_ms": m.downtime_limit_ms,
        "speed": m.speed,
        "link_bandwidth_mbps": m.cluster.link_bandwidth_mbps,
        "state": m.state,
        "stage": m.stage or None,
        "cancellable": m.cancellable,
        "cancel_requested": m.cancel_requested,
        "switched_over": m.switched_over,
        "created_at": _iso(m.created_at),
        "started_at": _iso(m.started_at),
        "finished_at": _iso(m.finished_at),
        "progress": m.progress,
        "passes": m.passes,
        "stop_reason": m.stop_reason or None,
        "bytes_sent": m.bytes_sent,
        "final_dirty_pages": m.final_dirty_pages,
        "total_time_s": m.total_time_s,
        "downtime_s": m.downtime_s,
        "sampled": m.sampled,
        "verified": m.verified,
        "predicted": m.predicted or None,
        "failed_stage": m.failed_stage or None,
        "error_code": m.error_code or None,
        "error_message": m.error_message or None,
        "last_seq": m.last_seq,
    }


def migration_snapshot(migration_id: int) -> dict[str, Any]:
    """Everything a viewer arriving now needs: the record, its stages and passes,
    the event log without progress, and a thinned bytes-over-time series."""
    m = Migration.objects.select_related(
        "vm", "cluster", "source", "destination", "requested_by"
    ).get(pk=migration_id)
    stages = [
        {
            "stage": s.stage,
            "number": s.number,
            "label": s.get_stage_display(),
            "outcome": s.outcome,
            "started_t": s.started_t,
            "duration_s": s.duration_s,
        }
        for s in m.stages.all()
    ]
    passes = list(
        m.passes_done.values(
            "pass_no", "pages_sent", "pages_dirtied", "zero_pages", "bytes",
            "duration_s", "dirty_rate", "expected_downtime_s",
            "remaining_dirty_pages", "t",
        )
    )  # fmt: skip
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
        "migration": migration_dict(m),
        "stages": stages,
        "passes": passes,
        "log": log,
        "series": series,
        "last_seq": m.last_seq,
    }


def cluster_snapshot(cluster_id: int) -> dict[str, Any]:
    """Hosts with their VMs and memory, and the moves in flight, of one cluster."""
    cluster = Cluster.objects.get(pk=cluster_id)
    hosts = list(cluster.hosts.order_by("name"))
    vms = list(VirtualMachine.objects.filter(host__cluster=cluster).order_by("name"))
    active = Migration.objects.filter(
        cluster=cluster, state__in=MigrationState.active()
    ).select_related("vm", "source", "destination")
    reserved = dict(
        active.values_list("destination").annotate(mib=Sum("reserved_memory_mib"))
    )
    return {
        "type": "snapshot",
        "cluster": {"id": cluster.pk, "name": cluster.name},
        "hosts": [
            {
                "id": h.pk,
                "name": h.name,
                "state": h.state,
                "memory_mib": h.memory_mib,
                "used_mib": memory_held_mib(v for v in vms if v.host_id == h.pk),
                "reserved_mib": reserved.get(h.pk, 0),
            }
            for h in hosts
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
        "migrations": [
            {
                "id": m.pk,
                "vm": m.vm_id,
                "vm_name": m.vm.name,
                "source": m.source_id,
                "destination": m.destination_id,
                "state": m.state,
                "stage": m.stage or None,
                "progress": m.progress,
                "last_seq": m.last_seq,
            }
            for m in active
        ],  # fmt: skip
    }
