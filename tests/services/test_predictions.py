"""Predictions through the service on real model hosts: answers equal to scikit-learn's, the
cache (hits across shapes, never across versions), version selection, scopes and ownership,
the model's refusals explained, and outputs as plain JSON."""

from __future__ import annotations

import asyncio
import io
import json

import joblib
import numpy as np
import pytest

from mlplatform.errors import Conflict, InvalidInput, NotFound, PermissionDenied, UnsupportedMediaType
from mlplatform.services import predictions, principals, registry
from mlplatform.services.predictions import Trace, input_format, plain
from tests.prediction_support import MIXED_FRAME, iris_rows, model, model_file
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_store", "gate")


@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


def upload(principal, name: str, data: bytes) -> int:
    return registry.upload_version(principal, name, io.BytesIO(data), "model.joblib").version


def call(principal, name, document, **kw):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return asyncio.run(predictions.predict(principal, name, body, **kw))


def local(data: bytes):
    return joblib.load(io.BytesIO(data))  # our own test file


def test_an_array_model_answers_like_scikit_learn_and_then_from_the_cache(me):
    upload(me, "iris", model_bytes("logreg"))
    rows = iris_rows(5)
    first = call(me, "iris", {"instances": rows})
    expected = local(model_bytes("logreg")).predict(np.array(rows))
    assert first.predictions == expected.tolist() and all(type(p) is int for p in first.predictions)
    assert (first.model, first.version, first.cached, first.deprecated, first.n_rows) == ("iris", 1, False, False, 5)
    assert first.probabilities is None and "probabilities" not in first.body()
    # the same input in another shape, column order and number formatting is a hit
    columns = {f"f{i}": [float(r[i]) for r in rows] for i in (3, 1, 0, 2)}
    again = call(me, "iris", {"inputs": columns})
    assert again.cached and again.predictions == first.predictions
    csv = "f1,f0,f3,f2\n" + "\n".join(f"{r[1]},{r[0]},{r[3]},{r[2]}" for r in rows)
    assert call(me, "iris", csv.encode(), content_type="text/csv; charset=utf-8").cached
    assert not call(me, "iris", {"instances": rows[:4]}).cached


def test_probabilities_come_with_their_classes_when_the_model_has_them(me):
    upload(me, "iris", model_bytes("logreg"))
    rows = iris_rows(2)
    result = call(me, "iris", {"instances": rows}, proba=True)
    expected = local(model_bytes("logreg")).predict_proba(np.array(rows))
    assert np.allclose(result.probabilities, expected) and result.classes == [0, 1, 2]
    assert set(result.body()) == {"predictions", "model", "cached", "probabilities", "classes"}
    assert call(me, "iris", {"instances": rows}, proba=True).cached  # proba answers have their own key
    assert not call(me, "iris", {"instances": rows}, proba=False).cached
    upload(me, "ridge", model_file("ridge"))
    regression = call(me, "ridge", {"instances": rows}, proba=True)
    assert regression.probabilities is None and all(type(p) is float for p in regression.predictions)


def test_text_and_mixed_frame_models(me):
    upload(me, "reviews", model_file("text"))
    texts = ["a great movie", "boring plot"]
    result = call(me, "reviews", {"instances": texts}, proba=True)
    assert result.predictions == model("text").predict(texts).tolist() and result.classes == ["neg", "pos"]
    upload(me, "mixed", model_file("mixed"))
    records = MIXED_FRAME.head(3).to_dict(orient="records")
    result = call(me, "mixed", {"dataframe_records": records})
    assert result.predictions == model("mixed").predict(MIXED_FRAME.head(3)).tolist()


def test_an_unknown_category_the_encoder_refuses_is_named(me):
    upload(me, "strict", model_file("mixed"))
    upload(me, "lenient", model_file("mixed_ignore"))
    rows = [[1.0, "red", 2, True], [2.0, "purple", 1, False]]
    with pytest.raises(InvalidInput) as refused:
        call(me, "strict", {"instances": rows})
    assert refused.value.code == "predict_failed" and refused.value.details == {"column": "color", "row": 1}
    assert "'purple'" in refused.value.message and "unknown categor" in refused.value.message.lower()
    assert len(call(me, "lenient", {"instances": rows}).predictions) == 2


def test_versions_by_number_alias_production_and_latest(me):
    for seed in (0, 1, 2):
        upload(me, "iris", model_bytes("logreg", seed))
    rows = {"instances": iris_rows(1)}
    assert call(me, "iris", rows).version == 3
    assert call(me, "iris", rows, version_ref="1").version == 1
    registry.set_alias(me, "iris", "staging", 2)
    assert call(me, "iris", rows, version_ref="staging").version == 2
    registry.set_alias(me, "iris", "production", 1)
    assert call(me, "iris", rows).version == 1
    registry.update_version(me, "iris", 2, status="deprecated")
    trace = Trace()
    result = call(me, "iris", rows, version_ref="2", trace=trace)
    assert result.deprecated and trace.deprecated and trace.version == 2
    registry.update_version(me, "iris", 3, status="archived")
    with pytest.raises(Conflict) as archived:
        call(me, "iris", rows, version_ref="3")
    assert archived.value.code == "version_archived"
    with pytest.raises(NotFound):
        call(me, "iris", rows, version_ref="nope")


def test_versions_never_share_cached_answers(me):
    upload(me, "iris", model_bytes("logreg", 0))
    upload(me, "iris", model_bytes("logreg", 5))
    rows = {"instances": iris_rows(3)}
    assert not call(me, "iris", rows, version_ref="1").cached
    assert not call(me, "iris", rows, version_ref="2").cached
    assert call(me, "iris", rows, version_ref="2").cached


def test_a_model_with_cache_ttl_zero_is_never_cached(me):
    upload(me, "iris", model_bytes("logreg"))
    registry.update_model(me, "iris", cache_ttl_seconds=0)
    rows = {"instances": iris_rows(2)}
    assert not call(me, "iris", rows).cached and not call(me, "iris", rows).cached


def test_the_predict_scope_and_ownership(me, member, make_user, new_key, principal_of):
    upload(me, "iris", model_bytes("logreg"))
    rows = {"instances": iris_rows(1)}
    reader = principals.authenticate_api_key(new_key(member, scopes=("models:read",)).secret)
    with pytest.raises(PermissionDenied) as denied:
        call(reader, "iris", rows)
    assert denied.value.code == "insufficient_scope"
    predictor = principals.authenticate_api_key(new_key(member, scopes=("predict",)).secret)
    assert call(predictor, "iris", rows).version == 1
    stranger = principal_of(make_user()[0])
    with pytest.raises(NotFound):
        call(stranger, "iris", rows)


def test_the_trace_records_where_time_went(me):
    upload(me, "iris", model_bytes("logreg"))
    trace = Trace()
    call(me, "iris", {"instances": iris_rows(1)}, trace=trace)
    assert {"resolve", "validate", "cache", "model"} <= set(trace.timings)
    assert trace.rate_limit is not None and trace.rate_limit.limit > 0 and not trace.cached
    hit = Trace()
    call(me, "iris", {"instances": iris_rows(1)}, trace=hit)
    assert hit.cached and "model" not in hit.timings


def test_invalid_input_is_refused_before_the_host_and_names_column_and_row(me):
    upload(me, "iris", model_bytes("logreg"))
    with pytest.raises(InvalidInput) as refused:
        call(me, "iris", {"instances": [[1, 2, 3, 4], [1, "abc", 3, 4]]})
    assert refused.value.details == {"column": "f1", "row": 1}


@pytest.mark.parametrize("content_type, expected", [
    ("application/json", "json"), ("application/json; charset=utf-8", "json"), ("application/vnd.x+json", "json"),
    ("text/csv", "csv"), ("text/csv; charset=UTF-8", "csv"), ("TEXT/CSV", "csv"),
])
def test_content_types(content_type, expected):
    assert input_format(content_type) == expected


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data", "text/csv; charset=latin-1"])
def test_other_content_types_are_refused(content_type):
    with pytest.raises(UnsupportedMediaType):
        input_format(content_type)


def test_outputs_become_plain_json():
    assert plain(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert plain(np.array(["a", "b"])) == ["a", "b"] and plain(np.array([1, 2])) == [1, 2]
    assert plain(np.array([[0.25, 0.75]])) == [[0.25, 0.75]] and plain(np.array([True])) == [True]
