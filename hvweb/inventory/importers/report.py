"""The dry run (or what was applied) as lines of text, for the command line."""

from __future__ import annotations

from typing import Any

from .apply import ImportResult

_KINDS = {"host": "Hosts", "csv": "Cluster Shared Volumes", "vm": "Virtual machines"}


def _value(value: Any) -> str:
    if isinstance(value, list):
        if not value:
            return "none"
        if isinstance(value[0], dict):
            keys = [k for k in ("name", "mac_address", "csv", "virtual_switch")
                    if k in value[0]]  # fmt: skip
            return "; ".join(
                " ".join(
                    str(v.get(k) or "local" if k == "csv" else v.get(k)) for k in keys
                )
                for v in value
            )
    if value is None:
        return "-"
    return str(value)


def plan_lines(result: ImportResult) -> list[str]:
    body = result.as_dict()
    plan = result.plan
    file = body["file"]
    if result.dry_run:
        head = "Dry run: nothing was changed."
    elif result.applied:
        head = f"Imported into team {plan.team.name}."
    else:
        head = "Nothing to change: the inventory already matches the file."
    lines = [
        head,
        f"File {file['name']} (SHA-256 {file['sha256']}): cluster {plan.cluster.name}, "
        f"{file['hosts']} hosts, {file['csvs']} CSVs, {file['vms']} VMs"
        + (f", exported on {file['exported_on']}" if file["exported_on"] else "")
        + (f" at {file['exported_at']}" if file["exported_at"] else "")
        + ".",
        f"Cluster {plan.cluster.name}: {plan.cluster.status}.",
    ]
    for name, (old, new) in plan.cluster.fields.items():
        lines.append(f"    {name}: {_value(old)} -> {_value(new)}")
    summary = plan.summary()
    for kind, title in _KINDS.items():
        s = summary[kind]
        lines.append(
            f"{title}: {s['created']} created, {s['updated']} updated, "
            f"{s['unchanged']} unchanged, {s['missing']} no longer present."
        )
        for item in plan.by(kind):
            if item.status == "unchanged":
                continue
            if item.status == "missing":
                what = {"remove": "will be removed" if result.dry_run else "removed",
                        "keep": "kept", "kept": "kept"}[item.action]  # fmt: skip
                reason = f" ({item.reason})" if item.reason else ""
                lines.append(
                    f"  - {item.name}: no longer in the cluster; {what}{reason}"
                )
                continue
            sign = "+" if item.status == "created" else "~"
            lines.append(f"  {sign} {item.name} ({item.path})")
            if item.status == "updated":
                for name, (old, new) in item.fields.items():
                    lines.append(f"      {name}: {_value(old)} -> {_value(new)}")
    for note in plan.notes:
        lines.append(f"Note: {note}")
    if result.dry_run and plan.changes_anything:
        lines.append("Run again without --dry-run to apply it.")
    return lines
