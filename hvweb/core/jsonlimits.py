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

# A JSON string (unrolled: no alternation per character), anything that is not
# a bracket, and an innermost pair of brackets (of either kind: a mismatch is
# the parser's to report).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_PAIR = re.compile(r"[\[{][\]}]")
_OPENERS = re.compile(r"[\[{]+$")


class TooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"JSON nested deeper than {limit} levels of arrays and objects"
        )
        self.limit = limit


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` when ``text`` nests deeper than ``limit``.

    Without parsing and without a Python loop per character: strings and
    everything but brackets are removed by regular expressions, then each pass
    removes the innermost pairs, one nesting level at a time (so at most
    ``limit`` passes over the brackets alone). Malformed text is left to the
    parser, but never deeper than the limit (``[[[[`` unclosed included).
    """
    if text.count("[") + text.count("{") <= limit:
        return  # cannot be too deep: the common case costs two counts
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for level in range(limit + 1):
        if not brackets:
            return
        brackets, removed = _PAIR.subn("", brackets)
        if not removed:
            # Unbalanced: closers, then openers that never close.
            tail = _OPENERS.search(brackets)
            if level + (len(tail.group()) if tail else 0) > limit:
                raise TooDeep(limit)
            return
    raise TooDeep(limit)


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
