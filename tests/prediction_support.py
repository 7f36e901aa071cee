"""Fitted models for the prediction tests (small, deterministic) and their signatures.

- `mixed`: a DataFrame pipeline with a float, a string (OneHotEncoder refusing unknown
  categories), an int and a bool column, and a LogisticRegression (no imputer)
- `mixed_ignore`: the same with OneHotEncoder(handle_unknown="ignore")
- `hgb`: HistGradientBoosting on iris as an array (takes NaN itself)
- `imputed`: SimpleImputer + LogisticRegression on iris as an array
- `text`: TfidfVectorizer + LogisticRegression on a few sentences (string labels)
- `ridge`: a regressor on iris (no predict_proba)
"""

from __future__ import annotations

import io
from functools import lru_cache

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from mlplatform.inference.signature import describe

MIXED_FRAME = pd.DataFrame({
    "size": [1.0, 2.5, 3.0, 4.5, 0.5, 2.0, 3.5, 1.5],
    "color": ["red", "blue", "red", "green", "blue", "green", "red", "blue"],
    "n": [1, 2, 3, 1, 2, 3, 1, 2],
    "flag": [True, False, True, False, True, False, True, False],
})
MIXED_LABELS = [0, 1, 0, 1, 1, 0, 0, 1]
TEXTS = ["a great movie", "loved it", "wonderful acting", "terrible plot", "boring and bad", "awful film"]
TEXT_LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]


def _mixed(handle_unknown: str):
    columns = ColumnTransformer([
        ("color", OneHotEncoder(handle_unknown=handle_unknown), ["color"]),
        ("ordinal", OrdinalEncoder(), ["n", "flag"]),
    ], remainder="passthrough")
    return make_pipeline(columns, LogisticRegression()).fit(MIXED_FRAME, MIXED_LABELS)


@lru_cache
def model(kind: str):
    X, y = load_iris(return_X_y=True)
    if kind == "mixed":
        return _mixed("error")
    if kind == "mixed_ignore":
        return _mixed("ignore")
    if kind == "hgb":
        return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    if kind == "imputed":
        return make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(X, y)
    if kind == "text":
        return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS, TEXT_LABELS)
    if kind == "ridge":
        return Ridge().fit(X, y)
    raise ValueError(kind)


@lru_cache
def model_file(kind: str) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model(kind), buffer)
    return buffer.getvalue()


@lru_cache
def _signature(kind: str) -> dict:
    return describe(model(kind))


def signature(kind: str) -> dict:
    """The signature the upload gate records (a fresh copy: tests may change it)."""
    import copy

    return copy.deepcopy(_signature(kind))


def iris_rows(n: int = 3) -> list[list[float]]:
    X, _ = load_iris(return_X_y=True)
    return X[:n].tolist()


def iris_expected(kind: str, rows) -> np.ndarray:
    return model(kind).predict(np.array(rows, dtype=float))
