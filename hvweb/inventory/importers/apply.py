"""Import an export: the dry run, or the plan written in one transaction.

:func:`run_import` is the one entry point the page, the API and
``manage.py import_hyperv`` call. It parses the bytes (``document``), plans
(``plan``) and, unless it is a dry run, writes the plan inside one
transaction: a refusal at any point leaves the inventory as it was. Rows are
written in bulk; the audit trail gets one entry per object created, changed or
removed, each with the actor and the file's SHA-256, plus one for the import
itself on the cluster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from hvweb.audit import context as audit_context
from hvweb.audit.registry import team_of
from hvweb.core.locking import ROW_ONLY

from .. import access
from ..demo import WORKLOADS
from ..models import (
    PAGE_SIZE_KIB,
    Cluster,
    ClusterSharedVolume,
    Host,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)
from .document import ClusterExport, ImportRefused, Problem, parse
from .plan import ImportOptions, Item, Plan, plan_import

__all__ = ["ImportResult", "run_import"]


@dataclass(slots=True, kw_only=True)
class ImportResult:
    plan: Plan
    dry_run: bool
    applied: bool
    sha256: str
    file_name: str
    size: int
    cluster: Cluster | None = None

    def as_dict(self) -> dict[str, Any]:
        export = self.plan.export
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "file": {
                "name": self.file_name,
                "sha256": self.sha256,
                "bytes": self.size,
                "exported_at": export.exported_at.isoformat()
                if export.exported_at
                else None,
                "exported_on": export.exported_on,
                "hosts": len(export.nodes),
                "csvs": len(export.csvs),
                "vms": export.vm_count,
            },
            "cluster_id": self.cluster.pk if self.cluster else None,
            **self.plan.as_dict(),
        }


def run_import(
    data: bytes,
    *,
    team: Team,
    user=None,
    options: ImportOptions | None = None,
    dry_run: bool = True,
    file_name: str = "",
    expected_fingerprint: str | None = None,
) -> ImportResult:
    """Parse ``data``, plan it against ``team``'s inventory and (unless
    ``dry_run``) apply it. ``user`` None acts as the server (the CLI); else
    the user must administer ``team``. Raises ImportRefused with every problem,
    PermissionDenied, or ValidationError for bad options.
    """
    if user is not None and not access.may(user, "administer", team):
        raise PermissionDenied(
            "Importing a cluster needs the administrator role in the team."
        )
    options = options or ImportOptions()
    sha256 = hashlib.sha256(data).hexdigest()
    export = parse(data)
    if dry_run:
        plan = plan_import(export, team, options)
        _validate(plan)
        return ImportResult(
            plan=plan, dry_run=True, applied=False, sha256=sha256,
            file_name=file_name, size=len(data), cluster=plan.cluster.existing,
        )  # fmt: skip
    try:
        return _apply(data, export, team, user, options, sha256, file_name,
                      expected_fingerprint)  # fmt: skip
    except IntegrityError:
        # Another import (or an edit in the admin) won a race for a name or
        # a cluster Id between the plan and the write; nothing was written.
        raise ImportRefused.one(
            "(inventory)",
            "conflict",
            "the inventory changed while the import was written: run it again",
        ) from None


def _apply(data, export, team, user, options, sha256, file_name, expected_fingerprint):
    with transaction.atomic(), disable_auditlog():
        # One import per team at a time: the team's row is the lock.
        Team.objects.select_for_update(**ROW_ONLY).get(pk=team.pk)
        plan = plan_import(export, team, options)
        _validate(plan)
        if (
            expected_fingerprint
            and plan.as_dict()["fingerprint"] != expected_fingerprint
        ):
            raise ImportRefused.one(
                "(inventory)",
                "changed",
                "the inventory changed since the dry run you reviewed: review the "
                "new dry run, then apply it",
            )
        if plan.active_moves:
            raise ImportRefused.one(
                "(inventory)",
                "busy",
                f"{plan.active_moves} live migration(s) are in flight in "
                f"{plan.cluster.name}: apply the import once they have ended",
            )
        cluster = plan.cluster.existing
        applied = plan.changes_anything
        if applied:
            cluster = _write(plan, user, sha256, file_name)
    return ImportResult(
        plan=plan, dry_run=False, applied=applied, sha256=sha256,
        file_name=file_name, size=len(data), cluster=cluster,
    )  # fmt: skip


# --- Checking rows before any is written -----------------------------------------


class _FieldCheck:
    """Each field's own validation (type, length, choices, validators) of the
    rows the import would store, each distinct value checked once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: dict[tuple, str | None] = {}

    def row(self, model, values: dict[str, Any], path: str) -> None:
        for name, value in values.items():
            key = (model, name, value if not isinstance(value, list) else None)
            if key not in self._seen:
                field = model._meta.get_field(name)
                try:
                    field.clean(value, None)
                    self._seen[key] = None
                except ValidationError as error:
                    self._seen[key] = " ".join(error.messages)
            message = self._seen[key]
            if message:
                self.problems.append(Problem(f"{path} ({name})", "field", message))


def _validate(plan: Plan) -> None:
    """Each row as the import would store it passes its fields' own validation.

    Cross-object rules (a highly available VM's Automatic Start Action, a D:
    host among C: hosts) are not applied: the cluster is what it is, and the
    readiness matrix shows what breaks which rule.
    """
    check = _FieldCheck()
    check.row(Cluster, plan.cluster.desired, "Cluster")
    vm_fields = ("name", "memory_mib", "vcpus", "power_state", "highly_available",
                 "automatic_start_action")  # fmt: skip
    for item in plan.items:
        if item.status not in ("created", "updated"):
            continue
        d = item.desired
        if item.kind == "host":
            check.row(Host, d, item.path)
        elif item.kind == "csv":
            check.row(
                ClusterSharedVolume,
                {k: v for k, v in d.items() if k != "owner"},
                item.path,
            )
        else:
            check.row(VirtualMachine, {k: d[k] for k in vm_fields}, item.path)
            for i, disk in enumerate(d["disks"]):
                row = {k: v for k, v in disk.items() if k != "csv"}
                check.row(VirtualDisk, row, f"{item.path}.HardDrives[{i}]")
            for i, adapter in enumerate(d["adapters"]):
                check.row(NetworkAdapter, adapter, f"{item.path}.NetworkAdapters[{i}]")
    if check.problems:
        problems = check.problems
        raise ImportRefused(problems[:100], max(0, len(problems) - 100))


# --- Writing ------------------------------------------------------------------------


class _Audit:
    """Audit entries, written in one go at the end of the transaction."""

    def __init__(self, user, sha256: str, file_name: str) -> None:
        self.user = user if getattr(user, "pk", None) else None
        self.extra = {"import": {"sha256": sha256, "file": file_name}}
        self.entries: list[LogEntry] = []
        self.now = timezone.now()

    def add(self, obj, action: int, changes: dict[str, Any]) -> None:
        self.entries.append(
            LogEntry(
                content_type=ContentType.objects.get_for_model(type(obj)),
                object_pk=str(obj.pk),
                object_id=obj.pk,
                object_repr=str(obj)[:1000],
                action=action,
                changes={k: [_plain(o), _plain(n)] for k, (o, n) in changes.items()},
                actor=self.user,
                timestamp=self.now,
                # bulk_create sends no signal: the door and the team, as the
                # audit app stamps its other entries.
                additional_data={
                    **self.extra,
                    **audit_context.current(),
                    "team": team_of(obj),
                },
            )
        )

    def save(self) -> None:
        LogEntry.objects.bulk_create(self.entries, batch_size=500)


def _plain(value: Any) -> Any:
    if isinstance(value, list | dict | str | int | float | bool) or value is None:
        return value
    return str(value)


def _write(plan: Plan, user, sha256: str, file_name: str) -> Cluster:
    export: ClusterExport = plan.export
    audit = _Audit(user, sha256, file_name)
    now = audit.now
    provenance = {
        "hyperv_id": export.hyperv_id,
        "imported_from": file_name[:255],
        "imported_sha256": sha256,
        "imported_at": now,
        "imported_by": audit.user,
        "exported_at": export.exported_at,
        "exported_on": export.exported_on[:255],
    }
    item = plan.cluster
    if item.existing is None:
        cluster = Cluster.objects.create(team=plan.team, **item.desired, **provenance)
        audit.add(cluster, LogEntry.Action.CREATE, item.fields)
    else:
        cluster = item.existing
        for name, value in {**item.desired, **provenance}.items():
            setattr(cluster, name, value)
        cluster.save()
        audit.add(cluster, LogEntry.Action.UPDATE, item.fields)
    audit.entries[-1].additional_data = {
        **audit.entries[-1].additional_data,
        "import": {**audit.extra["import"], "summary": plan.summary()},
    }

    # VMs gone go first (their MACs are then free); hosts and CSVs gone go
    # last, once no VM of the file is stored on them any more.
    removed = [i for i in plan.items if i.status == "missing" and i.action == "remove"]
    _remove(removed, "vm", VirtualMachine, audit)
    hosts = _write_hosts(plan, cluster, audit)
    csvs = _write_csvs(plan, cluster, hosts, audit)
    _write_vms(plan, hosts, csvs, audit)
    _remove(removed, "csv", ClusterSharedVolume, audit)
    _remove(removed, "host", Host, audit)
    audit.save()
    return cluster


def _remove(items: list[Item], kind: str, model, audit: _Audit) -> None:
    gone = [i.existing for i in items if i.kind == kind]
    for obj in gone:
        audit.add(obj, LogEntry.Action.DELETE, {})
    if gone:
        model.objects.filter(pk__in=[o.pk for o in gone]).delete()


def _by_kind(plan: Plan, kind: str, status: str) -> list[Item]:
    return plan.by(kind, status)


def _write_hosts(plan: Plan, cluster: Cluster, audit: _Audit) -> dict[str, Host]:
    created = [
        Host(cluster=cluster, **i.desired) for i in _by_kind(plan, "host", "created")
    ]
    Host.objects.bulk_create(created)
    for host, item in zip(created, _by_kind(plan, "host", "created"), strict=True):
        audit.add(host, LogEntry.Action.CREATE, item.fields)
    updated = []
    names: set[str] = set()
    for item in _by_kind(plan, "host", "updated"):
        for name, (_, new) in item.fields.items():
            setattr(item.existing, name, new)
            names.add(name)
        updated.append(item.existing)
        audit.add(item.existing, LogEntry.Action.UPDATE, item.fields)
    if updated:
        Host.objects.bulk_update(updated, sorted(names))
    return {h.name.lower(): h for h in Host.objects.filter(cluster=cluster)}


def _write_csvs(
    plan: Plan, cluster: Cluster, hosts: dict[str, Host], audit: _Audit
) -> dict[str, ClusterSharedVolume]:
    def owner(name: str | None) -> Host | None:
        return hosts.get(name.lower()) if name else None

    created_items = _by_kind(plan, "csv", "created")
    created = [
        ClusterSharedVolume(
            cluster=cluster,
            owner=owner(i.desired["owner"]),
            **{k: v for k, v in i.desired.items() if k != "owner"},
        )
        for i in created_items
    ]
    ClusterSharedVolume.objects.bulk_create(created)
    for csv, item in zip(created, created_items, strict=True):
        audit.add(csv, LogEntry.Action.CREATE, item.fields)
    updated = []
    names: set[str] = set()
    for item in _by_kind(plan, "csv", "updated"):
        for name, (_, new) in item.fields.items():
            if name == "owner":
                item.existing.owner = owner(new)
            else:
                setattr(item.existing, name, new)
            names.add(name)
        updated.append(item.existing)
        audit.add(item.existing, LogEntry.Action.UPDATE, item.fields)
    if updated:
        ClusterSharedVolume.objects.bulk_update(updated, sorted(names))
    return {
        c.name.lower(): c for c in ClusterSharedVolume.objects.filter(cluster=cluster)
    }


def _children(vm: VirtualMachine, desired: dict[str, Any], csvs) -> tuple[list, list]:
    disks = [
        VirtualDisk(
            vm=vm,
            csv=csvs[d["csv"].lower()] if d["csv"] else None,
            name=d["name"],
            kind=d["kind"],
            path=d["path"],
            size_gib=d["size_gib"],
        )
        for d in desired["disks"]
    ]
    adapters = [NetworkAdapter(vm=vm, **a) for a in desired["adapters"]]
    return disks, adapters


def _write_vms(plan: Plan, hosts: dict[str, Host], csvs, audit: _Audit) -> None:
    profile = plan.options.workload_profile
    write_rate, working_set = WORKLOADS[profile]
    created_items = _by_kind(plan, "vm", "created")
    created = []
    for item in created_items:
        d = item.desired
        created.append(
            VirtualMachine(
                vm_id=item.key,
                name=d["name"],
                host=hosts[d["host"].lower()],
                memory_mib=d["memory_mib"],
                vcpus=d["vcpus"],
                power_state=d["power_state"],
                highly_available=d["highly_available"],
                automatic_start_action=d["automatic_start_action"],
                workload_profile=profile,
                write_rate=write_rate,
                working_set_pages=min(
                    working_set, d["memory_mib"] * 1024 // PAGE_SIZE_KIB
                ),
                workload_assumed=True,
            )
        )
    VirtualMachine.objects.bulk_create(created, batch_size=500)
    disks: list[VirtualDisk] = []
    adapters: list[NetworkAdapter] = []
    for vm, item in zip(created, created_items, strict=True):
        audit.add(vm, LogEntry.Action.CREATE, item.fields)
        d, a = _children(vm, item.desired, csvs)
        disks += d
        adapters += a

    scalar = ["name", "memory_mib", "vcpus", "power_state", "highly_available",
              "automatic_start_action"]  # fmt: skip
    updated, names, rebuilt = [], {"working_set_pages"}, []
    for item in _by_kind(plan, "vm", "updated"):
        vm = item.existing
        for name in item.fields:
            if name in scalar:
                setattr(vm, name, item.desired[name])
                names.add(name)
            elif name == "host":
                vm.host = hosts[item.desired["host"].lower()]
                names.add("host")
        vm.working_set_pages = min(
            vm.working_set_pages, vm.memory_mib * 1024 // PAGE_SIZE_KIB
        )
        updated.append(vm)
        audit.add(vm, LogEntry.Action.UPDATE, item.fields)
        if "disks" in item.fields or "adapters" in item.fields:
            rebuilt.append(vm.pk)
            d, a = _children(vm, item.desired, csvs)
            disks += d if "disks" in item.fields else []
            adapters += a if "adapters" in item.fields else []
            if "disks" in item.fields:
                VirtualDisk.objects.filter(vm=vm).delete()
            if "adapters" in item.fields:
                NetworkAdapter.objects.filter(vm=vm).delete()
    if updated:
        VirtualMachine.objects.bulk_update(updated, sorted(names), batch_size=500)
    VirtualDisk.objects.bulk_create(disks, batch_size=500)
    NetworkAdapter.objects.bulk_create(adapters, batch_size=500)
