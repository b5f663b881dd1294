from __future__ import annotations

import random

from migrator.memory import SourceMemory
from migrator.spec import MIB
from migrator.transfer import PageSender

from .conftest import small_spec

PS = 4096


def _sender(memory: int) -> PageSender:
    """A sender with a destination, over seeded non-zero memory."""
    source = SourceMemory.filled(
        pages=memory // PS, page_size=PS, zero_pages=0, rng=random.Random(0)
    )
    sender = PageSender(small_spec(memory), source, guest_writes=False)
    sender.allocate()
    return sender


def test_zero_pages_rewritten_on_the_destination_in_later_passes() -> None:
    sender = _sender(1 * MIB)
    src = sender.source
    src.mark_all()
    sender.send_marked(fresh=True)
    src.data[PS * 3 : PS * 5] = bytes(2 * PS)  # two pages become zero
    src.marks[3] = src.marks[4] = 1
    pages, zero, payload = sender.send_marked()
    assert (pages, zero, payload) == (2, 2, 0)
    assert sender.destination == src.data


def test_scattered_pages_with_pending_writes_and_zeros_arrive_exact() -> None:
    # Far more single pages than one hot chunk holds, so the chunks'
    # boundaries, their pending guest writes and their zero pages all count.
    sender = _sender(8 * MIB)
    src = sender.source
    src.set_writes(64, random.Random(5))  # each write changes 64 bytes
    src.mark_all()
    sender.send_marked(fresh=True)
    scattered = list(range(1, src.pages, 7))  # every 7th page: runs of one
    zeroed = scattered[5::40]
    for page in zeroed:
        src.data[page * PS : (page + 1) * PS] = bytes(PS)
    for page in scattered:
        src.marks[page] = 1
    written = [p for p in scattered[::3] if p not in zeroed]
    for page in written:
        src.marks[page] = 9  # a guest write not yet applied to the page
    before = {p: bytes(src.data[p * PS : (p + 1) * PS]) for p in written}
    pages, zero, payload = sender.send_marked()
    assert (pages, zero) == (len(scattered), len(zeroed))
    assert payload == (len(scattered) - len(zeroed)) * PS
    assert src.dirty_count() == 0
    for p in written:  # the write changed its 64 bytes and nothing else
        after = src.data[p * PS : (p + 1) * PS]
        assert after[:64] != before[p][:64]
        assert after[64:] == before[p][64:]
    assert sender.destination == src.data
