"""Prediction rate limits: one Redis round trip, the account / key / model windows, refusals that
charge nothing, 429 details and headers, and Redis down (fail open or closed)."""

import asyncio
import logging
import uuid

import pytest
import redis
import redis.asyncio
import redis.asyncio.client

from mlplatform import cache
from mlplatform.errors import InvalidInput, RateLimited, ServiceUnavailable
from mlplatform.services import api_keys, principals, rate_limits
from mlplatform.services.rate_limits import RateLimitState, headers

from tests import support


@pytest.fixture
def user_principal(member, principal_of):
    return principal_of(member)


@pytest.fixture
def key_principal(principal_of):
    """The principal an API key (with its own limit, or none) authenticates as."""

    def make(user, limit=None):
        created = api_keys.create_key(principal_of(user), "k", ["predict"], rate_limit_per_minute=limit)
        return principals.authenticate_api_key(created.secret)

    return make


@pytest.fixture
def platform_limit(settings, monkeypatch):
    def set_to(limit: int) -> None:
        monkeypatch.setattr(settings, "predict_rate_limit_per_minute", limit)

    return set_to


def check_predict(*args, **kwargs) -> RateLimitState:
    return asyncio.run(rate_limits.check_predict(*args, **kwargs))


@pytest.fixture
def commands(monkeypatch):
    """Every round trip to Redis, as the commands it carried ("EVALSHA", "EVALSHA+GET", ...)."""
    sent: list[str] = []
    one_command = redis.asyncio.Redis.execute_command
    pipelined = redis.asyncio.client.Pipeline.execute

    async def spy_command(self, *args, **options):
        sent.append(str(args[0]).upper())
        return await one_command(self, *args, **options)

    async def spy_pipeline(self, *args, **options):
        sent.append("+".join(str(command[0][0]).upper() for command in self.command_stack))
        return await pipelined(self, *args, **options)

    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", spy_command)
    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", spy_pipeline)
    return sent


@pytest.fixture
def warnings_of():
    """The warnings a logger emits during the test."""
    added: list[tuple[logging.Logger, logging.Handler, int]] = []

    def capture(logger: logging.Logger) -> list[logging.LogRecord]:
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = records.append
        added.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        return records

    yield capture
    for logger, handler, level in added:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def redis_down(monkeypatch, warnings_of):
    """Point the Redis client at a port nobody listens on; returns the warnings logged."""
    dead = f"redis://127.0.0.1:{support.free_port()}/0"
    monkeypatch.setattr(cache, "get_async_redis", lambda: redis.asyncio.Redis.from_url(dead, socket_connect_timeout=1.0))
    monkeypatch.setattr(rate_limits, "_redis_down", cache.ThrottledLog(rate_limits.log))
    return warnings_of(rate_limits.log)


def refused(call) -> rate_limits.PredictRateLimited:
    with pytest.raises(RateLimited) as caught:
        call()
    return caught.value


def test_each_request_is_one_round_trip_even_with_three_windows(member, key_principal, commands):
    caller = key_principal(member, limit=50)
    check_predict(caller, 10, model_id=uuid.uuid4())  # the first call may load the script
    commands.clear()
    check_predict(caller, 10, model_id=uuid.uuid4())
    assert commands == ["EVALSHA"]
    commands.clear()
    refused(lambda: [check_predict(caller, 1, model_id="m") for _ in range(2)])
    assert commands == ["EVALSHA", "EVALSHA"]  # a refusal costs one round trip too


def test_a_redis_that_lost_the_script_loads_it_again(user_principal, commands):
    check_predict(user_principal)
    cache.get_redis().script_flush()
    commands.clear()
    assert check_predict(user_principal).remaining == 98
    assert commands == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]


def test_the_account_window_counts_every_credential_and_only_that_account(
    member, admin, principal_of, key_principal, platform_limit
):
    platform_limit(3)
    by_token, by_key = principal_of(member), key_principal(member)
    assert [check_predict(p).remaining for p in (by_token, by_key, by_token)] == [2, 1, 0]
    caught = refused(lambda: check_predict(key_principal(member)))  # a fresh key: still the account's
    assert caught.details["limit"] == 3
    assert check_predict(principal_of(admin)).remaining == 2


def test_a_keys_own_limit_and_a_refusal_charges_nothing(member, principal_of, key_principal):
    narrow = key_principal(member, limit=2)
    first, second = check_predict(narrow), check_predict(narrow)
    assert (first.limit, first.remaining, second.remaining) == (2, 1, 0)
    for _ in range(3):
        caught = refused(lambda: check_predict(narrow))
    assert caught.details == {"limit": 2, "remaining": 0, "reset": caught.retry_after,
                              "retry_after": caught.retry_after}
    assert 1 <= caught.retry_after <= 60
    assert caught.state == RateLimitState(2, 0, caught.retry_after)
    assert caught.code == "rate_limited"
    # the account window saw the two requests served, not the three refused
    assert check_predict(principal_of(member)).remaining == 100 - 3
    assert check_predict(key_principal(member)).limit == 100  # another key: the platform limit


def test_a_key_limit_above_the_platform_limit_is_capped_by_the_account(member, key_principal, platform_limit):
    platform_limit(2)
    wide = key_principal(member, limit=1000)
    assert [check_predict(wide).limit for _ in range(2)] == [2, 2]
    assert refused(lambda: check_predict(wide)).details["limit"] == 2


def test_a_model_limit_is_per_account_and_model(member, admin, principal_of, key_principal):
    model, other_model = uuid.uuid4(), uuid.uuid4()
    one_key, another_key = key_principal(member), key_principal(member)
    assert check_predict(one_key, 2, model_id=model).remaining == 1
    assert check_predict(another_key, 2, model_id=model).remaining == 0
    caught = refused(lambda: check_predict(principal_of(member), 2, model_id=model))  # keys don't add up
    assert caught.details["limit"] == 2
    assert check_predict(one_key, 2, model_id=other_model).remaining == 1
    assert check_predict(one_key, None, model_id=model).limit == 100  # without its limit: the account's
    assert check_predict(principal_of(admin), 2, model_id=model).remaining == 1


def test_a_model_limit_without_the_model_id_narrows_the_shared_windows(user_principal):
    assert [check_predict(user_principal, 2).remaining for _ in range(2)] == [1, 0]
    assert refused(lambda: check_predict(user_principal, 2)).details["limit"] == 2
    assert check_predict(user_principal).remaining == 100 - 3  # the same account window


def test_the_state_describes_the_tightest_window(member, key_principal):
    caller = key_principal(member, limit=5)
    state = check_predict(caller, 50, model_id="m")
    assert (state.limit, state.remaining) == (5, 4) and 1 <= state.reset_seconds <= 60
    assert state.known


def test_the_retry_after_is_the_full_window_that_frees_up_last(member, key_principal, platform_limit):
    platform_limit(1)
    caller = key_principal(member, limit=1)
    check_predict(caller)
    account, key = rate_limits._windows(caller, None, None, 1)
    r = cache.get_redis()
    r.pexpire(account.key, 5_000)
    r.pexpire(key.key, 30_000)
    assert refused(lambda: check_predict(caller)).retry_after == 30
    r.pexpire(account.key, 45_000)
    assert refused(lambda: check_predict(caller)).retry_after == 45


def test_a_window_left_without_expiry_gets_one(user_principal):
    (account,) = rate_limits._windows(user_principal, None, None, 100)
    cache.get_redis().set(account.key, 100)  # full, and never expiring
    assert refused(lambda: check_predict(user_principal)).retry_after == 60
    assert 0 < cache.get_redis().pttl(account.key) <= 60_000


def test_headers_name_limit_remaining_and_reset():
    assert headers(RateLimitState(100, 97, 42)) == {
        "RateLimit-Limit": "100", "RateLimit-Remaining": "97", "RateLimit-Reset": "42"
    }
    assert headers(RateLimitState(100, rate_limits.UNKNOWN, rate_limits.UNKNOWN)) == {"RateLimit-Limit": "100"}


def test_redis_down_fails_open_by_default_and_logs_once(member, key_principal, redis_down):
    caller = key_principal(member, limit=5)
    states = [check_predict(caller, 50, model_id="m") for _ in range(3)]
    assert states == [RateLimitState(5, -1, -1)] * 3 and not states[0].known
    assert len(redis_down) == 1 and "served without rate limits" in redis_down[0].getMessage()


def test_redis_down_fails_closed_when_set(user_principal, settings, monkeypatch, redis_down):
    monkeypatch.setattr(settings, "predict_rate_limit_fail_open", False)
    with pytest.raises(ServiceUnavailable) as caught:
        check_predict(user_principal)
    assert caught.value.code == "rate_limit_unavailable"
    assert len(redis_down) == 1


@pytest.mark.parametrize("bad", [0, -1, 2**31, True, 1.5, "10"])
def test_limits_are_whole_positive_numbers(bad):
    with pytest.raises(InvalidInput) as caught:
        rate_limits.clean_rate_limit(bad)
    assert caught.value.details == {"field": "rate_limit_per_minute"}


def test_valid_limits():
    assert [rate_limits.clean_rate_limit(v) for v in (None, 1, 2**31 - 1)] == [None, 1, 2**31 - 1]
