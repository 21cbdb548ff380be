"""A host's own word on its quota: ``RateLimit`` headers, read so the budget lasts.

Sites that send their remaining quota and when it resets get paced so that the remaining
budget reaches 0 at the reset, not before: one request every ``reset / remaining``
seconds (the requests already out counted as spent), and none at all while it is 0. No
crawler people use reads these headers; a site that sends them tells us exactly how fast
it wants us, before it has to refuse.

The forms read, the first found winning:

- ``RateLimit: "default";r=50;t=30`` -- the IETF draft since -08 (``r`` remaining,
  ``t`` seconds to the reset; several policies, the one that runs out first wins);
- ``RateLimit: limit=100, remaining=50, reset=30`` -- draft -07;
- ``RateLimit-Remaining: 50`` and ``RateLimit-Reset: 30`` -- drafts up to -06;
- ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` -- the common ones (GitHub, many
  APIs), whose reset is seconds, a Unix time (a number past 10^9) or an HTTP date.

``RateLimit-Policy`` (the quota and its window) is not needed for pacing: the remaining
budget and the reset say it all. The parsing is lenient by hand rather than a Structured
Fields library (``http-sf`` would be a dependency for one header, and it rejects a whole
field on one slip, which real servers make); anything unreadable is ignored, as if the
header were absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .retry import parse_retry_after

# A reset value above this is a Unix time, not a delay (2001-09-09: no delay is that long).
_EPOCH = 1_000_000_000
_PAIRS = (
    ("RateLimit-Remaining", "RateLimit-Reset"),
    ("X-RateLimit-Remaining", "X-RateLimit-Reset"),
)


@dataclass(frozen=True, slots=True)
class Quota:
    """What a host said of its quota: requests ``remaining`` until ``reset`` seconds."""

    remaining: int
    reset: float


def read_quota(headers: Mapping[str, str], *, wall: float) -> Quota | None:
    """The quota in a response's headers, or None. ``wall`` is ``time.time()`` (for a
    reset given as a Unix time or a date); ``headers`` is case-insensitive, as a
    response's are."""
    combined = headers.get("RateLimit")
    if combined is not None:
        quota = _combined(combined)
        if quota is not None:
            return quota
    # Asked of every answer: three lookups when a host sends none of these (most).
    for remaining_name, reset_name in _PAIRS:
        remaining = headers.get(remaining_name)
        if remaining is None:
            continue
        reset = headers.get(reset_name)
        if reset is not None:
            quota = _pair(remaining, reset, wall)
            if quota is not None:
                return quota
    return None


def _combined(value: str) -> Quota | None:
    """``"a";r=5;t=30, "b";r=100;t=3600`` or ``limit=10, remaining=5, reset=30``."""
    found: list[Quota] = []
    old: dict[str, str] = {}
    for member in value.split(","):
        params: dict[str, str] = {}
        for part in member.split(";"):
            key, eq, val = part.strip().partition("=")
            if eq:
                params[key.strip().lower()] = val.strip().strip('"')
        if "r" in params and "t" in params:
            quota = _numbers(params["r"], params["t"])
            if quota is not None:
                found.append(quota)
        old.update(params)
    if not found and "remaining" in old and "reset" in old:
        quota = _numbers(old["remaining"], old["reset"])
        if quota is not None:
            found.append(quota)
    # The policy that runs out first: the fewest requests per second left.
    return min(found, key=_pace, default=None)


def _pair(remaining: str, reset: str, wall: float) -> Quota | None:
    quota = _numbers(remaining, reset)
    if quota is not None:
        if quota.reset > _EPOCH:
            return Quota(quota.remaining, max(0.0, quota.reset - wall))
        return quota
    seconds = parse_retry_after(reset, now=wall)  # an HTTP date (or plain seconds)
    left = _count(remaining)
    if seconds is None or left is None:
        return None
    return Quota(left, seconds)


def _numbers(remaining: str, reset: str) -> Quota | None:
    left = _count(remaining)
    if left is None:
        return None
    try:
        seconds = float(reset)
    except ValueError:
        return None
    if not 0 <= seconds < float("inf"):
        return None
    return Quota(left, seconds)


def _count(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _pace(quota: Quota) -> float:
    return quota.remaining / quota.reset if quota.reset > 0 else float("inf")


def quota_interval(quota: Quota, in_flight: int) -> float | None:
    """Seconds between requests so that the budget lasts to the reset, counting the
    ``in_flight`` requests already out as spent; None when the quota does not limit us
    (the reset is now); ``inf`` when nothing is left until the reset."""
    if quota.reset <= 0:
        return None
    left = quota.remaining - in_flight
    if left <= 0:
        return float("inf")
    return quota.reset / left
