"""The figures ``/metrics`` gives Prometheus, read from the database at scrape time.

Every figure comes from the rows (moves, hosts, VMs), never from one process's
memory: any daphne process on any machine answers a scrape with the same
numbers, however many Celery workers ran the moves, and nothing is counted
twice (``prometheus_client``'s custom-collector pattern,
https://prometheus.github.io/client_python/collector/custom/).

Names follow KubeVirt's migration metrics
(``kubevirt_vmi_migration_data_processed_bytes``, ``_data_remaining_bytes``,
``_dirty_memory_rate_bytes``, ``kubevirt_vmi_migrations_in_*_phase``,
https://github.com/kubevirt/monitoring/blob/main/docs/metrics.md) under the
``hvweb_`` prefix, and Prometheus' naming rules: base units in the name
(seconds, bytes), ``_total`` on counters
(https://prometheus.io/docs/practices/naming/). Labels: ``cluster``,
``source``, ``destination``, ``option`` (the performance option) and
``policy`` (the move's convergence policy, ``Migration.policy``) where they
apply.

A scrape costs a fixed number of queries (ten), however many clusters,
hosts and moves there are: the history's size changes their cost, not their
number. ``benchmarks/metrics.py`` measures it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any

from django.db.models import Case, CharField, Count, F, FloatField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from hvweb.inventory.choices import HostState
from hvweb.inventory.models import PAGE_SIZE_KIB, Cluster, Host
from hvweb.moves import capacity
from hvweb.moves.choices import MigrationState
from hvweb.moves.models import Migration
from migrator.policy import NOT_CONVERGING
from migrator.stages import Stage

__all__ = [
    "BLACKOUT_BUCKETS_S",
    "DURATION_BUCKETS_S",
    "OUTCOMES",
    "PHASES",
    "RATIO_BUCKETS",
    "MoveCollector",
    "registry",
]

PAGE_BYTES = PAGE_SIZE_KIB * 1024
MIB = 1 << 20

#: How a move ended, as ``hvweb_migrations_total`` counts it. ``aborted``: the
#: move's convergence policy gave up (``NOT_CONVERGING``), a failure the
#: operator chose in advance rather than a fault.
OUTCOMES = ("succeeded", "failed", "cancelled", "aborted")
#: ``hvweb_migrations_in_phase``'s phases: queued, running (all running moves,
#: whatever their stage) and each of the seven stages (running moves in it).
PHASES = ("queued", "running", *(stage.value for stage in Stage))

#: Simulated seconds a successful move took from start to switchover.
DURATION_BUCKETS_S = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: The blackout (VM paused): Hyper-V's own 20417 threshold is 1 s.
BLACKOUT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10)
#: Actual over predicted blackout: 1 is a model that is right.
RATIO_BUCKETS = (0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 4)

#: Labels of a move's metrics, and the columns that fill them.
MOVE_LABELS = ("cluster", "source", "destination", "option", "policy")
#: The histograms' labels: without the host pair, since every label value
#: multiplies a histogram's series by its buckets (a cluster of 8 hosts has 56
#: pairs); the counter keeps the pair to find the link that fails.
HISTOGRAM_LABELS = ("cluster", "option", "policy")
_MOVE_COLUMNS = {
    "cluster": "cluster__name",
    "source": "source__name",
    "destination": "destination__name",
    "option": "performance_option",
    "policy": "policy",
}


def _labels(row: dict[str, Any], names: Sequence[str] = MOVE_LABELS) -> list[str]:
    return [str(row[_MOVE_COLUMNS.get(n, n)] or "") for n in names]


def _moves():
    return Migration.objects.all()


#: The histograms over successful moves: name, help, what each move adds, buckets.
HISTOGRAMS = (
    (
        "hvweb_migration_duration_seconds",
        "Simulated seconds a successful live migration took, start to "
        "switchover (Hyper-V's brownout plus blackout).",
        "total time",
        DURATION_BUCKETS_S,
    ),
    (
        "hvweb_migration_blackout_seconds",
        "Seconds the VM was paused for the switchover (Hyper-V's blackout; "
        "events 20415 and 20417 report it).",
        "blackout",
        BLACKOUT_BUCKETS_S,
    ),
    (
        "hvweb_migration_prediction_error_ratio",
        "Actual blackout over the blackout the model predicted when the move "
        "started, per successful move; 1 is a model that is right.",
        "actual over predicted blackout",
        RATIO_BUCKETS,
    ),
)


def _histograms() -> Iterator[HistogramMetricFamily]:
    """The histograms over successful moves, per label set.

    The successful moves' figures are read in one query and bucketed here:
    on SQLite a filtered COUNT per bucket re-read the stored prediction's
    JSON for every bucket and took four times as long as this.
    """
    predicted = Cast(KeyTextTransform("downtime_s", "predicted"), FloatField())
    rows = (
        _moves()
        .filter(state=MigrationState.SUCCEEDED)
        .annotate(predicted_downtime_s=predicted)
        .values_list(
            *(_MOVE_COLUMNS[n] for n in HISTOGRAM_LABELS),
            "total_time_s",
            "downtime_s",
            "predicted_downtime_s",
        )
    )
    # label values -> per histogram: [count per bucket (+Inf last), sum]
    seen: dict[tuple[str, ...], list[tuple[list[int], list[float]]]] = {}
    width = len(HISTOGRAM_LABELS)
    for row in rows:
        key = tuple(str(v or "") for v in row[:width])
        total_time, downtime, predicted_downtime = row[width:]
        ratio = (
            downtime / predicted_downtime
            if downtime is not None and predicted_downtime
            else None
        )
        found = seen.get(key)
        if found is None:
            found = seen[key] = [
                ([0] * (len(bounds) + 1), [0.0]) for *_, bounds in HISTOGRAMS
            ]
        for (counts, total), (*_, bounds), v in zip(
            found, HISTOGRAMS, (total_time, downtime, ratio), strict=True
        ):
            if v is not None:
                counts[bisect_left(bounds, v)] += 1
                total[0] += v
    for h, (name, doc, _, bounds) in enumerate(HISTOGRAMS):
        family = HistogramMetricFamily(name, doc, labels=list(HISTOGRAM_LABELS))
        for key, per_histogram in seen.items():
            counts, total = per_histogram[h]
            if not any(counts):
                continue
            cumulative = list(accumulate(counts))
            family.add_metric(
                list(key),
                [(floatToGoString(b), cumulative[i]) for i, b in enumerate(bounds)]
                + [("+Inf", cumulative[-1])],
                sum_value=total[0],
            )
        yield family


class MoveCollector(Collector):
    """Collects the moves' and hosts' figures from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield self._ended()
        yield self._in_phase()
        yield from self._running()
        yield from _histograms()
        yield from self._hosts()

    def _ended(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "hvweb_migrations",  # the library adds _total
            "Live migrations that ended, by outcome.",
            labels=[*MOVE_LABELS, "outcome"],
        )
        outcome = Case(
            When(
                state=MigrationState.FAILED,
                error_code=NOT_CONVERGING,
                then=Value("aborted"),
            ),  # fmt: skip
            default=F("state"),
            output_field=CharField(),
        )
        rows = (
            _moves()
            .exclude(state__in=MigrationState.active())
            .annotate(outcome=outcome)
            .values(*_MOVE_COLUMNS.values(), "outcome")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            family.add_metric([*_labels(row), row["outcome"]], row["n"])
        return family

    def _in_phase(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "hvweb_migrations_in_phase",
            "Moves queued, running, and running in each of the seven stages.",
            labels=["cluster", "phase"],
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for name in Cluster.objects.values_list("name", flat=True):
            counts[name] = dict.fromkeys(PHASES, 0)
        rows = (
            Migration.objects.filter(state__in=MigrationState.active())
            .values("cluster__name", "state", "stage")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            phases = counts[row["cluster__name"]]
            phases[row["state"]] += row["n"]
            if row["state"] == MigrationState.RUNNING and row["stage"]:
                phases[row["stage"]] += row["n"]
        for cluster, phases in counts.items():
            for phase, n in phases.items():
                family.add_metric([cluster, phase], n)
        return family

    def _running(self) -> Iterator[GaugeMetricFamily]:
        labels = [*MOVE_LABELS, "vm", "migration"]
        processed = GaugeMetricFamily(
            "hvweb_migration_data_processed_bytes",
            "Bytes of guest memory a running move has sent to the destination.",
            labels=labels,
        )
        remaining = GaugeMetricFamily(
            "hvweb_migration_data_remaining_bytes",
            "Guest memory still to send: the pass's unsent pages and those "
            "written again after they were sent (all of it before the first pass).",
            labels=labels,
        )
        dirty = GaugeMetricFamily(
            "hvweb_migration_dirty_memory_rate_bytes",
            "Bytes per second the guest writes into memory already sent.",
            labels=labels,
        )
        rows = (
            _moves()
            .filter(state=MigrationState.RUNNING)
            .values(
                *_MOVE_COLUMNS.values(),
                "pk",
                "vm__name",
                "progress",
                "reserved_memory_mib",
            )  # fmt: skip
        )
        for row in rows:
            values = [*_labels(row), row["vm__name"], str(row["pk"])]
            progress = row["progress"] or {}
            processed.add_metric(values, progress.get("bytes_sent", 0))
            if "remaining_dirty_pages" in progress:
                left = progress["remaining_dirty_pages"] * PAGE_BYTES
            else:  # no pass has begun: the whole memory is still to send
                left = row["reserved_memory_mib"] * MIB
            remaining.add_metric(values, left)
            dirty.add_metric(values, progress.get("dirty_rate", 0.0) * PAGE_BYTES)
        yield processed
        yield remaining
        yield dirty

    def _hosts(self) -> Iterator[GaugeMetricFamily]:
        memory = GaugeMetricFamily(
            "hvweb_host_memory_bytes",
            "A host's memory: its capacity, what its VMs hold (used) and what "
            "moves coming to it set aside (reserved).",
            labels=["cluster", "host", "kind"],
        )
        paused = GaugeMetricFamily(
            "hvweb_host_paused",
            "1 while the host is paused (drained) for maintenance, else 0.",
            labels=["cluster", "host"],
        )
        hosts = list(
            Host.objects.values("pk", "name", "cluster__name", "memory_mib", "state")
        )
        loads = capacity.host_memory(h["pk"] for h in hosts)
        for host in hosts:
            load = loads[host["pk"]]
            where = [host["cluster__name"], host["name"]]
            memory.add_metric([*where, "capacity"], host["memory_mib"] * MIB)
            memory.add_metric([*where, "used"], load.used_mib * MIB)
            memory.add_metric([*where, "reserved"], load.reserved_mib * MIB)
            paused.add_metric(where, int(host["state"] == HostState.PAUSED))
        yield memory
        yield paused


def registry() -> CollectorRegistry:
    """A registry holding the move collector alone (no process metrics: a
    scrape must not depend on which process answered it)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(MoveCollector())
    return found
