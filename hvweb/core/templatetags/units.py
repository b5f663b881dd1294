"""``{% load units %}``: sizes, link rates, durations and times as pages show them.

One set of rules for the whole console: the filters call
:mod:`migrator.units` (which the CLIs use too), and ``static/js/common.js``'s
``hvweb.fmt`` follows the same rules for what the scripts draw (a browser test
compares the two). Sizes are binary (KiB, MiB, GiB), link rates decimal
(Mbit/s, Gbit/s), durations keep three significant digits in a unit that fits
(0.50 ms, 45.2 ms, 1.40 s) and times say their time zone.
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from migrator.units import format_duration, format_rate, format_size

register = template.Library()

_NONE = "—"


@register.filter
def size(n) -> str:
    """Bytes as ``384 MiB``; nothing as a dash."""
    return _NONE if n is None or n == "" else format_size(float(n))


@register.filter
def mib(n) -> str:
    """MiB (how the inventory stores memory) as a size: ``2048`` → ``2.00 GiB``."""
    return _NONE if n is None or n == "" else format_size(float(n) * (1 << 20))


@register.filter
def mbps(n) -> str:
    """A link rate stored in Mbit/s: ``10000`` → ``10 Gbit/s``."""
    return _NONE if n is None or n == "" else format_rate(float(n) * 1e6)


@register.filter
def duration(seconds) -> str:
    """Seconds in a fitting unit: ``0.0005`` → ``0.50 ms``."""
    if seconds is None or seconds == "":
        return _NONE
    return format_duration(float(seconds))


def format_when(value: datetime | None) -> str:
    """A moment in the console's time zone, which it names: ``2026-11-30
    22:18:36 UTC``."""
    if value is None:
        return _NONE
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


@register.filter
def when(value) -> str:
    """:func:`format_when` as a filter."""
    return format_when(value)
