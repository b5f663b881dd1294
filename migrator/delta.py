"""The delta encoding of a re-sent page under the Compression option.

Like QEMU's XBZRLE (docs/xbzrle.txt: the XOR of the previous and current
content of a page, "represented by zero and non zero runs") but at the grain
of a 64-byte cache line, which Python compares at C speed: a page's delta is
a list of runs of changed lines, each sent as ``skip`` (unchanged lines
before it, 2 bytes), ``count`` (changed lines, 2 bytes) and the lines' new
bytes. The destination applies the runs to the copy it holds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from operator import ne

__all__ = ["LINE", "apply", "encode"]

#: Bytes compared and sent together.
LINE = 64
_RUN = re.compile(b"\x01+")


@lru_cache(maxsize=8)
def _lines(page_size: int) -> list[slice]:
    return list(map(slice, range(0, page_size, LINE), range(LINE, page_size + 1, LINE)))


def encode(old: bytes | bytearray, new: bytes | bytearray) -> bytes:
    """The delta that turns page ``old`` into page ``new`` (same length)."""
    lines = _lines(len(new))
    changed = bytes(map(ne, map(new.__getitem__, lines), map(old.__getitem__, lines)))
    out = bytearray()
    prev = 0
    for match in _RUN.finditer(changed):
        a, b = match.span()
        out += (a - prev).to_bytes(2, "little") + (b - a).to_bytes(2, "little")
        out += new[a * LINE : b * LINE]
        prev = b
    return bytes(out)


def apply(page: memoryview, delta: bytes) -> None:
    """Apply ``delta`` (from :func:`encode`) to ``page`` in place."""
    at = 0  # line in the page
    i = 0  # byte in the delta
    end = len(delta)
    while i < end:
        skip = int.from_bytes(delta[i : i + 2], "little")
        count = int.from_bytes(delta[i + 2 : i + 4], "little")
        i += 4
        at += skip
        n = count * LINE
        page[at * LINE : at * LINE + n] = delta[i : i + n]
        i += n
        at += count
