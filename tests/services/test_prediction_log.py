"""The prediction log: a row for every outcome of a call (answers, cache hits, refusals, errors),
payloads per setting, batched inserts, a database outage that loses nothing, rows refused for
their content given up one by one, and rows written when a process exits or a server is
stopped with SIGTERM. Rows are read after `flush()`, never after a sleep."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from mlplatform.db import get_engine
from mlplatform.errors import AuthenticationFailed, NotFound
from mlplatform.models import PredictionLog
from mlplatform.services import prediction_log, predictions, principals, registry, tokens
from mlplatform.services.prediction_log_writer import Writer
from mlplatform.services.predictions import Trace
from tests.prediction_support import iris_rows
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)
from tests.support import ROOT, free_port

IRIS = json.dumps({"instances": iris_rows(2)}).encode()


@pytest.fixture(autouse=True)
def empty_log():
    """No row of an earlier test (queued in this process, written after its clean-up) in view."""
    assert prediction_log.flush(10)
    with get_engine().begin() as conn:
        conn.execute(PredictionLog.__table__.delete())


@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


@pytest.fixture
def iris(me, clean_store, gate):  # noqa: F811  (fixtures imported above)
    registry.upload_version(me, "iris", io.BytesIO(model_bytes("logreg")), "model.joblib")
    return me


def logged_call(principal, name="iris", body=IRIS, *, source="rest", authenticate=None):
    """predictions.logged as an edge calls it; returns (trace, result or the error raised)."""
    trace = Trace(source=source, model=name, body=body)

    async def call(who):
        return await predictions.predict(who, name, body, trace=trace)

    try:
        return trace, asyncio.run(predictions.logged(trace, authenticate or (lambda: principal), call))
    except BaseException as exc:  # noqa: BLE001  (the outcome under test)
        return trace, exc


def log_rows() -> list[PredictionLog]:
    assert prediction_log.flush(10)
    with get_engine().connect() as conn:
        return [PredictionLog.model_validate(r._mapping)
                for r in conn.execute(select(PredictionLog.__table__).order_by(PredictionLog.id))]


def rows_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("mlplatform_prediction_log_rows_total", {"outcome": outcome}) or 0.0


def with_settings(monkeypatch, settings, **changes):
    monkeypatch.setattr(prediction_log, "get_settings", lambda: settings.model_copy(update=changes))


def test_answers_and_cache_hits_are_logged_with_who_what_and_how_long(iris, member):
    trace, first = logged_call(iris)
    _, again = logged_call(iris, source="ui")
    assert not first.cached and again.cached
    miss, hit = log_rows()
    assert (miss.source, miss.model_name, miss.version, miss.status, miss.error_kind) == ("rest", "iris", 1, "ok", None)
    assert miss.model_id == trace.model_id and miss.version_id == trace.version_id and miss.model_id is not None
    assert (miss.user_id, miss.api_key_id, miss.n_rows, miss.cached) == (member.id, None, 2, False)
    assert 0 < miss.model_ms <= miss.total_ms and miss.at == trace.at
    assert (hit.source, hit.cached, hit.status, hit.model_ms, hit.n_rows) == ("ui", True, "ok", 0.0, 2)
    assert hit.at >= miss.at and hit.at.tzinfo is not None


def test_refusals_are_logged_with_their_code(iris, member):
    registry.update_model(iris, "iris", rate_limit_per_minute=1)
    bad_input = json.dumps({"instances": [[1.0, 2.0]]}).encode()
    outcomes = [
        logged_call(iris, body=bad_input)[1],  # takes the minute's one call (the limit comes first)
        logged_call(iris)[1],
        logged_call(iris, "no-such-model")[1],
        logged_call(None, authenticate=lambda: principals.authenticate_token("not-a-token", tokens.ACCESS))[1],
    ]
    assert [type(o).__name__ for o in outcomes[2:]] == ["NotFound", "AuthenticationFailed"]
    invalid, limited, unknown, stranger = log_rows()
    assert (invalid.status, invalid.error_kind, invalid.version) == (outcomes[0].code, "client", 1)
    assert invalid.status != "ok" and invalid.model_ms == 0.0
    assert (limited.status, limited.error_kind, limited.user_id, limited.version) == ("rate_limited", "client", member.id, 1)
    assert (unknown.status, unknown.model_name, unknown.model_id, unknown.version) == (
        outcomes[2].code, "no-such-model", None, None)
    assert (stranger.status, stranger.error_kind, stranger.user_id, stranger.model_name) == (
        outcomes[3].code, "client", None, "iris")
    assert isinstance(outcomes[3], AuthenticationFailed) and all(r.total_ms > 0 for r in (invalid, unknown, stranger))


def test_an_unreachable_model_host_and_an_unexpected_error_are_server_errors(iris, settings, monkeypatch, tmp_path):
    nowhere = settings.model_copy(update={"var_dir": tmp_path})  # no model host listens there
    monkeypatch.setattr(predictions, "get_settings", lambda: nowhere)
    _, error = logged_call(iris)
    assert error.code == "model_unavailable"
    monkeypatch.undo()
    trace = Trace(source="oip", model="iris")
    async def broken(_who):
        return 1 / 0

    with pytest.raises(ZeroDivisionError):
        asyncio.run(predictions.logged(trace, lambda: iris, broken))
    host, internal = log_rows()
    assert (host.status, host.error_kind, host.version, host.n_rows, host.cached) == ("model_unavailable", "server", 1, 2, False)
    assert (internal.status, internal.error_kind, internal.source) == ("internal_error", "server", "oip")


def test_payloads_off_hashes_and_full(iris, settings, monkeypatch):
    with_settings(monkeypatch, settings, prediction_log_payload="off")
    _, result = logged_call(iris)
    with_settings(monkeypatch, settings, prediction_log_payload="hashes")
    logged_call(iris)
    logged_call(iris, "nope")
    with_settings(monkeypatch, settings, prediction_log_payload="full")
    logged_call(iris)
    logged_call(iris, "nope")
    off, hashed, hashed_error, full, full_error = log_rows()
    assert (off.input_payload, off.output_payload) == (None, None)
    answer = json.dumps({"predictions": result.predictions}, sort_keys=True, separators=(",", ":")).encode()
    assert hashed.input_payload == "sha256:" + hashlib.sha256(IRIS).hexdigest()
    assert hashed.output_payload == "sha256:" + hashlib.sha256(answer).hexdigest()  # a hit hashes alike
    assert hashed_error.input_payload == hashed.input_payload and hashed_error.output_payload is None
    assert full.input_payload == IRIS.decode() and json.loads(full.output_payload) == {"predictions": result.predictions}
    refusal = json.loads(full_error.output_payload)["error"]
    assert refusal["code"] == full_error.status == "model_not_found" and "nope" in refusal["message"]


def test_full_payloads_are_capped_and_marked_and_keep_odd_bytes(settings, monkeypatch):
    with_settings(monkeypatch, settings, prediction_log_payload="full", prediction_log_max_payload_bytes=256)
    long_body = b'{"instances": [' + b"1.5, " * 200 + b"1.5]}"
    prediction_log.record(Trace(model="m", body=long_body), error=NotFound("no", code="model_not_found"))
    prediction_log.record(Trace(model="m", body=b"a\x00b\xff"), error=NotFound("no", code="model_not_found"))
    cut, odd = log_rows()
    assert cut.input_payload == long_body[:256].decode() + f"\n[truncated: first 256 of {len(long_body)} bytes]"
    assert odd.input_payload == "a\ufffdb\ufffd"  # NUL cannot be stored in PostgreSQL text


def test_many_records_are_written_in_few_batches(settings):
    inserts = []

    def counting_insert(rows):
        inserts.append(len(rows))
        prediction_log._insert(rows)

    writer = Writer(counting_insert, prediction_log._report, batch_rows=100, flush_seconds=60, max_rows=10_000)
    for i in range(1050):
        writer.add(prediction_log.build_row(Trace(model=f"m{i}"), None, None, settings))
    assert writer.flush(10) and writer.pending() == 0
    assert inserts == [100] * 10 + [50]
    rows = log_rows()
    assert [r.model_name for r in rows] == [f"m{i}" for i in range(1050)]


def test_a_full_queue_drops_and_counts_instead_of_waiting(settings, monkeypatch):
    small = Writer(prediction_log._insert, prediction_log._report, batch_rows=100, flush_seconds=60, max_rows=3)
    monkeypatch.setattr(prediction_log, "_writer", small)
    dropped = rows_counted("dropped")
    for i in range(5):
        prediction_log.record(Trace(model=f"m{i}"), error=NotFound("no"))
    assert small.pending() == 3 and rows_counted("dropped") == dropped + 2
    assert [r.model_name for r in log_rows()] == ["m0", "m1", "m2"]


def test_a_database_outage_keeps_the_rows_until_it_is_back(settings):
    writer = Writer(prediction_log._insert, prediction_log._report, batch_rows=2, flush_seconds=0.05, max_rows=100)
    with get_engine().begin() as conn:  # the table goes away (for the writer: a failing database)
        conn.execute(text("ALTER TABLE prediction_logs RENAME TO prediction_logs_away"))
    try:
        for i in range(5):  # added after the outage began: the writer's thread cannot beat it
            writer.add(prediction_log.build_row(Trace(model=f"m{i}"), None, None, settings))
        assert not writer.flush(0.3)
        assert writer.pending() == 5
    finally:
        with get_engine().begin() as conn:
            conn.execute(text("ALTER TABLE prediction_logs_away RENAME TO prediction_logs"))
    writer.add(prediction_log.build_row(Trace(model="m5"), None, None, settings))
    assert writer.flush(10) and writer.pending() == 0
    assert [r.model_name for r in log_rows()] == [f"m{i}" for i in range(6)]


def test_a_row_the_database_refuses_is_given_up_alone(settings):
    writer = Writer(prediction_log._insert, prediction_log._report, batch_rows=10, flush_seconds=60, max_rows=100)
    rows = [prediction_log.build_row(Trace(model=f"m{i}"), None, None, settings) for i in range(4)]
    rows[2]["status"] = None  # NOT NULL: an integrity error whatever the backend
    rejected = rows_counted("rejected")
    for row in rows:
        writer.add(row)
    assert writer.flush(10) and writer.pending() == 0
    assert [r.model_name for r in log_rows()] == ["m0", "m1", "m3"]
    assert rows_counted("rejected") == rejected + 1


EXITING = """
from mlplatform.errors import NotFound
from mlplatform.services import prediction_log
from mlplatform.services.predictions import Trace
for i in range(7):
    prediction_log.record(Trace(model=f"exit-{i}"), error=NotFound("no", code="model_not_found"))
assert prediction_log.pending() == 7  # the writer thread waits a minute: only the exit writes them
"""
SLOW_FLUSH = {"MLPLATFORM_PREDICTION_LOG_FLUSH_SECONDS": "60", "MLPLATFORM_PREDICTION_LOG_BATCH_ROWS": "1000"}


def test_rows_queued_when_a_process_exits_are_written():
    done = subprocess.run([sys.executable, "-c", EXITING], cwd=ROOT, env={**os.environ, **SLOW_FLUSH},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r.model_name for r in log_rows()] == [f"exit-{i}" for i in range(7)]


def asgi_app():
    """The API as granian serves it in test_a_server_stopped_with_sigterm_writes_its_rows."""
    from mlplatform.api.app import create_api
    from mlplatform.config import get_settings

    return create_api(get_settings())


def test_a_server_stopped_with_sigterm_writes_its_rows():
    from mlplatform.runner import poll_http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--factory", "tests.services.test_prediction_log:asgi_app"],
        cwd=ROOT, env={**os.environ, **SLOW_FLUSH}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert poll_http(base + "/health", lambda: server.poll() is None, 120), server.stdout.read1().decode()
        for i in range(4):
            request = urllib.request.Request(f"{base}/api/v1/models/sigterm-{i}/predict", data=IRIS, method="POST",
                                             headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 401
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # as the runner stops the web app
        server.wait(60)
    rows = log_rows()
    assert [(r.model_name, r.status, r.user_id) for r in rows] == [(f"sigterm-{i}", "not_authenticated", None)
                                                                   for i in range(4)]


def test_the_web_app_writes_the_log_when_it_stops():
    """Reflex mounts the API inside its own Starlette app, whose lifespan alone runs under
    granian: the flush is registered there (the API's own lifespan is tested above)."""
    from mlplatform.mlplatform import app

    assert prediction_log.flushed_at_shutdown in app.get_lifespan_tasks()


def test_0005_steps_down_and_up_again():
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    config = Config(str(ROOT / "alembic.ini"))
    try:
        command.downgrade(config, "0004")
        assert "prediction_logs" not in inspect(get_engine()).get_table_names()
    finally:
        command.upgrade(config, "head")
    indexes = {i["name"]: i["column_names"] for i in inspect(get_engine()).get_indexes("prediction_logs")}
    assert indexes == {"ix_prediction_logs_at": ["at"], "ix_prediction_logs_model_id_at": ["model_id", "at"]}
