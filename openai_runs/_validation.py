"""Checks on arguments, run before any request is sent."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit

from .exceptions import InvalidRequestError

ORDERS: Final = frozenset({"asc", "desc"})
STEP_INCLUDES: Final = frozenset(
    {"step_details.tool_calls[*].file_search.results[*].content"}
)
METADATA_MAX_KEYS: Final = 16
METADATA_MAX_KEY_LENGTH: Final = 64
METADATA_MAX_VALUE_LENGTH: Final = 512

# An id is one path segment: nothing that could end it (/ ? #), climb out of
# it (. and ..), that a server might fold (whitespace, control characters), or
# that has no UTF-8 form to percent-encode (lone surrogates).
_UNSAFE_ID = re.compile(r"[/?#%\\\s\x00-\x1f\x7f\ud800-\udfff]")


def check_id(name: str, value: object) -> str:
    """Return *value* if it is safe as one URL path segment."""
    if not isinstance(value, str):
        raise InvalidRequestError(name, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidRequestError(name, "must not be empty")
    if value in {".", ".."} or _UNSAFE_ID.search(value):
        raise InvalidRequestError(
            name,
            f"{value[:80]!r} is not a valid id: ids may not contain '/', '?', "
            "'#', '%', '\\', whitespace, control characters or lone surrogates, "
            "nor be '.' or '..'",
        )
    return value


# aiohttp refuses these in a header with a bare ValueError, after the call
# has begun; a key read from a file often ends with a newline.
_HEADER_BREAK = re.compile(r"[\x00-\x1f\x7f]")


def check_header(name: str, value: object) -> str:
    """Return *value* if it can be sent as a header value.

    The value is never shown in the error: headers carry credentials.
    """
    if not isinstance(value, str):
        raise InvalidRequestError(name, f"must be a string, not {type(value).__name__}")
    if _HEADER_BREAK.search(value):
        raise InvalidRequestError(
            name, "contains a control character (a stray newline?)"
        )
    return value


def check_base_url(url: object) -> str:
    """Return *url* if it is an absolute http(s) URL that paths can follow.

    The URL is not shown in the error: it may carry a password.
    """
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:  # an unclosed IPv6 bracket, a port over 65535
            pass
        else:
            if (
                parts.scheme in {"http", "https"}
                and parts.hostname
                and not parts.query
                and not parts.fragment
                and _resolvable(parts.hostname)
            ):
                return url
    raise InvalidRequestError(
        "base_url",
        "must be an http:// or https:// URL with a host and no query or "
        "fragment (query parameters go in default_query)",
    )


def _resolvable(host: str) -> bool:
    """Whether *host* has an IDNA form, as the resolver needs.

    An empty label (`a..com`) or one over 63 characters has none: aiohttp
    would fail with a raw `UnicodeError` at the first request.
    """
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def check_path(path: str) -> tuple[str, ...]:
    """Split a path string at `/` into segments, each checked as an id.

    A leading `/` is allowed, so `"/threads/thread_1/runs"` and
    `"threads/thread_1/runs"` are the same; `"../admin"`, `"a//b"` or a
    segment with `?` or `#` are refused.
    """
    parts = path.removeprefix("/").split("/")
    return tuple(check_id("path", part) for part in parts)


def check_metadata(metadata: object) -> Mapping[str, str] | None:
    """Return *metadata* if it fits the API's limits (16 keys, 64/512 chars)."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError(
            "metadata", f"must be a mapping, not {type(metadata).__name__}"
        )
    if len(metadata) > METADATA_MAX_KEYS:
        raise InvalidRequestError(
            "metadata", f"has {len(metadata)} keys; at most {METADATA_MAX_KEYS} allowed"
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise InvalidRequestError("metadata", f"key {key!r} is not a string")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise InvalidRequestError(
                "metadata",
                f"key {key[:20]!r}... is {len(key)} characters; "
                f"at most {METADATA_MAX_KEY_LENGTH} allowed",
            )
        if not isinstance(value, str):
            raise InvalidRequestError(
                "metadata",
                f"value of {key!r} must be a string, not {type(value).__name__}",
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise InvalidRequestError(
                "metadata",
                f"value of {key!r} is {len(value)} characters; "
                f"at most {METADATA_MAX_VALUE_LENGTH} allowed",
            )
    return metadata


def list_params(
    limit: int | None, order: str | None, after: str | None, before: str | None
) -> dict[str, str]:
    """Check the paging arguments and return them as query parameters."""
    params: dict[str, str] = {}
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequestError("limit", "must be an integer")
        if not 1 <= limit <= 100:
            raise InvalidRequestError(
                "limit", f"must be between 1 and 100, not {limit}"
            )
        params["limit"] = str(limit)
    if order is not None:
        if not _one_of(order, ORDERS):
            raise InvalidRequestError(
                "order", f"must be 'asc' or 'desc', not {order!r}"
            )
        params["order"] = order
    if after is not None:
        params["after"] = check_id("after", after)
    if before is not None:
        params["before"] = check_id("before", before)
    return params


def _one_of(value: object, choices: frozenset[str]) -> bool:
    """Whether *value* is one of *choices* (an unhashable value is not)."""
    return isinstance(value, str) and value in choices


def check_include(include: Iterable[str] | None) -> list[str]:
    """Return the `include[]` values if each is one the API knows."""
    if include is None:
        return []
    if isinstance(include, str):
        raise InvalidRequestError("include", "must be a list of strings, not a string")
    values = list(include)
    for value in values:
        if not _one_of(value, STEP_INCLUDES):
            raise InvalidRequestError(
                "include",
                f"unknown value {value!r}; known: {', '.join(sorted(STEP_INCLUDES))}",
            )
    return values


def check_range(
    name: str, value: float | None, low: float, high: float | None = None
) -> None:
    """Refuse a number outside `low..high` (`high` *None*: no upper bound)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(name, f"must be a number, not {type(value).__name__}")
    if math.isnan(value) or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequestError(name, f"must be {bounds}, not {value}")


def check_seconds(name: str, value: object) -> float:
    """Return *value* if it is a finite number of seconds above 0.

    NaN would remove a deadline (no comparison with it is true) and infinity
    overflows aiohttp's timer arithmetic at every request.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(
            name, f"must be a number of seconds, not {type(value).__name__}"
        )
    if not (math.isfinite(value) and value > 0):
        raise InvalidRequestError(
            name, f"must be a finite number of seconds above 0, not {value}"
        )
    return value


def check_count(name: str, value: object) -> None:
    """Refuse anything but a whole number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            name, f"must be a whole number, 0 or more, not {value!r}"
        )


def check_duration(name: str, value: object, *, positive: bool = False) -> float:
    """Refuse anything but a finite number of seconds, 0 or more (more if *positive*).

    NaN and infinity are refused: a NaN deadline never passes and an infinite
    one overflows every timer.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        low = "more than 0" if positive else "0 or more"
        raise InvalidRequestError(
            name, f"must be a finite number of seconds, {low}, not {value!r}"
        )
    return float(value)
