"""load_model end to end, in-process: every benign corpus file loads and predicts exactly like
joblib.load (or is refused with its code, for the files refused by design); formats, versions
and error mapping."""

from __future__ import annotations

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from mlplatform.inference import allowlist as allowlist_module
from mlplatform.inference import loader
from mlplatform.inference.loader import Rejected, load_model
from tests.corpus.benign import benign_models
from tests.corpus.opcodes import call, integer, program

OUTPUT_METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")
MODEL_NAMES = [m.name for m in benign_models()]
pytestmark = pytest.mark.usefixtures("preloaded")


def outputs(model, X) -> dict:
    # One BLAS/OpenMP thread: a 6-row predict is dominated by thread start-up on a busy machine.
    with threadpool_limits(limits=1):
        return _outputs(model, X)


def _outputs(model, X) -> dict:
    found = {}
    for method in OUTPUT_METHODS:
        function = getattr(model, method, None)
        if function is None:
            continue
        try:
            result = function(X)
        except Exception as exc:  # noqa: BLE001 - both loaders must fail the same way
            result = f"{type(exc).__name__}: {exc}"
        found[method] = result.toarray() if hasattr(result, "toarray") else result
    return found


def load_bytes(data: bytes, limits):
    return load_model(io.BytesIO(data), limits)


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_benign_model_loads_and_predicts_like_joblib(model_name, benign_corpus, benign_limits):
    files = benign_corpus[model_name]
    assert len(files) == 5
    for corpus_file in files:
        if corpus_file.expect_refusal:
            with open(corpus_file.path, "rb") as fh, pytest.raises(Rejected) as refused:
                load_model(fh, benign_limits)
            assert refused.value.code == corpus_file.expect_refusal, (corpus_file.format, refused.value.reason)
            continue
        with open(corpus_file.path, "rb") as fh:
            ours = load_model(fh, benign_limits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = joblib.load(corpus_file.path)
            ours_out, reference_out = outputs(ours, corpus_file.X), outputs(reference, corpus_file.X)
        assert ours_out.keys() == reference_out.keys() and ours_out, corpus_file.format
        for method, expected in reference_out.items():
            if isinstance(expected, str):
                assert ours_out[method] == expected
            else:
                np.testing.assert_array_equal(ours_out[method], expected, err_msg=f"{corpus_file.format} {method}")


def test_search_with_scipy_stats_distributions_asks_for_best_estimator(benign_corpus, benign_limits):
    corpus_file = benign_corpus["random_search_scipy_stats"][0]
    with open(corpus_file.path, "rb") as fh, pytest.raises(Rejected) as refused:
        load_model(fh, benign_limits)
    assert refused.value.code == "unsafe_model"
    assert "scipy.stats" in refused.value.reason and "best_estimator_" in refused.value.reason


def test_fit_only_estimators_and_non_estimators_are_refused(benign_corpus, benign_limits):
    for name in ("dbscan_no_predict", "nearest_neighbors_kd_tree", "model_inside_dict"):
        with open(benign_corpus[name][0].path, "rb") as fh, pytest.raises(Rejected) as refused:
            load_model(fh, benign_limits)
        assert refused.value.code == "not_an_estimator"
    for value in ([1, 2], {"a": 1.0}, np.arange(3.0), 7):
        with pytest.raises(Rejected) as refused:
            load_bytes(pickle.dumps(value, protocol=4), benign_limits)
        assert refused.value.code == "not_an_estimator"


def _fitted_logistic() -> LogisticRegression:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=2000).fit(X, y)


def test_other_scikit_learn_version_is_version_mismatch(benign_limits):
    import sklearn

    data = pickle.dumps(_fitted_logistic(), protocol=4)
    current = sklearn.__version__.encode()
    forged = data.replace(current, b"0.0.0"[: len(current)].ljust(len(current), b"0"))
    assert forged != data
    with pytest.raises(Rejected) as refused:
        load_bytes(forged, benign_limits)
    assert refused.value.code == "version_mismatch"
    assert "scikit-learn" in refused.value.reason


def test_installed_versions_must_match_the_pins(monkeypatch, benign_limits):
    allowlist = allowlist_module.get_allowlist()
    monkeypatch.setitem(allowlist.versions, "numpy", "1.26.0")
    with pytest.raises(Rejected) as refused:
        load_bytes(pickle.dumps(_fitted_logistic(), protocol=4), benign_limits)
    assert refused.value.code == "version_mismatch" and "numpy" in refused.value.reason


@pytest.mark.parametrize(("data", "words"), [
    (b"", "not a pickle"),
    (b"PK\x03\x04 a zip file", "not a pickle"),
    (b"\x04\x22\x4d\x18 lz4", "lz4"),
    (b"ZF0x00000010 legacy", "legacy"),
    (b"\x80\x03]q\x00.", "protocol 3"),
    (b"\x1f\x8b\x08\x00 truncated gzip", "corrupt"),
    (b"\x78\x9c not zlib data", "corrupt"),
])
def test_unsupported_formats(data, words, benign_limits):
    with pytest.raises(Rejected) as refused:
        load_bytes(data, benign_limits)
    assert refused.value.code == "unsupported_format"
    assert words in refused.value.reason


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_every_joblib_compressor_is_read(compress, benign_limits):
    buffer = io.BytesIO()
    joblib.dump(_fitted_logistic(), buffer, compress=compress)
    model = load_bytes(buffer.getvalue(), benign_limits)
    assert isinstance(model, LogisticRegression)


def test_other_failures_are_load_failed_with_the_exception(benign_limits):
    data = program(call("builtins", "slice", integer(1), integer(2), integer(3), integer(4)))
    with pytest.raises(Rejected) as refused:
        load_bytes(data, benign_limits)
    assert refused.value.code == "load_failed"
    assert refused.value.reason.startswith("TypeError")


def test_memory_and_recursion_errors_are_resource_limits(monkeypatch, benign_limits):
    for error in (MemoryError, RecursionError):
        def exhausted(self, error=error):
            raise error()

        monkeypatch.setattr(loader.SafeUnpickler, "load", exhausted)
        with pytest.raises(Rejected) as refused:
            load_bytes(pickle.dumps(_fitted_logistic(), protocol=4), benign_limits)
        assert refused.value.code == "resource_limit" and error.__name__ in refused.value.reason


def test_decompressed_size_cap_names_the_limit():
    limits = loader.Limits(max_decompressed_bytes=512, max_array_bytes=1 << 20)
    buffer = io.BytesIO()
    joblib.dump(_fitted_logistic(), buffer, compress=3)
    with pytest.raises(Rejected) as refused:
        load_bytes(buffer.getvalue(), limits)
    assert refused.value.code == "resource_limit"
    assert "512 bytes" in refused.value.reason


def test_array_budget_names_the_limit():
    limits = loader.Limits(max_decompressed_bytes=1 << 20, max_array_bytes=64)
    with pytest.raises(Rejected) as refused:
        load_bytes(pickle.dumps(_fitted_logistic(), protocol=5), limits)
    assert refused.value.code == "resource_limit" and "64 bytes" in refused.value.reason
