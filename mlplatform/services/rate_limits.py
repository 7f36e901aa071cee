"""Prediction rate limits: fixed one-minute windows in Redis, charged in one round trip (Lua).

Which windows one prediction request is charged to (all of them at once, or none):
- the caller's account (`user`): the platform limit `predict_rate_limit_per_minute`, whatever
  the credential (API key, access token, browser session) and whatever the model;
- the API key it came with, if any (`key`): the key's own `rate_limit_per_minute`, else the
  platform limit;
- when the model sets its own `rate_limit_per_minute`: the caller's account's calls to that
  model (`model`), at the model's limit. Per account, not per key, so more keys never buy more
  calls to a limited model.
The account window is always there, so a key's or a model's limit narrows what a caller gets and
never widens it: the operator's setting is the ceiling (raise it to lift every limit).

A request one window refuses is charged to none (refusals cost no quota anywhere). Windows start
at their first request and last a minute, so a client can burst up to twice a limit across a
window boundary: the price of one counter per window. The answer describes the tightest window:
the fewest requests left (on a tie, the later reset); when refused, the full window that frees
up last, whose reset is the Retry-After.

Redis unreachable: `predict_rate_limit_fail_open` true (the default) serves the request
unlimited and logs a warning at most once a minute per process; the state then says
remaining=-1 (unknown) and `headers()` gives only RateLimit-Limit. False: ServiceUnavailable.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass

import redis

from mlplatform import cache
from mlplatform.config import get_settings
from mlplatform.errors import InvalidInput, RateLimited, ServiceUnavailable
from mlplatform.models import MAX_INT32
from mlplatform.services.principals import Principal

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
UNKNOWN = -1
_redis_down = cache.ThrottledLog(log)


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int  # UNKNOWN (-1) when Redis could not be asked and the limit failed open
    reset_seconds: int  # seconds until that window ends; UNKNOWN (-1) with remaining

    @property
    def known(self) -> bool:
        return self.remaining != UNKNOWN


class PredictRateLimited(RateLimited):
    """A 429 that carries the state its RateLimit-* headers describe."""

    def __init__(self, state: RateLimitState):
        super().__init__(
            f"Rate limit of {state.limit} predictions per minute reached; retry in {state.reset_seconds} s",
            retry_after=state.reset_seconds,
        )
        self.state = state
        self.details = {"limit": state.limit, "remaining": 0, "reset": state.reset_seconds,
                        "retry_after": state.reset_seconds}


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int


async def check_predict(
    principal: Principal, model_limit: int | None = None, *, model_id: uuid.UUID | str | None = None
) -> RateLimitState:
    """Charge one prediction to the caller's windows (one Redis round trip) and describe the
    tightest. Raises PredictRateLimited (an errors.RateLimited) when a window is full, and
    ServiceUnavailable when Redis is down and the limit fails closed.

    `model_limit` is the model's own limit (None: none). With `model_id` it gets its own window
    per account and model; without it, it can only lower the account's and key's limits for
    this call (their counters are shared with every other model)."""
    return (await check_predict_and_fetch(principal, model_limit, model_id=model_id))[0]


async def check_predict_and_fetch(
    principal: Principal, model_limit: int | None = None, *, model_id: uuid.UUID | str | None = None,
    fetch: str | None = None,
) -> tuple[RateLimitState, bytes | None | redis.RedisError]:
    """check_predict, and in the same round trip the value stored at `fetch` (a prediction
    cache key): None when absent, the RedisError when Redis could not be asked (and the limit
    failed open)."""
    windows = _windows(principal, model_limit, model_id, get_settings().predict_rate_limit_per_minute)
    try:
        refused, found, fetched = await cache.charge_windows(
            [w.key for w in windows], [w.limit for w in windows], WINDOW_SECONDS, also_get=fetch
        )
    except redis.RedisError as exc:
        return _unlimited(windows, exc), exc
    if refused:
        raise PredictRateLimited(_refusal(windows, found))
    return _tightest(windows, found), fetched


def headers(state: RateLimitState) -> dict[str, str]:
    """The IETF draft's RateLimit-Limit / -Remaining / -Reset. Without Redis the remaining count
    and the reset are unknown, so only the limit is sent (rather than made-up numbers)."""
    if not state.known:
        return {"RateLimit-Limit": str(state.limit)}
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset_seconds),
    }


def clean_rate_limit(limit: int | None, field: str = "rate_limit_per_minute") -> int | None:
    """None (the platform default) or a whole number of requests per minute, 1 to 2**31-1."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_INT32:
        raise InvalidInput(
            f"Rate limit must be a whole number of requests per minute from 1 to {MAX_INT32}",
            details={"field": field},
        )
    return limit


def _windows(
    principal: Principal, model_limit: int | None, model_id: uuid.UUID | str | None, default: int
) -> list[_Window]:
    # every key shares the account's hash tag: one Lua call may only touch one Redis Cluster slot
    tag = f"{{{principal.user_id}}}"
    user_limit = key_limit = default
    if principal.api_key_id is not None and principal.key_rate_limit is not None:
        key_limit = principal.key_rate_limit
    if model_limit is not None and model_id is None:
        user_limit, key_limit = min(user_limit, model_limit), min(key_limit, model_limit)
    windows = [_Window(cache.key("rl", tag, "user"), user_limit)]
    if principal.api_key_id is not None:
        windows.append(_Window(cache.key("rl", tag, "key", str(principal.api_key_id)), key_limit))
    if model_limit is not None and model_id is not None:
        windows.append(_Window(cache.key("rl", tag, "model", str(model_id)), model_limit))
    return windows


def _seconds(ms: int) -> int:
    return max(math.ceil(ms / 1000), 1)


def _tightest(windows: list[_Window], found: list[tuple[int, int]]) -> RateLimitState:
    states = [RateLimitState(w.limit, max(w.limit - count, 0), _seconds(ms))
              for w, (count, ms) in zip(windows, found)]
    return min(states, key=lambda s: (s.remaining, -s.reset_seconds))


def _refusal(windows: list[_Window], found: list[tuple[int, int]]) -> RateLimitState:
    full = [RateLimitState(w.limit, 0, _seconds(ms))
            for w, (count, ms) in zip(windows, found) if count >= w.limit]
    return max(full, key=lambda s: s.reset_seconds)


def _unlimited(windows: list[_Window], exc: redis.RedisError) -> RateLimitState:
    if not get_settings().predict_rate_limit_fail_open:
        _redis_down.warning("redis unavailable, predictions refused (rate limits fail closed): %s", exc)
        raise ServiceUnavailable(
            "Rate limiting is unavailable; try again shortly", code="rate_limit_unavailable"
        ) from exc
    _redis_down.warning("redis unavailable, predictions served without rate limits: %s", exc)
    return RateLimitState(min(w.limit for w in windows), UNKNOWN, UNKNOWN)
