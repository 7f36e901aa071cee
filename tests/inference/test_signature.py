"""describe / probe_batch / predict on every benign corpus model, and Batch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from mlplatform.inference.batch import Batch
from mlplatform.inference.loader import installed_versions, load_model
from mlplatform.inference.signature import describe, predict, probe_batch
from tests.corpus.benign import benign_models

SERVABLE = [m.name for m in benign_models() if not m.expect_refusal]
KEYS = {"estimator", "steps", "task", "input_kind", "n_features", "features", "classes", "methods", "example",
        "versions"}
pytestmark = pytest.mark.usefixtures("preloaded")


def _load(benign_corpus, name, limits, fmt="joblib"):
    corpus_file = next(f for f in benign_corpus[name] if f.format == fmt)
    with open(corpus_file.path, "rb") as fh:
        return load_model(fh, limits), corpus_file


@pytest.mark.parametrize("name", SERVABLE)
def test_signature_is_json_and_its_probe_predicts(name, benign_corpus, benign_limits, monkeypatch):
    model, corpus_file = _load(benign_corpus, name, benign_limits)
    monkeypatch.setattr(BaseEstimator, "__repr__", _forbidden)  # describe must not render the model
    monkeypatch.setattr(BaseEstimator, "get_params", _forbidden)
    signature = describe(model)
    assert set(signature) == KEYS and json.loads(json.dumps(signature)) == signature
    assert signature["n_features"] == len(signature["features"]) == len(signature["example"])
    assert signature["versions"] == installed_versions()
    monkeypatch.undo()
    with threadpool_limits(limits=1):
        probe = predict(model, signature, probe_batch(signature), proba=True)
        full = predict(model, signature, Batch.from_input(corpus_file.X), proba=True)
    assert probe["predictions"].shape[0] == 1 and full["predictions"].shape[0] == len(_rows(corpus_file.X))
    assert ("probabilities" in full) == signature["methods"]["predict_proba"]
    for value in full.values():
        assert value.dtype.kind in "biufU"


def _forbidden(*_args, **_kwargs):
    raise AssertionError("describe() must not call repr() or get_params()")


def _rows(X):
    return X if isinstance(X, list) else range(X.shape[0])


def test_dataframe_pipeline_signature(benign_corpus, benign_limits):
    model, _ = _load(benign_corpus, "column_transformer_logistic", benign_limits)
    signature = describe(model)
    assert signature["estimator"] == "sklearn.pipeline.Pipeline"
    assert [s["name"] for s in signature["steps"]] == ["columntransformer", "logisticregression"]
    assert signature["task"] == "classifier" and signature["input_kind"] == "dataframe"
    assert signature["classes"] == ["no", "yes"]
    features = {f["name"]: f for f in signature["features"]}
    assert list(features) == ["age", "income", "city", "plan", "visits"]
    assert features["plan"] == {"name": "plan", "dtype": "string", "categories": ["basic", "pro", "team"]}
    assert features["city"]["dtype"] == "string" and "paris" in features["city"]["categories"]
    assert features["age"]["dtype"] == "float64"
    assert signature["example"]["plan"] == "basic"


def test_text_signature(benign_corpus, benign_limits):
    model, _ = _load(benign_corpus, "tfidf_logistic", benign_limits)
    signature = describe(model)
    assert signature["input_kind"] == "text" and signature["n_features"] == 1
    assert signature["features"] == [{"name": "text", "dtype": "string", "categories": None}]
    result = predict(model, signature, Batch.from_input(["goal team match", "bread cheese"]))
    assert list(result["predictions"]) == ["sport", "food"]


@pytest.mark.parametrize(("name", "task"), [("ridge", "regressor"), ("kmeans", "clusterer"), ("pca", "transformer"),
                                            ("isolation_forest", "outlier_detector"), ("svc_probability", "classifier")])
def test_tasks(name, task, benign_corpus, benign_limits):
    model, _ = _load(benign_corpus, name, benign_limits)
    assert describe(model)["task"] == task


def test_string_labels_come_back_as_strings(benign_corpus, benign_limits):
    model, corpus_file = _load(benign_corpus, "logistic_iris_obj_labels", benign_limits)
    signature = describe(model)
    result = predict(model, signature, Batch.from_input(corpus_file.X), proba=True)
    assert result["predictions"].dtype.kind == "U" and result["probabilities"].shape == (6, 3)
    np.testing.assert_array_equal(result["predictions"], model.predict(corpus_file.X).astype(str))


def test_batch_from_inputs():
    array = Batch.from_input(np.arange(6.0).reshape(3, 2))
    assert array.columns == ["f0", "f1"] and array.n_rows == 3
    frame = Batch.from_input(pd.DataFrame({"a": [1, 2], "b": ["x", None]}))
    assert frame.columns == ["a", "b"] and list(frame.column("b")) == ["x", None]
    text = Batch.from_input(["one", "two"])
    assert text.columns == ["text"] and text.column("text").dtype == object


@pytest.mark.parametrize("bad", [
    lambda: Batch(["a"], [np.arange(2), np.arange(2)]),
    lambda: Batch(["a", "b"], [np.arange(2), np.arange(3)]),
    lambda: Batch(["a"], [np.array([object()], dtype=object)]),
    lambda: Batch(["a"], [np.zeros((2, 2))]),
    lambda: Batch.from_input(np.zeros((2, 2, 2))),
])
def test_batch_rejects_malformed_columns(bad):
    with pytest.raises(ValueError):
        bad()


def test_missing_columns_are_reported(benign_corpus, benign_limits):
    model, _ = _load(benign_corpus, "column_transformer_logistic", benign_limits)
    with pytest.raises(ValueError, match="missing input columns: age"):
        predict(model, describe(model), Batch(["plan"], [np.array(["basic"], dtype=object)]))
