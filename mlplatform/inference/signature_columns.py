"""Where a signature's per-column dtypes and categories come from: the fitted encoders
(OneHotEncoder, OrdinalEncoder, TargetEncoder) behind a ColumnTransformer, a leading encoder,
or HistGradientBoosting's own categorical preprocessor. Columns nothing tells about are numeric."""

from __future__ import annotations

import numpy as np

ENCODERS = ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder")


def _steps(estimator) -> list:
    from sklearn.pipeline import Pipeline

    return list(estimator.steps) if isinstance(estimator, Pipeline) else []


def _unwrap(model):
    """The estimator that receives the raw input (through fitted search objects too)."""
    best = model.__dict__.get("best_estimator_") if hasattr(model, "__dict__") else None
    return best if best is not None else model


def flat_steps(model) -> list[tuple[str, object]]:
    return _steps(_unwrap(model))


def first_step(model):
    current = _unwrap(model)
    for _ in range(50):  # pipelines nest; the checked graph is bounded anyway
        steps = [s for _name, s in _steps(current) if s is not None and not isinstance(s, str)]
        if not steps:
            return current
        current = _unwrap(steps[0])
    return current


def _encoder_in(transformer):
    candidates = [transformer, *[s for _n, s in _steps(transformer)]]
    for candidate in candidates:
        if type(candidate).__name__ in ENCODERS and isinstance(getattr(candidate, "categories_", None), list):
            return candidate
    return None


def _describe_categories(categories) -> dict | None:
    from mlplatform.inference.signature import plain

    if not isinstance(categories, np.ndarray) or categories.ndim != 1:
        return None
    values = [plain(v) for v in categories.tolist()]
    if categories.dtype.kind in "OUS":
        return {"dtype": "string", "categories": [v for v in values if type(v) is str] or None}
    kind = {"b": "bool", "i": "int64", "u": "int64"}.get(categories.dtype.kind, "float64")
    return {"dtype": kind, "categories": [v for v in values if v is not None] or None}


def _from_column_transformer(ct, keys: list, info: dict) -> None:
    mapping = getattr(ct, "_transformer_to_input_indices", None)
    if not isinstance(mapping, dict):
        return
    for name, transformer, _columns in getattr(ct, "transformers_", []):
        encoder = _encoder_in(transformer)
        indices = mapping.get(name, [])
        for position, index in enumerate(indices):
            if not (type(index) in (int, np.int64) and 0 <= index < len(keys)):
                continue
            described = None
            if encoder is not None and position < len(encoder.categories_):
                described = _describe_categories(encoder.categories_[position])
            elif _imputes_strings(transformer):
                described = {"dtype": "string", "categories": None}
            if described:
                info[keys[int(index)]] = described


def _imputes_strings(transformer) -> bool:
    for candidate in [transformer, *[s for _n, s in _steps(transformer)]]:
        statistics = getattr(candidate, "statistics_", None)
        if type(candidate).__name__ == "SimpleImputer" and isinstance(statistics, np.ndarray) \
                and statistics.dtype.kind in "OUS":
            return True
    return False


def column_info(model) -> dict:
    """{feature name (DataFrame input) or index (array input): {"dtype", "categories"}}."""
    from sklearn.compose import ColumnTransformer

    names = getattr(model, "feature_names_in_", None)
    count = int(getattr(model, "n_features_in_", 0) or 0)
    keys = [str(n) for n in names] if names is not None else list(range(count))
    info: dict = {}
    first = first_step(model)
    if isinstance(first, ColumnTransformer):
        _from_column_transformer(first, keys, info)
    elif _encoder_in(first) is first:
        for position, categories in enumerate(first.categories_[: len(keys)]):
            described = _describe_categories(categories)
            if described:
                info[keys[position]] = described
    preprocessor = getattr(first, "_preprocessor", None)  # HistGradientBoosting categorical columns
    if isinstance(preprocessor, ColumnTransformer):
        _from_column_transformer(preprocessor, keys, info)
    return info
