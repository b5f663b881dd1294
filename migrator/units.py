"""Parse and format sizes, link rates and durations ("1GiB", "1Gbit/s", "300ms").

Sizes are binary (``K``, ``KB`` and ``KiB`` all mean 1024 bytes) because memory
is counted that way; rates are decimal (``1Gbit/s`` is 10**9 bits per second)
because links are. The CLI and the web shell share these parsers.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

from .errors import ParseError

__all__ = [
    "format_about",
    "format_duration",
    "format_rate",
    "format_size",
    "parse_count",
    "parse_duration",
    "parse_rate",
    "parse_size",
]

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_SIZE_RE = re.compile(rf"^\s*(?P<all>{_NUMBER})\s*(?P<unit>[A-Za-z]*)\s*$")
_RATE_RE = re.compile(rf"^\s*(?P<all>{_NUMBER})\s*(?P<unit>[A-Za-z]*(?:/s|ps)?)\s*$")
_DURATION_RE = re.compile(rf"^\s*(?P<all>{_NUMBER})\s*(?P<unit>[A-Za-zµ]*)\s*$")

_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_DURATIONS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}


def _number(match: re.Match[str], text: str) -> float:
    value = float(match.group("all"))
    if not math.isfinite(value) or value < 0:
        raise ParseError(f"{text!r} is not a finite, non-negative number")
    return value


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``"4096"``, ``"4KiB"``, ``"64K"``, ``"1GiB"``, ``"1.5 MiB"``.

    Every prefix is binary. The result must be a whole number of bytes.
    """
    match = _SIZE_RE.match(text)
    if match is None:
        raise ParseError(f"{text!r} is not a size (try 4KiB, 512MiB, 1GiB)")
    unit = match.group("unit").lower()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif unit.endswith("b"):
        unit = unit[:-1]
    if unit not in _BINARY:
        raise ParseError(f"{text!r}: unknown size unit {match.group('unit')!r}")
    value = _number(match, text) * _BINARY[unit]
    if value != int(value):
        raise ParseError(f"{text!r} is not a whole number of bytes")
    return int(value)


def parse_rate(text: str) -> float:
    """Bits per second in ``text``: ``"1Gbit/s"``, ``"10Gbps"``, ``"125MB/s"``.

    Prefixes are decimal; ``b``/``bit`` means bits and ``B`` bytes; a bare
    number is bits per second. ``Ki``/``Mi``/``Gi`` are accepted as binary.
    """
    match = _RATE_RE.match(text)
    if match is None:
        raise ParseError(f"{text!r} is not a rate (try 1Gbit/s, 10Gbps)")
    unit = match.group("unit")
    if unit.endswith(("/s", "ps")):  # Gbit/s, Gbps, MBps
        unit = unit[:-2]
    factor = 1.0
    if unit.endswith("bit"):
        unit = unit[:-3]
    elif unit.endswith("b"):
        unit = unit[:-1]
    elif unit.endswith("B"):
        unit, factor = unit[:-1], 8.0
    elif unit:
        raise ParseError(f"{text!r}: say bit/s or B/s, e.g. 1Gbit/s")
    if unit.lower().endswith("i") and unit[:-1].lower() in _BINARY:
        scale: float = _BINARY[unit[:-1].lower()]
    elif unit.lower() in _DECIMAL:
        scale = _DECIMAL[unit.lower()]
    else:
        raise ParseError(f"{text!r}: unknown rate prefix {unit!r}")
    return _number(match, text) * scale * factor


def parse_duration(text: str) -> float:
    """Seconds in ``text`` ("300ms", "0.3s", "2min"); a bare number is seconds."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ParseError(f"{text!r} is not a duration (try 300ms, 0.3s, 0)")
    unit = match.group("unit")
    factor = _DURATIONS.get(unit, _DURATIONS.get(unit.lower()))
    if factor is None:
        raise ParseError(f"{text!r}: unknown duration unit {unit!r}")
    return _number(match, text) * factor


def parse_count(text: str) -> float:
    """A plain rate or count with an optional decimal prefix: ``"2.5M"`` is 2.5e6."""
    match = _SIZE_RE.match(text)
    if match is None or match.group("unit").lower() not in _DECIMAL:
        raise ParseError(f"{text!r} is not a number (try 20000 or 2.5M)")
    return _number(match, text) * _DECIMAL[match.group("unit").lower()]


def _fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, a tie rounded up as JavaScript's
    ``toFixed`` does (``f"{45.25:.1f}"`` gives 45.2, ``toFixed`` 45.3), so the
    pages' scripts and the server write the same figure."""
    exact = Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{exact:.{digits}f}"


def _three_digits(value: float) -> str:
    """``value`` with three significant digits at most: 384, 45.3, 1.50."""
    if abs(value) >= 99.95:
        return _fixed(value, 0)
    if abs(value) >= 9.995:
        return _fixed(value, 1)
    return _fixed(value, 2)


def format_size(n: float) -> str:
    """A size in binary units: ``1073741824`` → ``"1.00 GiB"``, ``402653184``
    → ``"384 MiB"``, ``100`` → ``"100 B"``.

    The console's pages (the ``size`` template filter, and
    ``static/js/common.js``'s ``hvweb.fmt.size``, which follows the same
    rules) and the CLIs say sizes this way: memory is counted in powers of
    two, so its units are KiB, MiB and GiB (IEC 80000-13).
    """
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if abs(n) >= scale * 0.9995:
            return f"{_three_digits(n / scale)} {unit}"
    if abs(n) >= 1024:
        return f"{_three_digits(n / 1024)} KiB"
    return f"{n:.0f} B"


def format_rate(bps: float) -> str:
    """A link rate in decimal units: ``1e9`` → ``"1 Gbit/s"``, ``2.5e9`` →
    ``"2.5 Gbit/s"`` (links are rated in powers of ten)."""
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6)):
        if bps >= scale:
            return f"{_trim(_three_digits(bps / scale))} {unit}"
    if bps >= 1e3:
        return f"{_trim(_three_digits(bps / 1e3))} kbit/s"
    return f"{bps:.0f} bit/s"


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def format_duration(seconds: float) -> str:
    """A duration with a unit that fits, keeping three significant digits:
    ``0.0005`` → ``"0.50 ms"``, ``0.25`` → ``"250 ms"``, ``12.5`` → ``"12.5 s"``,
    ``125`` → ``"2 min 5 s"``, ``3720`` → ``"1 h 2 min"``."""
    if seconds == 0:
        return "0 s"
    if seconds < 0.9995:
        return f"{_three_digits(seconds * 1e3)} ms"
    if seconds < 59.95:
        return f"{_three_digits(seconds)} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def format_about(seconds: float) -> str:
    """A duration as an operator reads it: ``0.5 ms``, ``45 ms``, ``1.4 s``."""
    if seconds < 0.0095:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 0.9995:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.1f} s"


def format_span(seconds: float) -> str:
    """A longer duration in words: ``160`` → ``"2 min 40 s"``; short ones as
    :func:`format_about` (``"3.2 s"``)."""
    if seconds < 59.5:
        return format_about(seconds)
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"
