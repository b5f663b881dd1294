"""The dry run: what importing an export into a team would change.

:func:`plan_import` reads the inventory (never writes it) and compares it with
a :class:`~.document.ClusterExport`, object by object and field by field. A
host is known by its cluster and name, a CSV by its cluster and name, a VM by
its VMId; a cluster by Get-Cluster's Id when the file has one, else by its name
within the team. ``apply.py`` writes exactly the plan.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from migrator.rules import prevailing

from ..choices import StorageKind, WorkloadProfile
from ..models import (
    Cluster,
    ClusterSharedVolume,
    Host,
    NetworkAdapter,
    Team,
    VirtualDisk,
    VirtualMachine,
)
from .document import (
    ClusterExport,
    CsvExport,
    ImportRefused,
    NodeExport,
    Problem,
    VMExport,
)

__all__ = ["ImportOptions", "Item", "Plan", "plan_import"]

STATUSES = ("created", "updated", "unchanged", "missing")
KINDS = ("host", "csv", "vm")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    """What the operator decides: remove VMs gone from the cluster? The profile
    assumed for new VMs, the SAN kind when the file does not say."""

    remove_missing: bool = False
    workload_profile: str = WorkloadProfile.WEB
    storage_kind: str | None = None

    def __post_init__(self) -> None:
        errors = {}
        if self.workload_profile not in WorkloadProfile.values:
            errors["workload_profile"] = (
                f"{self.workload_profile!r} is not one of "
                f"{', '.join(WorkloadProfile.values)}"
            )
        if self.storage_kind not in (None, *StorageKind.values):
            errors["storage_kind"] = (
                f"{self.storage_kind!r} is not one of {', '.join(StorageKind.values)}"
            )
        if errors:
            raise ValidationError(errors)


@dataclass(slots=True, kw_only=True)
class Item:
    """One cluster, host, CSV or VM and what the import does to it."""

    kind: str
    name: str
    status: str
    #: field -> (old, new); on a new object old is None.
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    path: str = ""
    key: str = ""
    existing: Any = None
    desired: Any = None
    #: For a missing object: "remove", "keep" (not chosen) or "kept" (cannot).
    action: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "id": getattr(self.existing, "pk", None),
        }
        if self.key:
            body["key"] = self.key
        if self.path:
            body["path"] = self.path
        if self.fields:
            body["fields"] = {
                name: {"old": old, "new": new}
                for name, (old, new) in self.fields.items()
            }
        if self.action:
            body["action"] = self.action
        if self.reason:
            body["reason"] = self.reason
        return body


@dataclass(slots=True, kw_only=True)
class Plan:
    team: Team
    export: ClusterExport
    options: ImportOptions
    cluster: Item
    items: list[Item]
    notes: list[str]
    #: Moves in flight in the cluster: apply refuses while there are any.
    active_moves: int = 0

    def by(self, kind: str, status: str | None = None) -> list[Item]:
        return [i for i in self.items if i.kind == kind and status in (None, i.status)]

    def summary(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {
            kind: dict.fromkeys(STATUSES, 0) for kind in KINDS
        }
        for item in self.items:
            counts[item.kind][item.status] += 1
        return counts

    @property
    def changes_anything(self) -> bool:
        if self.cluster.status != "unchanged":
            return True
        return any(
            i.status in ("created", "updated") or i.action == "remove"
            for i in self.items
        )

    def as_dict(self) -> dict[str, Any]:
        """The plan as the dry run shows it (the page, the API, ``--json``)."""
        listed = [i.as_dict() for i in self.items if i.status != "unchanged"]
        body = {
            "team": {"id": self.team.pk, "name": self.team.name},
            "cluster": self.cluster.as_dict(),
            "summary": self.summary(),
            "changes_anything": self.changes_anything,
            "items": listed,
            "notes": list(self.notes),
            "active_moves": self.active_moves,
            "options": {
                "remove_missing": self.options.remove_missing,
                "workload_profile": self.options.workload_profile,
                "storage_kind": self.options.storage_kind,
            },
        }
        body["fingerprint"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, default=str).encode()
        ).hexdigest()
        return body


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}


# --- Desired state, field by field -------------------------------------------------


def _cluster_fields(
    export: ClusterExport, options: ImportOptions, existing: Cluster | None
) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    kind = export.storage_kind or options.storage_kind
    if kind is None:
        if existing is not None and existing.storage_kind != StorageKind.NONE:
            kind = existing.storage_kind
        else:
            kind = StorageKind.ISCSI if export.csvs else StorageKind.NONE
    if kind == StorageKind.NONE and export.csvs:
        raise ImportRefused.one(
            "StorageKind",
            "consistency",
            "the file says the cluster has no SAN but lists Cluster Shared Volumes, "
            "which live on one",
        )
    limits = [n.max_migrations for n in export.nodes if n.max_migrations]
    if export.max_parallel_migrations:
        limit = export.max_parallel_migrations
    elif limits:
        limit = min(limits)
        if len(set(limits)) > 1:
            notes.append(
                f"The nodes allow {sorted(set(limits))} simultaneous live migrations "
                f"(MaximumVirtualMachineMigrations): the cluster takes the lowest, "
                f"{limit}."
            )
    else:
        limit = existing.max_simultaneous_migrations if existing else 2
    options_seen = [n.performance_option for n in export.nodes if n.performance_option]
    performance = prevailing(options_seen) or (
        existing.performance_option if existing else "compression"
    )
    if len(set(options_seen)) > 1:
        notes.append(
            f"The nodes use different live-migration performance options "
            f"({', '.join(sorted(set(options_seen)))}): the cluster takes the most "
            f"common, {performance}."
        )
    return (
        {
            "name": export.name,
            "shared_storage": kind != StorageKind.NONE,
            "storage_kind": kind,
            "max_simultaneous_migrations": limit,
            "performance_option": performance,
        },
        notes,
    )


def _host_fields(node: NodeExport) -> dict[str, Any]:
    return {
        "name": node.name,
        "hyperv_version": node.hyperv_version,
        "cpu_vendor": node.cpu_vendor,
        "cpu_model": node.cpu_model[:100],
        "boot_drive": node.boot_drive,
        "memory_mib": node.memory_mib,
        "shared_storage_connected": node.shared_storage_connected,
        "cluster_node": node.cluster_node,
        "state": node.state,
    }


def _csv_fields(csv: CsvExport, owner_names: dict[str, str]) -> dict[str, Any]:
    return {
        "name": csv.name,
        "path": csv.volume,
        "capacity_gib": csv.capacity_gib,
        "owner": owner_names.get(csv.owner.lower()) if csv.owner else None,
        "state": csv.state,
    }


def _disk_rows(vm: VMExport) -> list[dict[str, Any]]:
    return [
        {"name": d.name, "kind": d.kind, "csv": d.csv, "path": d.path,
         "size_gib": d.size_gib}
        for d in vm.disks
    ]  # fmt: skip


def _adapter_rows(vm: VMExport) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "mac_address": a.mac_address,
         "virtual_switch": a.virtual_switch}
        for a in vm.adapters
    ]  # fmt: skip


def _vm_fields(vm: VMExport, host: str) -> dict[str, Any]:
    return {
        "name": vm.name,
        "host": host,
        "memory_mib": vm.memory_mib,
        "vcpus": vm.vcpus,
        "power_state": vm.power_state,
        "highly_available": vm.highly_available,
        "automatic_start_action": vm.automatic_start_action,
        "disks": _disk_rows(vm),
        "adapters": _adapter_rows(vm),
    }


# --- Stored state ------------------------------------------------------------------


def _stored(cluster: Cluster | None):
    """The cluster's hosts, CSVs and VMs as the plan compares them, in few queries."""
    if cluster is None:
        return {}, {}, {}, {}
    hosts = {h.name.lower(): h for h in Host.objects.filter(cluster=cluster)}
    names = {h.pk: h.name for h in hosts.values()}
    csvs = {
        c.name.lower(): c for c in ClusterSharedVolume.objects.filter(cluster=cluster)
    }
    csv_names = {c.pk: c.name for c in csvs.values()}
    vms = {vm.vm_id: vm for vm in VirtualMachine.objects.filter(host__cluster=cluster)}
    disks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in VirtualDisk.objects.filter(vm__host__cluster=cluster).order_by("pk"):
        disks[d.vm_id].append(
            {"name": d.name, "kind": d.kind, "csv": csv_names.get(d.csv_id),
             "path": d.path, "size_gib": d.size_gib}
        )  # fmt: skip
    adapters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in NetworkAdapter.objects.filter(vm__host__cluster=cluster).order_by("pk"):
        adapters[a.vm_id].append(
            {"name": a.name, "mac_address": a.mac_address,
             "virtual_switch": a.virtual_switch}
        )  # fmt: skip
    stored_vms = {
        key: (vm, {
            "name": vm.name, "host": names[vm.host_id], "memory_mib": vm.memory_mib,
            "vcpus": vm.vcpus, "power_state": vm.power_state,
            "highly_available": vm.highly_available,
            "automatic_start_action": vm.automatic_start_action,
            "disks": disks[vm.pk], "adapters": adapters[vm.pk],
        })
        for key, vm in vms.items()
    }  # fmt: skip
    return hosts, csvs, stored_vms, names


def _find_cluster(export: ClusterExport, team: Team) -> Cluster | None:
    """The stored cluster the file describes; refuses another team's."""
    if export.hyperv_id is not None:
        same = Cluster.objects.filter(hyperv_id=export.hyperv_id).first()
        if same is not None and same.team_id != team.pk:
            raise ImportRefused.one(
                "Cluster.Id",
                "conflict",
                f"failover cluster {export.hyperv_id} is already in hvweb under "
                f"another team: a cluster belongs to one team. Ask that team's "
                f"administrator (or a superuser) to move or delete it first.",
            )
        if same is not None:
            renamed_onto = team.clusters.filter(name=export.name).exclude(pk=same.pk)
            if same.name != export.name and renamed_onto.exists():
                raise ImportRefused.one(
                    "Cluster.Name",
                    "conflict",
                    f"the cluster was renamed {export.name}, the name of another "
                    f"cluster of team {team.name}: rename that one first",
                )
            return same
    by_name = team.clusters.filter(name=export.name).first()
    if (
        by_name is not None
        and export.hyperv_id is not None
        and by_name.hyperv_id not in (None, export.hyperv_id)
    ):
        raise ImportRefused.one(
            "Cluster.Name",
            "conflict",
            f"team {team.name} already has a cluster named {export.name} that is "
            f"another failover cluster (Id {by_name.hyperv_id}, the file's is "
            f"{export.hyperv_id}): rename one of them first",
        )
    return by_name


def plan_import(export: ClusterExport, team: Team, options: ImportOptions) -> Plan:
    """What importing ``export`` into ``team`` would do; reads, never writes."""
    from hvweb.moves.choices import MigrationState
    from hvweb.moves.models import Migration

    existing = _find_cluster(export, team)
    cluster_fields, notes = _cluster_fields(export, options, existing)
    notes = list(export.notes) + notes
    if existing is None:
        cluster = Item(
            kind="cluster",
            name=export.name,
            status="created",
            fields={k: (None, v) for k, v in cluster_fields.items()},
            desired=cluster_fields,
        )
    else:
        old = {k: getattr(existing, k) for k in cluster_fields}
        changed = _diff(old, cluster_fields)
        cluster = Item(
            kind="cluster",
            name=export.name,
            status="updated" if changed else "unchanged",
            fields=changed,
            existing=existing,
            desired=cluster_fields,
        )
    hosts, csvs, vms, _ = _stored(existing)
    items: list[Item] = []

    # Hosts: by name within the cluster.
    host_names = {n.name.lower(): n.name for n in export.nodes}
    for node in export.nodes:
        notes.extend(node.notes)
        desired = _host_fields(node)
        stored = hosts.get(node.name.lower())
        items.append(_item("host", node.name, node.path_in_file, stored, desired))
    # CSVs: by name within the cluster.
    for csv in export.csvs:
        notes.extend(csv.notes and [f"CSV {csv.name}: {n}" for n in csv.notes])
        desired = _csv_fields(csv, host_names)
        stored = csvs.get(csv.name.lower())
        old = None
        if stored is not None:
            old = {
                "name": stored.name, "path": stored.path,
                "capacity_gib": stored.capacity_gib,
                "owner": _host_name(stored.owner_id, hosts), "state": stored.state,
            }  # fmt: skip
        items.append(_item("csv", csv.name, csv.path_in_file, stored, desired, old))
    # VMs: by VMId within the cluster.
    seen: set = set()
    for node, vm in export.vms():
        notes.extend(vm.notes)
        desired = _vm_fields(vm, node.name)
        stored_vm, old = vms.get(vm.vm_id, (None, None))
        seen.add(vm.vm_id)
        item = _item("vm", vm.name, vm.path_in_file, stored_vm, desired, old)
        item.key = str(vm.vm_id)
        items.append(item)

    # What the cluster has and the file no longer does.
    referenced_by_history = set()
    if existing is not None:
        for vm_id, source, destination in Migration.objects.filter(
            cluster=existing
        ).values_list("vm_id", "source_id", "destination_id"):
            referenced_by_history.update({("vm", vm_id), ("host", source),
                                          ("host", destination)})  # fmt: skip
    gone_vms: set[int] = set()
    for key, (vm, _old) in vms.items():
        if key in seen:
            continue
        item = Item(
            kind="vm", name=vm.name, status="missing", existing=vm, key=str(key)
        )
        if not options.remove_missing:
            item.action, item.reason = (
                "keep",
                "removing VMs gone from the cluster was not chosen",
            )
        elif ("vm", vm.pk) in referenced_by_history:
            item.action, item.reason = "kept", "its live-migration history refers to it"
        else:
            item.action = "remove"
            gone_vms.add(vm.pk)
        items.append(item)
    staying_hosts = {
        vm.host_id
        for vm, _ in vms.values()
        if vm.pk not in gone_vms and vm.vm_id not in seen
    }
    for key, host in hosts.items():
        if key in host_names:
            continue
        item = Item(kind="host", name=host.name, status="missing", existing=host)
        if not options.remove_missing:
            item.action, item.reason = "keep", "removing what is gone was not chosen"
        elif host.pk in staying_hosts:
            item.action, item.reason = "kept", "VMs still stored on it stay"
        elif ("host", host.pk) in referenced_by_history:
            item.action, item.reason = "kept", "its live-migration history refers to it"
        else:
            item.action = "remove"
        items.append(item)
    file_csvs = {c.name.lower() for c in export.csvs}
    used_csvs = {
        d["csv"].lower()
        for vm, old in vms.values()
        if vm.vm_id not in seen and vm.pk not in gone_vms
        for d in old["disks"]
        if d["csv"]
    }
    for key, csv in csvs.items():
        if key in file_csvs:
            continue
        item = Item(kind="csv", name=csv.name, status="missing", existing=csv)
        if not options.remove_missing:
            item.action, item.reason = "keep", "removing what is gone was not chosen"
        elif key in used_csvs:
            item.action, item.reason = "kept", "disks of VMs that stay are on it"
        else:
            item.action = "remove"
        items.append(item)

    _check_macs(export, items, existing)
    active = 0
    if existing is not None:
        active = Migration.objects.filter(
            cluster=existing, state__in=MigrationState.active()
        ).count()
        if active:
            notes.append(
                f"{active} live migration(s) are in flight in {existing.name}: the "
                f"import can be applied once they have ended."
            )
    return Plan(
        team=team,
        export=export,
        options=options,
        cluster=cluster,
        items=items,
        notes=[n for n in notes if n],
        active_moves=active,
    )


def _host_name(host_id: int | None, hosts: dict[str, Host]) -> str | None:
    return next((h.name for h in hosts.values() if h.pk == host_id), None)


def _item(
    kind: str,
    name: str,
    path: str,
    stored: Any,
    desired: dict[str, Any],
    old: dict[str, Any] | None = None,
) -> Item:
    if stored is None:
        return Item(
            kind=kind,
            name=name,
            status="created",
            path=path,
            fields={k: (None, v) for k, v in desired.items()},
            desired=desired,
        )
    if old is None:
        old = {k: getattr(stored, k) for k in desired}
    changed = _diff(old, desired)
    return Item(
        kind=kind,
        name=name,
        status="updated" if changed else "unchanged",
        path=path,
        fields=changed,
        existing=stored,
        desired=desired,
    )


def _check_macs(
    export: ClusterExport, items: list[Item], cluster: Cluster | None
) -> None:
    """A MAC in the file may not be one a VM that stays (gone, kept) still uses."""
    if cluster is None:
        return
    staying = [i.existing.pk for i in items if i.kind == "vm" and i.status == "missing"
               and i.action != "remove"]  # fmt: skip
    if not staying:
        return
    taken = dict(
        NetworkAdapter.objects.filter(vm_id__in=staying)
        .exclude(mac_address="00-00-00-00-00-00")
        .values_list("mac_address", "vm__name")
    )
    problems = [
        Problem(
            f"{vm.path_in_file}.NetworkAdapters[{n}].MacAddress",
            "duplicate",
            f"{a.mac_address} is also the MAC of {taken[a.mac_address]}, which is no "
            f"longer in the file but stays in hvweb: a MAC is unique in a cluster; "
            f"choose to remove VMs gone from the cluster",
        )
        for _, vm in export.vms()
        for n, a in enumerate(vm.adapters)
        if a.mac_address in taken
    ]
    if problems:
        raise ImportRefused(problems)
