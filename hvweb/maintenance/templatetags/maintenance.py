"""The host page's "last drain": its plan beside what its moves did."""

from __future__ import annotations

from django import template

from hvweb.maintenance.compare import compare
from hvweb.maintenance.models import DrainRecord

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

    if seconds is None:
        return "—"
    if seconds <= 0:
        return "0 s"
    return format_span(seconds) if seconds >= 1 else format_about(seconds)


@register.filter
def ratio(value):
    return "—" if value is None else f"{value:.2f}"
