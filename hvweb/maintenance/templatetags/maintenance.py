"""The host page's "last drain": its plan beside what its moves did."""

from __future__ import annotations

from django import template

from hvweb.inventory import access
from hvweb.maintenance.compare import compare
from hvweb.maintenance.models import DrainRecord, MaintenanceRun

register = template.Library()


@register.inclusion_tag("maintenance/_last_drain.html")
def last_drain(host):
    """The host's latest drain against its plan (nothing if it never drained)."""
    record = DrainRecord.objects.filter(host=host).first()
    return {"comparison": compare(record) if record else None}


@register.filter
def span(seconds):
    """Seconds as an operator reads them: ``0 s``, ``110 ms``, ``2 min 40 s``."""
    from migrator.units import format_about, format_span

    if not isinstance(seconds, (int, float)):
        return "—"
    if seconds <= 0:
        return "0 s"
    return format_span(seconds) if seconds >= 1 else format_about(seconds)


@register.filter
def ratio(value):
    return "—" if value is None else f"{value:.2f}"


@register.inclusion_tag("maintenance/_maintenance_link.html", takes_context=True)
def maintenance_link(context, cluster):
    """The cluster page's way to rolling maintenance, and the run under way."""
    user = context["request"].user
    return {
        "cluster": cluster,
        "may_operate": access.may(user, "operate", cluster),
        "active": MaintenanceRun.objects.filter(
            cluster=cluster, state__in=MaintenanceRun.ACTIVE
        ).first(),
        "last": MaintenanceRun.objects.filter(cluster=cluster).first(),
    }
