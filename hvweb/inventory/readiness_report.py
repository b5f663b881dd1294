"""The readiness report: every VM of a cluster, what blocks it, and the fix.

One builder for the page, the CSV, the JSON and the ``.ps1`` an operator hands
to a change board; the VM page's "Fix it in PowerShell" and a host's drain
come from here too. The rules are ``migrator.rules`` (through
``snapshots.readiness``), the commands ``powershell.py``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from migrator import rules
from migrator.rules import Failure

from . import powershell, snapshots
from .models import Cluster, Host, VirtualDisk, VirtualMachine
from .powershell import Fix

__all__ = ["Report", "VMRow", "build_report", "drain_plan", "vm_fixes"]

#: Order fixes run in: settings first, then storage and the clustered role,
#: then nodes; those no command makes come last.
FIX_ORDER = [
    "AUTO_START_ACTION", "HIGHLY_AVAILABLE", "FAILOVER_CLUSTER", "SHARED_STORAGE",
    "HYPERV_VERSION", "CPU_VENDOR", "BOOT_DRIVE",
]  # fmt: skip


@dataclass(slots=True, kw_only=True)
class FailingRule:
    failure: Failure
    #: Destinations this rule refuses (the message is the first one's).
    destinations: list[str] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class VMRow:
    vm: VirtualMachine
    ready_hosts: list[str]
    candidates: int
    rules: list[FailingRule]

    @property
    def ready(self) -> bool:
        return bool(self.ready_hosts)


@dataclass(slots=True, kw_only=True)
class Report:
    cluster: Cluster
    generated: datetime
    rows: list[VMRow]
    fixes: list[Fix]

    @property
    def ready_vms(self) -> int:
        return sum(r.ready for r in self.rows)

    # --- The forms it is handed over in --------------------------------------

    def as_dict(self) -> dict[str, Any]:
        c = self.cluster
        return {
            "cluster": {
                "id": c.pk,
                "name": c.name,
                "team": c.team.name,
                "imported_from": c.imported_from or None,
                "imported_sha256": c.imported_sha256 or None,
                "imported_at": c.imported_at.isoformat() if c.imported_at else None,
                "exported_on": c.exported_on or None,
                "exported_at": c.exported_at.isoformat() if c.exported_at else None,
            },
            "generated_at": self.generated.isoformat(),
            "rules": [{"code": r.code, "title": r.title} for r in rules.RULES],
            "vms": [
                {
                    "id": row.vm.pk,
                    "name": row.vm.name,
                    "vm_id": str(row.vm.vm_id),
                    "host": row.vm.host.name,
                    "ready_hosts": row.ready_hosts,
                    "candidates": row.candidates,
                    "failures": [
                        {
                            "code": fr.failure.code,
                            "message": fr.failure.message,
                            "subjects": list(fr.failure.subjects),
                            "destinations": fr.destinations,
                            "fixes": [f.as_dict() for f in fr.fixes],
                        }
                        for fr in row.rules
                    ],
                }
                for row in self.rows
            ],
            "fixes": [f.as_dict() for f in self.fixes],
        }

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["cluster", "vm", "vm_id", "host", "ready_hosts", "candidates", "rule",
             "destinations", "message", "fix_commands", "fix_note"]
        )  # fmt: skip
        for row in self.rows:
            head = [self.cluster.name, row.vm.name, str(row.vm.vm_id), row.vm.host.name,
                    len(row.ready_hosts), row.candidates]  # fmt: skip
            if not row.rules:
                writer.writerow([*head, "", "", "", "", ""])
            for fr in row.rules:
                commands = " ; ".join(c.text for f in fr.fixes for c in f.commands)
                notes = " ".join(f.note for f in fr.fixes)
                writer.writerow([*head, fr.failure.code, " ".join(fr.destinations),
                                 fr.failure.message, commands, notes])  # fmt: skip
        return out.getvalue()

    def script(self) -> str:
        c = self.cluster
        source = ""
        if c.imported_at:
            source = (
                f"From {c.imported_from or 'an export'} (SHA-256 {c.imported_sha256}), "
                f"exported on {c.exported_on or '?'}, imported "
                f"{c.imported_at:%Y-%m-%d %H:%M} UTC."
            )
        return powershell.script(
            f"Readiness fixes for cluster {c.name} ({self.ready_vms} of "
            f"{len(self.rows)} VMs may live-migrate now)",
            self.fixes,
            generated=self.generated,
            source=source,
        )


# --- Building it ---------------------------------------------------------------------


class _Context:
    """Snapshots of one cluster, built once, for turning failures into fixes."""

    def __init__(self, cluster: Cluster, hosts: list[Host], vms: list[VirtualMachine]):
        self.cluster = snapshots.cluster_snapshot(cluster, hosts)
        self.hosts = {h.pk: snapshots.host_snapshot(h, vm_memory_mib=0) for h in hosts}
        self.csv_paths = {c.name: c.path for c in cluster.csvs.all()}
        disks = defaultdict(list)
        for d in VirtualDisk.objects.filter(vm__in=vms).select_related("csv__cluster"):
            disks[d.vm_id].append(snapshots.disk_snapshot(d))
        self.vms = {vm.pk: snapshots.vm_snapshot(vm, disks=disks[vm.pk]) for vm in vms}

    def fixes(
        self, failure: Failure, vm: VirtualMachine, destination: Host
    ) -> list[Fix]:
        return list(
            powershell.fixes_for(
                failure,
                vm=self.vms[vm.pk],
                source=self.hosts[vm.host_id],
                destination=self.hosts[destination.pk],
                cluster=self.cluster,
                csv_paths=self.csv_paths,
            )
        )


def _key(fix: Fix) -> tuple:
    return (fix.code, fix.subject, tuple(c.text for c in fix.commands))


def _rows(
    vms: list[VirtualMachine], context: _Context
) -> tuple[list[VMRow], list[Fix]]:
    by_vm: dict[int, list[snapshots.PairResult]] = {vm.pk: [] for vm in vms}
    for result in snapshots.readiness(vms):
        by_vm[result.vm.pk].append(result)
    order = [r.code for r in rules.RULES]
    rows, fixes = [], {}
    for vm in vms:
        results = by_vm[vm.pk]
        failing: dict[str, FailingRule] = {}
        for result in results:
            for failure in result.failures:
                fr = failing.get(failure.code)
                if fr is None:
                    fr = failing[failure.code] = FailingRule(failure=failure)
                fr.destinations.append(result.destination.name)
                for fix in context.fixes(failure, vm, result.destination):
                    key = _key(fix)
                    if key not in {_key(f) for f in fr.fixes}:
                        fr.fixes.append(fix)
                    fixes.setdefault(key, fix)
        rows.append(
            VMRow(
                vm=vm,
                ready_hosts=[r.destination.name for r in results if r.ok],
                candidates=len(results),
                rules=sorted(
                    failing.values(), key=lambda f: order.index(f.failure.code)
                ),
            )
        )
    ordered = sorted(
        fixes.values(),
        key=lambda f: (FIX_ORDER.index(f.code), not f.commands, f.subject.lower()),
    )
    return rows, ordered


def build_report(cluster: Cluster) -> Report:
    """Every VM of ``cluster`` against every other host, with the fixes."""
    hosts = list(cluster.hosts.order_by("name"))
    vms = list(
        VirtualMachine.objects.filter(host__cluster=cluster)
        .select_related("host__cluster")
        .order_by("name", "pk")
    )
    rows, fixes = _rows(vms, _Context(cluster, hosts, vms))
    return Report(cluster=cluster, generated=timezone.now(), rows=rows, fixes=fixes)


def vm_fixes(
    vm: VirtualMachine, results: list[snapshots.PairResult]
) -> list[FailingRule]:
    """What blocks ``vm`` (its readiness ``results``) and the PowerShell per rule."""
    if not any(result.failures for result in results):
        return []  # nothing blocks it: no cluster to read for fixes
    cluster = vm.host.cluster
    hosts = list(cluster.hosts.all())
    context = _Context(cluster, hosts, [vm])
    failing: dict[str, FailingRule] = {}
    for result in results:
        for failure in result.failures:
            fr = failing.setdefault(failure.code, FailingRule(failure=failure))
            fr.destinations.append(result.destination.name)
            for fix in context.fixes(failure, vm, result.destination):
                texts = {
                    (f.subject, tuple(c.text for c in f.commands)) for f in fr.fixes
                }
                if (fix.subject, tuple(c.text for c in fix.commands)) not in texts:
                    fr.fixes.append(fix)
    order = [r.code for r in rules.RULES]
    return sorted(failing.values(), key=lambda f: order.index(f.failure.code))


@dataclass(slots=True, kw_only=True)
class DrainStep:
    vm: VirtualMachine
    command: powershell.Command | None
    destination: str = ""
    reason: str = ""


def drain_plan(host: Host) -> tuple[powershell.Command, list[DrainStep]]:
    """The drain as PowerShell: Failover Clustering's own, and each move.

    Each move is the one hvweb's own drain would make now
    (:func:`hvweb.maintenance.plan.plan_drain`: the same order, destinations
    and move types, live or quick), and each VM that stays says why; a host
    that is down has nothing to move.
    """
    from hvweb.maintenance.plan import plan_drain
    from hvweb.moves.choices import MoveKind
    from hvweb.moves.drain import DrainRefused

    cluster = host.cluster.name
    try:
        plan = plan_drain(host)
    except DrainRefused:
        return powershell.drain_commands(host.name, cluster), []
    steps = [
        DrainStep(
            vm=m.vm,
            command=powershell.move_command(
                m.vm.name, m.migration.destination.name, cluster,
                "Quick" if m.migration.kind == MoveKind.QUICK else "Live",
            ),
            destination=m.migration.destination.name,
        )
        for m in plan.moves
    ]  # fmt: skip
    steps += [DrainStep(vm=s.vm, command=None, reason=s.reason) for s in plan.stayed]
    return powershell.drain_commands(host.name, cluster), steps
