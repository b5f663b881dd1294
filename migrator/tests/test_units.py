from __future__ import annotations

import pytest

from migrator.errors import MigratorError, ParseError
from migrator.units import (
    format_duration,
    format_rate,
    format_size,
    parse_count,
    parse_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1GiB", 1 << 30),
        ("4KiB", 4096),
        ("64K", 65536),
        ("64KB", 65536),
        ("1.5 MiB", 3 << 19),
        ("512", 512),
        ("2g", 2 << 30),
    ],
)
def test_sizes_are_binary(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1 parsec", "-1GiB", "0.3B", "1GiB/s"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Gbit/s", 1e9),
        ("10Gbps", 1e10),
        ("100Mbit/s", 1e8),
        ("125MB/s", 1e9),
        ("2.5Gb/s", 2.5e9),
        ("1000", 1000.0),
        ("1Gibit/s", float(1 << 30)),
    ],
)
def test_rates_are_decimal_bits(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["fast", "1Gfoo/s", "1 parsec/s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("300ms", 0.3), ("0", 0.0), ("1.5s", 1.5), ("2min", 120.0), ("250us", 2.5e-4)],
)
def test_durations(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


def test_bad_duration_is_a_migrator_error() -> None:
    with pytest.raises(MigratorError, match="fortnight"):
        parse_duration("3 fortnight")


def test_counts_take_decimal_prefixes() -> None:
    assert parse_count("2.5M") == 2.5e6
    assert parse_count("20000") == 20000
    with pytest.raises(ParseError):
        parse_count("2Mi")


def test_formatting_is_readable() -> None:
    assert format_size(1 << 30) == "1.00 GiB"
    assert format_size(100) == "100 B"
    assert format_size(512 * 0.75 * (1 << 20)) == "384 MiB"
    assert format_size(1023 * (1 << 20) + 1) == "1023 MiB"
    assert format_size(1024 * (1 << 20) - 1) == "1.00 GiB"
    assert format_size(45.25 * (1 << 20)) == "45.3 MiB"  # a tie rounds up, as in JS
    assert format_rate(1e9) == "1 Gbit/s"
    assert format_rate(2.5e9) == "2.5 Gbit/s"
    assert format_rate(100e6) == "100 Mbit/s"
    assert format_duration(0.25) == "250 ms"
    assert format_duration(0.0005) == "0.50 ms"
    assert format_duration(0.0452) == "45.2 ms"
    assert format_duration(1.4) == "1.40 s"
    assert format_duration(12.5) == "12.5 s"
    assert format_duration(125) == "2 min 5 s"
    assert format_duration(3720) == "1 h 2 min"
    assert format_duration(0) == "0 s"
