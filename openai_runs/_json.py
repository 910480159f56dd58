"""Body decoding: JSON from bytes, with orjson when present, nested at most so deep."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Final

try:
    import orjson
except ImportError:  # pragma: no cover - without the optional [fast] extra
    _HAVE_ORJSON = False
else:
    _HAVE_ORJSON = True

__all__ = ["MAX_DEPTH", "JSONTooDeepError", "loads"]

MAX_DEPTH: Final = 128
"""The deepest nesting of arrays and objects a body may have.

The API's deepest object (a JSON Schema in a tool or response format) is a
few dozen levels at most. Deeper documents are refused before decoding:
json.loads recurses once per level (a 4 KB body of `[` reached Python's
recursion limit), and so do repr, json.dumps and cattrs on what it returns.
"""


class JSONTooDeepError(ValueError):
    """A JSON document nested deeper than `MAX_DEPTH`."""


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _check_depth(raw: bytes) -> None:
    """Raise `JSONTooDeepError` if *raw* nests deeper than `MAX_DEPTH`.

    Counting brackets is one C-speed pass; only a body with more than
    MAX_DEPTH of them (a page of steps has about 1,500) is looked at more
    closely, and only outside its strings. In JSON a backslash appears only
    in a string's escapes, so dropping each escaped backslash and then each
    escaped quote leaves only the quotes that open and close strings: every
    other piece between them is outside. The nesting is then the highest
    running count of the brackets there. (A regular expression that skipped
    strings cost several times the decoding of the page it guarded.) A body
    that is not valid JSON may be counted wrong; the parser refuses it, or
    it is refused here as too deep: a decode error either way.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return
    if max(accumulate(map(_STEP.__getitem__, brackets))) > MAX_DEPTH:
        raise JSONTooDeepError(f"nested deeper than {MAX_DEPTH} levels")


# Each digit as "0", each byte a JSON number may follow as " ", the rest as "a":
# an integer of 19 digits or more then shows as " " and nineteen "0"s.
_DIGIT_RUNS = bytes(
    48 if 48 <= i <= 57 else 32 if i in b":[,- \t\r\n" else 97 for i in range(256)
)
_LONG_INTEGER = b" " + b"0" * 19


def _orjson_loads(raw: bytes) -> Any:
    """Decode with orjson where it agrees with [json.loads][], else with it.

    orjson reads an integer beyond 64 bits as a float, where json.loads keeps
    it an int: a body with an integer of 19 digits or more goes to json.loads.
    orjson refuses what it does not take (`NaN`, lone surrogate escapes, a
    UTF-16 body), and json.loads decides those too, so what parses, and how
    it fails, does not depend on the extra.
    """
    if _LONG_INTEGER in b" " + raw.translate(_DIGIT_RUNS):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


# orjson, when installed (`pip install openai-runs[fast]`), decodes a run in
# a third of json.loads' time.
_decode: Callable[[bytes], Any] = _orjson_loads if _HAVE_ORJSON else json.loads


def loads(raw: bytes) -> Any:
    """Decode a response body.

    Args:
        raw: The body as it came.

    Returns:
        The decoded JSON value.

    Raises:
        ValueError: *raw* is not JSON, or is nested deeper than `MAX_DEPTH`
            (`JSONTooDeepError`).
    """
    _check_depth(raw)
    try:
        return _decode(raw)
    except RecursionError:  # an unclosed run of brackets, which no pass pairs
        raise JSONTooDeepError(f"nested deeper than {MAX_DEPTH} levels") from None
