"""The emulator's request rate limit and its `x-ratelimit-*` headers.

The live API sends, on every answer, how much of the key's rate limit is
left: `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
`x-ratelimit-reset-requests` (the time until the limit is whole again, as
`1s`, `6m0s` or `20ms`). The emulator keeps one token bucket per API key
against its own clock, so a `ManualClock` refills it without sleeping: the
bucket holds `requests` tokens and refills at `requests` per `per` seconds.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import attrs


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RateLimit:
    """How many requests one API key may send, and whether that is enforced.

    Attributes:
        requests: The requests a key may send per *per* seconds.
        per: The period, in seconds of the emulator's clock.
        enforce: Answer 429 `rate_limit_exceeded` (with `Retry-After`) when
            a key has none left; `False` only reports the headers.
    """

    requests: int = attrs.field(default=10_000, validator=_positive)
    per: float = attrs.field(default=60.0, validator=_positive)
    enforce: bool = True


def duration(seconds: float) -> str:
    """Format *seconds* the way the API's `x-ratelimit-reset-*` headers do."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


class RateLimiter:
    """One token bucket per key; safe to use from several threads."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> tuple[dict[str, str], float | None]:
        """Spend one request of *key* at *now*.

        Returns:
            The headers to send, and `None` if the request may go on, or
            the seconds until the key has a request again if it must be
            refused (only when the limit is enforced).
        """
        limit = self.limit
        rate = limit.requests / limit.per
        with self._lock:
            tokens, then = self._buckets.get(key, (float(limit.requests), now))
            tokens = min(float(limit.requests), tokens + max(0.0, now - then) * rate)
            allowed = tokens >= 1 or not limit.enforce
            if tokens >= 1:
                tokens -= 1
            self._buckets[key] = (tokens, now)
        headers = {
            "x-ratelimit-limit-requests": str(limit.requests),
            "x-ratelimit-remaining-requests": str(math.floor(tokens)),
            "x-ratelimit-reset-requests": duration((limit.requests - tokens) / rate),
        }
        return headers, None if allowed else (1 - tokens) / rate

    def refusal(self, wait: float) -> tuple[str, dict[str, str]]:
        """Return the 429's message and its retry headers for a *wait*."""
        limit = self.limit
        message = (
            f"Rate limit reached for requests per {duration(limit.per)}: Limit "
            f"{limit.requests}, Used {limit.requests}, Requested 1. Please try "
            f"again in {duration(wait)}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        return message, {
            "Retry-After": str(math.ceil(wait)),
            "retry-after-ms": str(math.ceil(wait * 1000)),
        }
