"""A loaded model's signature (JSON-safe plain data), a one-row probe built from it, and predict.

Runs inside the model host on a model that passed the checks. It reads fitted attributes of
allowlisted estimators only: no repr(), no get_params(), no str() of arbitrary objects; any value
that is not plain data is left out.

Wide inputs (more than LISTED_FEATURES columns) keep the signature small: an array input lists its
first LISTED_FEATURES features plus every later one that is not a plain float64 column (the others
are implied: "f<position>", float64, no categories), and "example" covers the first
LISTED_FEATURES features only (probe_batch derives the rest). A DataFrame input always lists every
column: its names are its interface. Every step is linear in the number of columns: 200,000 of
them describe, probe and predict in well under a second."""

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


# Columns listed one by one (and given an example value) before a wide input is abbreviated.
LISTED_FEATURES = 1000
PLAIN_FEATURE = {"dtype": "float64", "categories": None}


def describe(model) -> dict:
    text = _is_text(model)
    names = getattr(model, "feature_names_in_", None)
    kind = "text" if text else "dataframe" if names is not None else "array"
    count = 1 if text else len(names) if names is not None else int(getattr(model, "n_features_in_", 0) or 0)
    features = _features(model, kind, names, count)
    task = _task(model)
    return {
        "estimator": dotted(model),
        "steps": [{"name": str(name), "estimator": dotted(step) if not isinstance(step, str) else step}
                  for name, step in flat_steps(model)],
        "task": task,
        "input_kind": kind,
        "n_features": count,
        "features": features,
        "classes": plain_list(getattr(model, "classes_", None)) if task == "classifier" else None,
        "methods": {m: callable(getattr(model, m, None)) for m in METHODS},
        "example": _examples(features, model, text, count),
        "versions": installed_versions(),
    }


def _features(model, kind: str, names, count: int) -> list[dict]:
    if kind == "text":
        return [{"name": TEXT_COLUMN, "dtype": "string", "categories": None}]
    columns = column_info(model)
    if kind == "dataframe":
        return [{"name": str(n), **columns.get(n, PLAIN_FEATURE)} for n in (plain(n) for n in names)]
    listed = sorted({*range(min(count, LISTED_FEATURES)), *(i for i in columns if type(i) is int and i < count)})
    return [{"name": f"f{i}", **columns.get(i, PLAIN_FEATURE)} for i in listed]


# Fitted attributes that hold a typical input row (means, medians, centres, a training row).
TYPICAL_ROWS = ("mean_", "statistics_", "center_", "data_min_", "_fit_X", "cluster_centers_",
                "means_", "theta_", "subcluster_centers_", "X_fit_", "X_train_")


def _typical_row(model, width: int, take: int) -> list | None:
    """The first `take` values of a typical input row of `width` columns, if the model holds one."""
    for holder in (first_step(model), model):
        attributes = getattr(holder, "__dict__", {})
        for name in TYPICAL_ROWS:
            value = attributes.get(name)
            if type(value) is np.ndarray and value.dtype.kind in "biuf" and value.ndim in (1, 2) \
                    and value.shape[-1] == width and value.size:
                row = (value if value.ndim == 1 else value[0])[:take]
                if np.all(np.isfinite(row)):
                    return [plain(v) for v in row.tolist()]
    return None


def _examples(features: list[dict], model, text: bool, count: int) -> dict:
    if text:
        return {TEXT_COLUMN: _example_text(model)}
    shown = features[:LISTED_FEATURES]  # positions 0.. in both the full and the abbreviated list
    typical = _typical_row(model, count, len(shown)) or [0.0] * len(shown)
    return {f["name"]: _example(f, typical[i]) for i, f in enumerate(shown)}


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


def input_names(signature: dict) -> list[str]:
    """Every input column in order, the ones an abbreviated array signature implies included."""
    features, count = signature["features"], signature["n_features"]
    if signature["input_kind"] == "array" and len(features) < count:
        return [f"f{i}" for i in range(count)]
    return [f["name"] for f in features]


def probe_batch(signature: dict) -> Batch:
    """One row built from signature['example'] (derived where it has no value), typed as the
    signature's features say; implied features are plain float64 columns."""
    names, example = input_names(signature), signature["example"]
    listed = {f["name"]: f for f in signature["features"]}
    values = [example[n] if n in example else _example(listed.get(n, PLAIN_FEATURE), 0.0) for n in names]
    if all(f["dtype"] == "float64" for f in listed.values()):  # the usual wide case: one array, a view per column
        return Batch(names, list(np.array(values, dtype=np.float64).reshape(-1, 1)))
    dtypes = [DTYPES.get(listed.get(n, PLAIN_FEATURE)["dtype"], object) for n in names]
    return Batch(names, [np.array([v], dtype=d) for v, d in zip(values, dtypes)])


def model_input(signature: dict, batch: Batch):
    """The input the model was fitted on: a DataFrame, a 2-D array or a list of texts. Numeric
    input is laid out as numpy/pandas hold a row-major input, so results match bit for bit."""
    names = input_names(signature)
    if batch.block is not None and batch.columns == names and signature["input_kind"] != "text":
        if signature["input_kind"] == "dataframe":
            import pandas as pd

            return pd.DataFrame(batch.block, columns=names, copy=False)
        return batch.block
    arrays = _in_order(batch, names)
    if signature["input_kind"] == "text":
        return [v if isinstance(v, str) else "" for v in arrays[0]]
    if signature["input_kind"] == "dataframe":
        import pandas as pd

        if len({a.dtype for a in arrays}) == 1 and arrays[0].dtype.kind in "biuf":
            # a frame over one C-ordered block, as scikit-learn's as_frame loaders and
            # pd.DataFrame(array, copy=False) hold it (a dict of columns is held column-major,
            # and BLAS sums in another order: last-bit differences)
            return pd.DataFrame(_block(arrays, batch.n_rows), columns=names, copy=False)
        return pd.DataFrame(dict(zip(names, arrays)), columns=names)
    return _block(arrays, batch.n_rows)


def _in_order(batch: Batch, names: list[str]) -> list[np.ndarray]:
    if batch.columns == names:
        return batch.values
    missing = [n for n in names if not batch.has(n)]
    if missing:
        raise ValueError(f"missing input columns: {', '.join(missing[:5])}")
    return [batch.column(n) for n in names]


def _block(arrays: list[np.ndarray], n_rows: int) -> np.ndarray:
    """(rows, columns) in C order; one concatenate, not one call per column."""
    if not arrays:
        return np.empty((n_rows, 0))
    if any(a.dtype == object for a in arrays):
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays).reshape(len(arrays), n_rows).T.copy(order="C")


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
