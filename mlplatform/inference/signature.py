"""A loaded model's signature (JSON-safe plain data), a one-row probe built from it, and predict.

Runs inside the model host on a model that passed the checks. It reads fitted attributes of
allowlisted estimators only: no repr(), no get_params(), no str() of arbitrary objects; any value
that is not plain data is left out."""

from __future__ import annotations

import numpy as np

from mlplatform.inference.batch import TEXT_COLUMN, Batch
from mlplatform.inference.loader import installed_versions
from mlplatform.inference.signature_columns import column_info, first_step, flat_steps

METHODS = ("predict", "predict_proba", "decision_function", "transform")
TASKS = (("classifier", "is_classifier"), ("regressor", "is_regressor"),
         ("clusterer", "is_clusterer"), ("outlier_detector", "is_outlier_detector"))


def dotted(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def plain(value):
    """JSON-safe plain value, or None for anything that is not plain data."""
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        return plain(value.item())
    return None


def plain_list(values) -> list | None:
    if isinstance(values, np.ndarray) and values.dtype.hasobject is False and values.ndim == 1:
        return [plain(v) for v in values.tolist()]
    if isinstance(values, (np.ndarray, list, tuple)):
        return [plain_list(v) if isinstance(v, (np.ndarray, list)) else plain(v) for v in values]
    return None


def _task(model) -> str:
    import sklearn.base as base

    for task, test in TASKS:
        if getattr(base, test)(model):
            return task
    return "transformer"


def _is_text(model) -> bool:
    from sklearn.feature_extraction.text import _VectorizerMixin

    return isinstance(first_step(model), _VectorizerMixin)


def describe(model) -> dict:
    text = _is_text(model)
    names = getattr(model, "feature_names_in_", None)
    columns = column_info(model)
    if text:
        features = [{"name": TEXT_COLUMN, "dtype": "string", "categories": None}]
    else:
        count = int(getattr(model, "n_features_in_", 0) or 0)
        labels = [plain(n) for n in names] if names is not None else [f"f{i}" for i in range(count)]
        features = [{"name": str(n), **columns.get(n if names is not None else i, {"dtype": "float64", "categories": None})}
                    for i, n in enumerate(labels)]
    return {
        "estimator": dotted(model),
        "steps": [{"name": str(name), "estimator": dotted(step) if not isinstance(step, str) else step}
                  for name, step in flat_steps(model)],
        "task": _task(model),
        "input_kind": "text" if text else "dataframe" if names is not None else "array",
        "n_features": len(features),
        "features": features,
        "classes": plain_list(getattr(model, "classes_", None)) if _task(model) == "classifier" else None,
        "methods": {m: callable(getattr(model, m, None)) for m in METHODS},
        "example": _examples(features, model, text),
        "versions": installed_versions(),
    }


# Fitted attributes that hold a typical input row (means, medians, centres, a training row).
TYPICAL_ROWS = ("mean_", "statistics_", "center_", "data_min_", "_fit_X", "cluster_centers_",
                "means_", "theta_", "subcluster_centers_", "X_fit_", "X_train_")


def _typical_row(model, width: int) -> list | None:
    from mlplatform.inference.signature_columns import first_step

    for holder in (first_step(model), model):
        attributes = getattr(holder, "__dict__", {})
        for name in TYPICAL_ROWS:
            value = attributes.get(name)
            if type(value) is np.ndarray and value.dtype.kind in "biuf" and value.ndim in (1, 2) \
                    and value.shape[-1] == width and value.size and np.all(np.isfinite(value)):
                return [plain(v) for v in (value if value.ndim == 1 else value[0]).tolist()]
    return None


def _examples(features: list[dict], model, text: bool) -> dict:
    if text:
        return {TEXT_COLUMN: _example_text(model)}
    typical = _typical_row(model, len(features)) or [0.0] * len(features)
    return {f["name"]: _example(f, typical[i]) for i, f in enumerate(features)}


def _example(feature: dict, typical):
    if feature["categories"]:
        return feature["categories"][0]
    if feature["dtype"] == "string":
        return "example"
    if feature["dtype"] == "bool":
        return bool(typical)
    return int(round(typical)) if feature["dtype"] == "int64" else float(typical)


def _example_text(model) -> str:
    vocabulary = getattr(first_step(model), "vocabulary_", None)
    if isinstance(vocabulary, dict) and vocabulary:
        return " ".join(sorted(k for k in vocabulary if type(k) is str)[:3])
    return "example text"


DTYPES = {"float64": np.float64, "int64": np.int64, "bool": np.bool_}


def probe_batch(signature: dict) -> Batch:
    """One row built from signature['example'], typed as the signature's features say."""
    columns, values = [], []
    for feature in signature["features"]:
        value = signature["example"][feature["name"]]
        dtype = DTYPES.get(feature["dtype"], object)
        columns.append(feature["name"])
        values.append(np.array([value], dtype=dtype))
    return Batch(columns, values)


def model_input(signature: dict, batch: Batch):
    """The input the model was fitted on: a DataFrame, a 2-D array or a list of texts."""
    names = [f["name"] for f in signature["features"]]
    missing = [n for n in names if n not in batch.columns]
    if missing:
        raise ValueError(f"missing input columns: {', '.join(missing[:5])}")
    if signature["input_kind"] == "text":
        return [v if isinstance(v, str) else "" for v in batch.column(TEXT_COLUMN)]
    if signature["input_kind"] == "dataframe":
        import pandas as pd

        return pd.DataFrame({n: batch.column(n) for n in names}, columns=names)
    arrays = [batch.column(n) for n in names]
    if any(a.dtype == object for a in arrays):
        return np.column_stack([a.astype(object) for a in arrays])
    return np.column_stack(arrays) if arrays else np.empty((batch.n_rows, 0))


def predict(model, signature: dict, batch: Batch, *, proba: bool = False) -> dict[str, np.ndarray]:
    X = model_input(signature, batch)
    method = model.predict if signature["methods"]["predict"] else model.transform
    result = {"predictions": _output(method(X))}
    if proba and signature["methods"]["predict_proba"]:
        result["probabilities"] = _output(model.predict_proba(X))
    return result


def _output(value) -> np.ndarray:
    """Numeric, bool or str arrays only: sparse outputs densified, label arrays made str/number."""
    if hasattr(value, "toarray"):
        value = value.toarray()
    array = np.asarray(value)
    if array.dtype.kind in "biufU":
        return array
    if array.dtype.kind == "O":
        flat = array.ravel().tolist()
        if all(type(v) is str for v in flat):
            return array.astype(str)
        if all(type(plain(v)) in (int, float, bool) for v in flat):
            return array.astype(np.float64)
    raise ValueError(f"model output of dtype {array.dtype} is not plain data")
