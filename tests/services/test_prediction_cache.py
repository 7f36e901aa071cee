"""The prediction cache: canonical keys (column order and number formatting don't split equal
inputs once validated; versions, proba and values do), JSON values with a TTL, counters, and
Redis faults that never raise."""

import asyncio
import logging

import numpy as np
import pytest
import redis
import redis.asyncio
from prometheus_client import REGISTRY

from mlplatform import cache
from mlplatform.errors import InvalidInput
from mlplatform.inference.batch import Batch
from mlplatform.services import prediction_cache
from mlplatform.services.prediction_cache import cache_key, read, ttl_for

from tests import support

SHA = "a" * 64
OTHER_SHA = "b" * 64
SIGNATURE_ORDER = ["age", "plan", "score"]


def batch(columns: dict) -> Batch:
    return Batch(list(columns), list(columns.values()))


def validated(columns: dict) -> Batch:
    """What input validation hands on: the signature's column order, the signature's dtypes."""
    dtypes = {"age": np.int64, "plan": object, "score": np.float64}
    return Batch(SIGNATURE_ORDER, [np.asarray(columns[c], dtype=dtypes[c]) for c in SIGNATURE_ORDER])


def sample(name: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(f"mlplatform_prediction_cache_{name}_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def counted():
    """Counter increases during the test: counted()("lookups", "hit")."""
    before = {(n, o): sample(n, o) for n in ("lookups", "stores")
              for o in ("hit", "miss", "error", "off", "stored", "too_large")}
    return lambda name, outcome: sample(name, outcome) - before.get((name, outcome), 0.0)


@pytest.fixture
def redis_down(monkeypatch):
    """Redis at a port nobody listens on; returns the warnings the cache logs."""
    url = f"redis://127.0.0.1:{support.free_port()}/0"
    dead = redis.Redis.from_url(url, socket_connect_timeout=1.0)
    monkeypatch.setattr(cache, "get_redis", lambda: dead)
    monkeypatch.setattr(cache, "get_async_redis", lambda: redis.asyncio.Redis.from_url(url, socket_connect_timeout=1.0))
    monkeypatch.setattr(prediction_cache, "_redis_down", cache.ThrottledLog(prediction_cache.log))
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = prediction_cache.log
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def get(key: str) -> dict | None:
    """A lookup as the prediction path makes it: the stored bytes (or the Redis error), read."""
    try:
        raw = cache.get_redis().get(key)
    except redis.RedisError as exc:
        raw = exc
    return read(key, raw)


def put(key: str, value: dict, ttl_seconds: int) -> None:
    asyncio.run(prediction_cache.put(key, value, ttl_seconds))


# --- keys ---------------------------------------------------------------------------------------

def test_equal_inputs_sent_in_another_column_order_share_a_key_once_validated():
    sent_one_way = {"age": [31, 45], "plan": ["pro", None], "score": [0.5, 1.0]}
    sent_another = {"score": [0.5, 1.0], "plan": ["pro", None], "age": [31, 45]}
    assert cache_key(SHA, validated(sent_one_way), proba=False) == cache_key(SHA, validated(sent_another), proba=False)
    # the key itself follows the batch's order: ordering is validation's job, never guessed here
    assert cache_key(SHA, batch(sent_one_way), proba=False) != cache_key(SHA, batch(sent_another), proba=False)


def test_1_and_1_0_share_a_key_once_coerced_to_the_signatures_dtype():
    as_ints = validated({"age": [31, 45], "plan": ["pro", "free"], "score": [1, 2]})
    as_floats = validated({"age": [31.0, 45.0], "plan": ["pro", "free"], "score": [1.0, 2.0]})
    assert as_ints.values[2].dtype == as_floats.values[2].dtype == np.float64
    assert cache_key(SHA, as_ints, proba=True) == cache_key(SHA, as_floats, proba=True)
    # without coercion they are different inputs (a model may treat int64 and float64 apart)
    assert cache_key(SHA, batch({"x": np.array([1])}), proba=False) != cache_key(
        SHA, batch({"x": np.array([1.0])}), proba=False)


def test_byte_order_and_nan_payloads_do_not_split_keys():
    little = np.array([1.5, np.nan, -2.0])
    big = little.astype(">f8")
    other_nan = little.copy()
    other_nan.view(np.uint64)[1] = 0x7FF8_0000_0000_0001  # a NaN with another payload
    keys = {cache_key(SHA, batch({"x": v}), proba=False) for v in (little, big, other_nan)}
    assert len(keys) == 1


def test_a_float_block_and_the_same_columns_one_by_one_share_a_key():
    block = np.random.default_rng(0).normal(size=(5, 3))
    block[0, 0] = -0.0  # kept apart from 0.0 either way
    names = ["a", "b", "c"]
    as_block = Batch.from_block(names, block)
    as_columns = Batch(names, [block[:, i].copy() for i in range(3)])
    assert as_block.block is not None and as_columns.block is None
    assert cache_key(SHA, as_block, proba=False) == cache_key(SHA, as_columns, proba=False)
    zeroed = block.copy()
    zeroed[0, 0] = 0.0
    assert cache_key(SHA, Batch.from_block(names, zeroed), proba=False) != cache_key(SHA, as_block, proba=False)


def test_another_version_or_model_file_never_shares_a_key():
    b = validated({"age": [1], "plan": ["x"], "score": [0.0]})
    assert cache_key(SHA, b, proba=False) != cache_key(OTHER_SHA, b, proba=False)


def test_proba_answers_are_kept_apart():
    b = validated({"age": [1], "plan": ["x"], "score": [0.0]})
    assert cache_key(SHA, b, proba=False) != cache_key(SHA, b, proba=True)


@pytest.mark.parametrize("one, other", [
    ({"t": ["ab", "c"]}, {"t": ["a", "bc"]}),  # values are length-prefixed
    ({"t": [None]}, {"t": [""]}),  # None is not the empty string
    ({"t": [None]}, {"t": ["None"]}),
    ({"ab": [1.0], "c": [2.0]}, {"a": [1.0], "bc": [2.0]}),  # so are column names
    ({"x": [1.0, 2.0]}, {"x": [2.0, 1.0]}),  # row order matters
    ({"x": [1.0]}, {"x": [1.0, 1.0]}),
    ({"x": [0.0]}, {"x": [-0.0]}),  # a model may tell them apart
    ({"x": np.array([1], dtype=np.int64)}, {"x": np.array([True])}),
    ({"x": np.array([], dtype=np.float64)}, {"x": np.array([], dtype=object)}),
])
def test_different_inputs_get_different_keys(one, other):
    assert cache_key(SHA, batch(one), proba=False) != cache_key(SHA, batch(other), proba=False)


def test_keys_live_under_the_platforms_prefix_and_are_stable():
    key = cache_key(SHA, batch({"text": ["héllo", None, "\ud800"]}), proba=False)
    assert key.startswith(cache.key("pred", "")) and len(key) == len(cache.key("pred", "")) + 64
    assert key == cache_key(SHA, batch({"text": ["héllo", None, "\ud800"]}), proba=False)


# --- values -------------------------------------------------------------------------------------

def test_put_then_get_round_trips_compact_json_with_the_ttl(counted):
    key = cache_key(SHA, batch({"x": [1.0]}), proba=True)
    assert get(key) is None
    value = {"predictions": [np.int64(1), 0], "probabilities": np.array([[0.25, 0.75]]), "classes": ["a", "b"]}
    put(key, value, 30)
    assert get(key) == {"predictions": [1, 0], "probabilities": [[0.25, 0.75]], "classes": ["a", "b"]}
    assert 0 < cache.get_redis().ttl(key) <= 30
    assert b" " not in cache.get_redis().get(key)
    assert (counted("lookups", "miss"), counted("lookups", "hit"), counted("stores", "stored")) == (1, 1, 1)


def test_nan_predictions_survive_the_round_trip():
    put("mlp:pred:nan", {"predictions": [float("nan"), 1.0]}, 30)
    got = get("mlp:pred:nan")["predictions"]
    assert np.isnan(got[0]) and got[1] == 1.0


def test_ttl_0_stores_nothing_and_count_off_counts(counted):
    put("mlp:pred:off", {"predictions": [1]}, 0)
    assert cache.get_redis().exists("mlp:pred:off") == 0
    prediction_cache.count_off()
    assert counted("lookups", "off") == 1 and counted("stores", "stored") == 0


def test_answers_too_big_to_be_worth_caching_are_not_stored(monkeypatch, counted):
    monkeypatch.setattr(prediction_cache, "MAX_VALUE_BYTES", 100)
    put("mlp:pred:big", {"predictions": list(range(100))}, 30)
    assert cache.get_redis().exists("mlp:pred:big") == 0 and counted("stores", "too_large") == 1


@pytest.mark.parametrize("stored", [b"not json", b"[1, 2]", b"\xff"])
def test_an_unreadable_entry_is_a_counted_miss(stored, counted):
    cache.get_redis().set("mlp:pred:bad", stored)
    assert get("mlp:pred:bad") is None and counted("lookups", "error") == 1


def test_redis_down_get_misses_put_drops_and_one_warning_is_logged(redis_down, counted):
    key = cache_key(SHA, batch({"x": [1.0]}), proba=False)
    assert get(key) is None
    put(key, {"predictions": [1]}, 30)
    assert get(key) is None
    assert (counted("lookups", "error"), counted("stores", "error"), counted("lookups", "miss")) == (2, 1, 0)
    assert len(redis_down) == 1 and "served uncached" in redis_down[0].getMessage()


# --- TTLs ---------------------------------------------------------------------------------------

def test_ttl_is_the_models_own_else_the_platforms(settings, monkeypatch):
    assert ttl_for(None) == settings.prediction_cache_ttl_seconds == 3600
    assert (ttl_for(0), ttl_for(60)) == (0, 60)
    monkeypatch.setattr(settings, "prediction_cache_ttl_seconds", 0)
    assert (ttl_for(None), ttl_for(60)) == (0, 60)


@pytest.mark.parametrize("bad", [-1, 366 * 24 * 3600 + 1, True, 1.5, "60"])
def test_cache_ttls_are_whole_seconds_from_0_to_a_year(bad):
    with pytest.raises(InvalidInput) as caught:
        prediction_cache.clean_cache_ttl(bad)
    assert caught.value.details == {"field": "cache_ttl_seconds"}
    assert [prediction_cache.clean_cache_ttl(v) for v in (None, 0, 60)] == [None, 0, 60]
