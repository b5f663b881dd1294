from __future__ import annotations

import random

import pytest

from migrator import delta

PS = 4096


def _pages(changed: int, seed: int = 1) -> tuple[bytes, bytes]:
    rng = random.Random(seed)
    old = rng.randbytes(PS)
    return old, rng.randbytes(changed) + old[changed:]


@pytest.mark.parametrize("changed", [1, 63, 64, 65, 1638, PS])
def test_a_delta_turns_the_old_page_into_the_new_one(changed: int) -> None:
    old, new = _pages(changed)
    packet = delta.encode(old, new)
    page = bytearray(old)
    delta.apply(memoryview(page), packet)
    assert page == new


@pytest.mark.parametrize("changed", [1, 64, 65, 1638])
def test_a_delta_carries_the_changed_lines_and_a_header(changed: int) -> None:
    old, new = _pages(changed)
    lines = -(-changed // delta.LINE)
    assert len(delta.encode(old, new)) == lines * delta.LINE + 4


def test_scattered_changes_make_one_run_each_and_no_change_makes_none() -> None:
    old, _ = _pages(0)
    new = bytearray(old)
    for at in (0, 1000, 4095):
        new[at] ^= 0xFF
    packet = delta.encode(old, bytes(new))
    assert len(packet) == 3 * (4 + delta.LINE)
    page = bytearray(old)
    delta.apply(memoryview(page), packet)
    assert page == new
    assert delta.encode(old, old) == b""
