"""Write JSON laid out the way PowerShell's ConvertTo-Json lays it out.

``export_hyperv``, the test fixtures and the benchmark write files in the shape
PowerShell itself writes, so that the importer is exercised on what it will
really be given:

* Windows PowerShell 5.1 (``JavaScriptSerializer`` plus its own indenter): four
  spaces, two spaces after each colon, a nested value's lines aligned under its
  opening bracket, ``<``, ``>``, ``&`` and ``'`` written as ``\\u003c`` and so on,
  CRLF line ends. Seen in PowerShell/PowerShell issue 2736 ("Use prettier
  formatting for ConvertTo-Json") and issue 8604.
* PowerShell 7 (Newtonsoft's ``Formatting.Indented``): two spaces, one space
  after the colon, CRLF on Windows.

:func:`encode` adds what the writing command adds: ``Out-File`` and ``>`` in 5.1
write UTF-16 LE with a byte-order mark and end the text with a line break
(about_Character_Encoding, PowerShell 5.1).

Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

__all__ = ["Style", "dumps", "encode"]

Style = Literal["ps51", "ps7"]

_DATE = re.compile(r"^/Date\(-?\d+([+-]\d{4})?\)/$")
_PS51_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def _string(value: str, style: Style) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if style == "ps51":
        text = "".join(_PS51_ESCAPES.get(ch, ch) for ch in text)
        if _DATE.match(value):
            # JavaScriptSerializer writes a DateTime as "\/Date(ms)\/".
            text = text.replace("/", "\\/")
    return text


def _scalar(value: Any, style: Style) -> str:
    if isinstance(value, str):
        return _string(value, style)
    return json.dumps(value)


def _ps51(value: Any, column: int, nl: str) -> str:
    """``value`` as 5.1 writes it when its first character sits at ``column``."""
    pad = " " * column
    if isinstance(value, dict):
        if not value:
            return "{" + nl + nl + pad + "}"
        lines = []
        for key, item in value.items():
            head = f"{pad}    {_string(str(key), 'ps51')}:  "
            lines.append(head + _ps51(item, len(head), nl))
        return "{" + nl + ("," + nl).join(lines) + nl + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[" + nl + nl + pad + "]"
        inner = " " * (column + 4)
        items = [inner + _ps51(item, column + 4, nl) for item in value]
        return "[" + nl + ("," + nl).join(items) + nl + pad + "]"
    return _scalar(value, "ps51")


def _ps7(value: Any, level: int, nl: str) -> str:
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [
            f"{inner}{_string(str(k), 'ps7')}: {_ps7(v, level + 1, nl)}"
            for k, v in value.items()
        ]
        return "{" + nl + ("," + nl).join(members) + nl + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [inner + _ps7(v, level + 1, nl) for v in value]
        return "[" + nl + ("," + nl).join(items) + nl + pad + "]"
    return _scalar(value, "ps7")


def dumps(value: Any, style: Style = "ps7", newline: str = "\r\n") -> str:
    """``value`` as ConvertTo-Json of that PowerShell writes it (no final newline)."""
    if style == "ps51":
        return _ps51(value, 0, newline)
    if style == "ps7":
        return _ps7(value, 0, newline)
    raise ValueError(f"unknown style {style!r}: ps51 or ps7")


def encode(text: str, encoding: str = "utf-8", *, final_newline: str = "\r\n") -> bytes:
    """``text`` as a file: ``utf-16`` (5.1's Out-File, with BOM), ``utf-8-sig``
    (5.1's ``Out-File -Encoding utf8``) or ``utf-8`` (PowerShell 7)."""
    body = text + final_newline
    if encoding == "utf-16":
        return b"\xff\xfe" + body.encode("utf-16-le")
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + body.encode("utf-8")
    if encoding == "utf-8":
        return body.encode("utf-8")
    raise ValueError(f"unknown encoding {encoding!r}: utf-16, utf-8-sig or utf-8")
