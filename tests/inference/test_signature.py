"""describe / probe_batch / predict on every benign corpus model and on wide models, and Batch."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch
from mlplatform.inference.loader import installed_versions, load_model
from mlplatform.inference.signature import LISTED_FEATURES, describe, model_input, predict, probe_batch
from tests.corpus.benign import benign_models

SERVABLE = [m.name for m in benign_models() if not m.expect_refusal]
FRAME_FITTED = [m.name for m in benign_models()
                if not m.expect_refusal and isinstance(m.X_probe, pd.DataFrame)]
WIDE = 200_000  # features: a per-column lookup in a list (quadratic) took minutes here
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


@pytest.mark.parametrize("name", FRAME_FITTED)
def test_host_path_predicts_bit_for_bit_like_the_original_frame(name, benign_corpus, benign_limits):
    model, corpus_file = _load(benign_corpus, name, benign_limits)
    reference = joblib.load(corpus_file.path)  # the trusted corpus file, as its author would load it
    signature = describe(model)
    with threadpool_limits(limits=1):  # one BLAS thread: the same summation order on both sides
        ours = predict(model, signature, Batch.from_input(corpus_file.X), proba=True)
        method = reference.predict if signature["methods"]["predict"] else reference.transform
        expected = {"predictions": np.asarray(method(corpus_file.X))}
        if "probabilities" in ours:
            expected["probabilities"] = reference.predict_proba(corpus_file.X)
    assert set(ours) == set(expected)
    for key, value in expected.items():
        value = value.astype(str) if value.dtype == object else value
        assert ours[key].dtype == value.dtype and ours[key].tobytes() == value.tobytes(), key


def test_numeric_frames_are_rebuilt_row_major(benign_corpus, benign_limits):
    model, corpus_file = _load(benign_corpus, "linear_regression_frame", benign_limits)
    rebuilt = model_input(describe(model), Batch.from_input(corpus_file.X))
    assert list(rebuilt.columns) == list(corpus_file.X.columns)
    assert rebuilt.to_numpy().flags.c_contiguous == corpus_file.X.to_numpy().flags.c_contiguous is True


def _dumped(model, limits):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return load_model(buffer, limits)


def test_wide_array_model_has_a_small_signature_and_predicts(benign_limits):
    rng = np.random.RandomState(0)
    fitted = LinearRegression().fit(rng.rand(8, WIDE), rng.rand(8))
    model = _dumped(fitted, benign_limits)
    signature = describe(model)
    assert signature["n_features"] == WIDE and signature["input_kind"] == "array"
    assert [f["name"] for f in signature["features"]] == [f"f{i}" for i in range(LISTED_FEATURES)]
    assert list(signature["example"]) == [f"f{i}" for i in range(LISTED_FEATURES)]
    protocol.pack({"ok": True, "signature": signature})  # the gate's reply fits the header cap
    probe = probe_batch(signature)
    assert probe.columns == [f"f{i}" for i in range(WIDE)] and probe.n_rows == 1
    X = rng.rand(3, WIDE)
    with threadpool_limits(limits=1):
        probed = predict(model, signature, probe)["predictions"]
        assert probed.tobytes() == fitted.predict(np.zeros((1, WIDE))).tobytes()  # no typical row: zeros
        assert predict(model, signature, Batch.from_input(X))["predictions"].tobytes() == fitted.predict(X).tobytes()
    with pytest.raises(ValueError, match="missing input columns: f199999"):
        predict(model, signature, Batch([f"f{i}" for i in range(WIDE - 1)], list(np.zeros((WIDE - 1, 1)))))


def test_wide_signature_lists_typed_columns_past_the_listed_ones(benign_limits):
    width = LISTED_FEATURES + 500
    rng = np.random.RandomState(1)
    X = rng.rand(40, width)
    X[:, -1] = rng.randint(0, 3, 40)
    encode_last = ColumnTransformer([("last", OneHotEncoder(), [width - 1])], remainder="passthrough")
    model = _dumped(make_pipeline(encode_last, LogisticRegression(max_iter=50)).fit(X, rng.randint(0, 2, 40)),
                    benign_limits)
    signature = describe(model)
    assert len(signature["features"]) == LISTED_FEATURES + 1 and signature["n_features"] == width
    assert signature["features"][-1] == {"name": f"f{width - 1}", "dtype": "float64", "categories": [0.0, 1.0, 2.0]}
    probe = probe_batch(signature)
    assert probe.column(f"f{width - 1}")[0] == 0.0 and probe.column(f"f{width - 2}")[0] == 0.0
    assert predict(model, signature, probe, proba=True)["probabilities"].shape == (1, 2)


def test_wide_frame_model_lists_every_column(benign_limits):
    width = LISTED_FEATURES * 3
    rng = np.random.RandomState(2)
    frame = pd.DataFrame(rng.rand(5, width), columns=[f"gene_{i}" for i in range(width)], copy=False)
    model = _dumped(LinearRegression().fit(frame, rng.rand(5)), benign_limits)
    signature = describe(model)
    assert [f["name"] for f in signature["features"]] == list(frame.columns)
    assert len(signature["example"]) == LISTED_FEATURES
    probe = probe_batch(signature)
    assert probe.columns == list(frame.columns)
    with threadpool_limits(limits=1):
        assert predict(model, signature, probe)["predictions"].shape == (1,)
        ours = predict(model, signature, Batch.from_input(frame))["predictions"]
        assert ours.tobytes() == model.predict(frame).tobytes()


def test_batch_looks_columns_up_by_name():
    batch = Batch(["b", "a"], [np.array([1.0]), np.array([2.0])])
    assert batch.column("a")[0] == 2.0 and batch.has("b") and not batch.has("c")
    source = np.arange(6.0).reshape(2, 3)
    columns = Batch.from_input(source).values
    source[0, 0] = 99.0  # the batch holds copies
    assert [c.tolist() for c in columns] == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    assert all(c.flags.c_contiguous for c in columns)
