"""JSON bodies bounded in nesting depth, for every place that parses one.

Python's ``json`` parser recurses once per nested array or object, so a 2 KB
body of a thousand ``[`` raised ``RecursionError`` (a 500 on every JSON
endpoint, a 1011 on a websocket). Nothing the console reads nests beyond a
handful of levels; :data:`MAX_DEPTH` leaves ample room and the text is
measured before it is parsed, so a deeper one is refused with a message that
names the rule. The REST API's parser (:class:`BoundedJSONParser`) and the
websockets' receive path both go through :func:`loads`.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json as drf_json

__all__ = ["MAX_DEPTH", "BoundedJSONParser", "TooDeep", "check_depth", "loads"]

#: The deepest nesting of arrays and objects a JSON body may have.
MAX_DEPTH = 64

# A string (skipped whole, so brackets inside it do not count) or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"JSON nested deeper than {limit} levels of arrays and objects"
        )
        self.limit = limit


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when ``text`` nests deeper than ``limit``.

    A linear scan, without parsing: malformed text is left to the parser.
    """
    if text.count("[") + text.count("{") <= limit:
        return  # cannot be too deep: the common case costs two counts
    depth = 0
    for match in _TOKENS.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                raise TooDeep(limit)
        elif char in "]}":
            depth -= 1


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses a document deeper than ``limit`` (TooDeep)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    check_depth(text, limit)
    return json.loads(text)


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the depth bound: a deep body is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = get_encoding(parser_context)
        try:
            text = codecs.getreader(encoding)(stream).read()
            check_depth(text)
            parse_constant = drf_json.strict_constant if self.strict else None
            return drf_json.loads(text, parse_constant=parse_constant)
        except TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
