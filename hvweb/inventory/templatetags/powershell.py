"""Template tags that put PowerShell and an import's provenance on the pages.

Each renders its own small template, so the pages that show them include one
line: ``{% load powershell %}{% vm_powershell vm results %}``.
"""

from __future__ import annotations

from django import template

from hvweb.inventory import access
from hvweb.inventory.choices import WorkloadProfile
from hvweb.inventory.powershell import move_command
from hvweb.inventory.readiness_report import drain_plan, vm_fixes

register = template.Library()


@register.inclusion_tag("inventory/_vm_powershell.html", takes_context=True)
def vm_powershell(context, vm, results):
    """The VM's failing rules with the PowerShell that fixes each, and its moves."""
    cluster = vm.host.cluster.name
    ready = [r.destination.name for r in results if r.ok]
    user = context["request"].user
    return {
        "vm": vm,
        "rules": vm_fixes(vm, results),
        "moves": [(name, move_command(vm.name, name, cluster)) for name in ready],
        "may_operate": access.may(user, "operate", vm),
        "workloads": WorkloadProfile.choices,
        "messages": context.get("messages", ()),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("inventory/_host_powershell.html")
def host_powershell(host):
    """The host's drain as PowerShell: Suspend-ClusterNode, and each VM's move."""
    drain, steps = drain_plan(host)
    return {"host": host, "drain": drain, "steps": steps}


@register.inclusion_tag("inventory/_provenance.html")
def cluster_provenance(cluster):
    """Where and when an imported cluster came from; the readiness report link."""
    return {"cluster": cluster}


@register.inclusion_tag("inventory/_assumption.html")
def workload_assumption(vm):
    """A forecast's label when the VM's workload is an assumption."""
    return {"vm": vm}


@register.inclusion_tag("inventory/_import_link.html", takes_context=True)
def import_link(context):
    """The navigation's "Import" and "Webhooks" links, for team administrators."""
    user = context["request"].user
    return {"show": access.has_role_anywhere(user, "administer")}


@register.filter
def field_value(value):
    """A dry run's field value as text: disks and adapters one per line."""
    if isinstance(value, list):
        if not value:
            return "none"
        lines = []
        for row in value:
            if "mac_address" in row:
                switch = row["virtual_switch"] or "?"
                lines.append(f"{row['name']} {row['mac_address']} on {switch}")
            else:
                where = f"CSV {row['csv']}" if row["csv"] else "local storage"
                size = f", {row['size_gib']} GiB" if row.get("size_gib") else ""
                lines.append(
                    f"{row['name']} ({row['kind']}) on {where}: {row['path']}{size}"
                )
        return "\n".join(lines)
    if value is None:
        return "—"
    return value
