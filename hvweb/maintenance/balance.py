"""Balance a cluster: Failover Clustering's VM load balancing (Node Fairness).

Node Fairness moves VMs off hosts whose load is over a level: the cluster's
``AutoBalancerLevel`` 1, its default, is "Balance when CPU or memory load
exceeds 80%" (Microsoft Learn, "AutoBalancerLevel",
https://learn.microsoft.com/en-us/previous-versions/windows/desktop/mscs/clusters-autobalancerlevel).
Here the load is memory: a host's memory held and reserved (the one rule of
:mod:`hvweb.moves.capacity`) against its memory. For each host over the level,
the fewest of its running VMs whose memory brings it under the level leave it,
biggest first (taking the biggest first needs the fewest moves), each live, to
the best-ranked host the rules allow (:meth:`ClusterCapacity.ranked`) that
stays under the level with it. A host that cannot be brought under says why.
:func:`plan_balance` is the dry run, timed as a drain's plan is
(:func:`hvweb.maintenance.plan.timeline`); :func:`balance_cluster` does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from hvweb.inventory import snapshots
from hvweb.inventory.access import may
from hvweb.inventory.choices import HostState, PowerState
from hvweb.inventory.models import Cluster, Host
from hvweb.moves import capacity, lifecycle
from hvweb.moves.choices import MoveKind
from hvweb.moves.lifecycle import MigrationRefused
from hvweb.moves.models import Migration
from hvweb.moves.options import MoveOptions
from migrator.units import format_about, format_span

from .plan import PlannedMove, stand_in, timeline

__all__ = ["DEFAULT_LEVEL_PCT", "BalancePlan", "balance_cluster", "plan_balance"]

#: Node Fairness's default level: hosts over 80 % of their memory are balanced.
DEFAULT_LEVEL_PCT = 80


@dataclass(frozen=True, slots=True)
class BalancePlan:
    """The moves that bring every host under the level, on the clock."""

    cluster: Cluster
    level_pct: float
    options: MoveOptions
    moves: tuple[PlannedMove, ...]
    #: Per host over the level before: its load before and after, in %.
    hosts: tuple[dict[str, Any], ...]
    #: Why a host stays over the level.
    stays: tuple[str, ...]

    @property
    def window_s(self) -> float:
        return max((m.end_s for m in self.moves), default=0.0)

    @property
    def summary(self) -> str:
        n = len(self.moves)
        if not self.hosts:
            return (f"{self.cluster.name}: every host is at or under "
                    f"{self.level_pct:g} %; nothing to move")  # fmt: skip
        longest = max((m.prediction.downtime_s for m in self.moves), default=0.0)
        text = (f"{self.cluster.name}: {n} move{'s' if n != 1 else ''} bring "
                f"{len(self.hosts) - len(self.stays)} of {len(self.hosts)} "
                f"host{'s' if len(self.hosts) != 1 else ''} under "
                f"{self.level_pct:g} %")  # fmt: skip
        if n:
            text += (f", about {format_span(self.window_s)}, longest blackout "
                     f"{format_about(longest)}")  # fmt: skip
        return text

    def lines(self) -> list[str]:
        found = [self.summary]
        for m in self.moves:
            found.append(
                f"{m.order}. {m.vm.name} ({m.vm.memory_mib:,} MiB) "
                f"{m.migration.source.name} → {m.migration.destination.name}: "
                f"{'0 s' if m.start_s <= 0 else format_span(m.start_s)} → "
                f"{format_span(m.end_s)}, downtime "
                f"{format_about(m.prediction.downtime_s)}"
            )
        found += [
            f"{h['host']}: {h['before_pct']:.0f} % → {h['after_pct']:.0f} %"
            for h in self.hosts
        ]
        found += list(self.stays)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster.name,
            "level_pct": self.level_pct,
            "summary": self.summary,
            "window_s": self.window_s,
            "moves": [m.to_dict() for m in self.moves],
            "hosts": list(self.hosts),
            "stays": list(self.stays),
        }


def _load_pct(load: capacity.ClusterCapacity, host: Host) -> float:
    found = load.loads[host.pk]
    return 100 * (found.used_mib + found.reserved_mib) / host.memory_mib


def _place(cluster: Cluster, level_pct: float, load, admit):
    """The balance's one rule (see the module); returns moves, hosts, stays."""
    hosts = sorted(load.hosts.values(), key=lambda h: h.name)
    over = [h for h in hosts if h.state == HostState.UP
            and _load_pct(load, h) > level_pct]  # fmt: skip
    moves: list[Migration] = []
    report: list[dict[str, Any]] = []
    stays: list[str] = []
    vms = [vm for h in over for vm in h.virtual_machines.all()]
    disks = snapshots.disks_by_vm(vms)
    for host in over:
        before = _load_pct(load, host)
        limit = level_pct / 100 * host.memory_mib
        candidates = sorted(
            (vm for vm in host.virtual_machines.all()
             if vm.power_state == PowerState.RUNNING and not load.moving(vm.pk)),
            key=lambda vm: (-vm.memory_mib, vm.name),
        )  # fmt: skip
        for vm in candidates:
            found = load.loads[host.pk]
            if found.used_mib + found.reserved_mib <= limit:
                break
            vm.host = host  # the prefetched row's host, for the rules
            ranked = load.ranked(vm, disks=disks[vm.pk])
            fits = [
                d for d in ranked
                if d.selectable and _load_pct(load, d.host) + 100 * vm.memory_mib
                / d.host.memory_mib <= level_pct
            ]  # fmt: skip
            if not fits:
                continue
            try:
                move = admit(vm, fits[0])
            except MigrationRefused:
                continue
            moves.append(move)
            load.track(move)
            # The VM's memory leaves the source once it switches over; count it
            # gone now, as the plan's outcome.
            found.used_mib -= vm.memory_mib
        after = _load_pct(load, host)
        report.append({"host": host.name, "before_pct": before, "after_pct": after})
        if after > level_pct:
            stays.append(
                f"{host.name} stays at {after:.0f} %: no other host takes more of "
                f"its running VMs and stays under {level_pct:g} %."
            )
    return moves, report, stays


def _level(level_pct) -> float:
    try:
        level = float(level_pct)
    except (TypeError, ValueError):
        level = -1.0
    if not 1 <= level <= 100:
        raise ValidationError({"level_pct": ["Give a level from 1 to 100 (%)."]})
    return level


def plan_balance(
    cluster: Cluster, level_pct: float = DEFAULT_LEVEL_PCT, **options
) -> BalancePlan:
    """What balancing ``cluster`` at ``level_pct`` would do now; nothing is
    written."""
    level = _level(level_pct)
    opts = MoveOptions.parse(cluster, **options)
    with transaction.atomic():
        load = capacity.load(cluster)
        others = list(load.moves)
        made: list[Migration] = []

        def admit(vm, where) -> Migration:
            made.append(stand_in(vm, where.host, where, MoveKind.LIVE, opts,
                                 number=len(made) + 1))  # fmt: skip
            return made[-1]

        moves, report, stays = _place(cluster, level, load, admit)
    return BalancePlan(
        cluster=cluster, level_pct=level, options=opts,
        moves=tuple(timeline(moves, others, cluster.max_simultaneous_migrations)),
        hosts=tuple(report), stays=tuple(stays),
    )  # fmt: skip


def balance_cluster(
    cluster: Cluster, user=None, level_pct: float = DEFAULT_LEVEL_PCT, **options
) -> BalancePlan:
    """Start the moves :func:`plan_balance` plans, now; returns their plan."""
    if user is not None and not may(user, "operate", cluster):
        raise PermissionDenied(
            "Balancing a cluster needs the operator or administrator role."
        )
    level = _level(level_pct)
    opts = MoveOptions.parse(cluster, **options)
    with transaction.atomic():
        load = capacity.load(cluster)

        def admit(vm, where) -> Migration:
            return lifecycle.admit(vm, where.host, requested_by=user, options=opts)

        moves, report, stays = _place(cluster, level, load, admit)
        others = [m for m in capacity.load(cluster).moves if m not in moves]
        planned = timeline(moves, others, cluster.max_simultaneous_migrations)
    return BalancePlan(
        cluster=cluster, level_pct=level, options=opts, moves=tuple(planned),
        hosts=tuple(report), stays=tuple(stays),
    )  # fmt: skip
