"""Benign model files for the host and manager tests, written into a manager's model store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from mlplatform.inference.batch import Batch


def write(directory: Path, name: str, model, compress=0) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    joblib.dump(model, path, compress=compress)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def iris_logreg(seed: int = 0) -> LogisticRegression:
    X, y = load_iris(return_X_y=True)
    X = X + np.random.default_rng(seed).normal(0, 0.01, X.shape)  # another seed, other bytes
    return LogisticRegression(max_iter=500).fit(X, y)


def iris_batch(rows: int = 5) -> Batch:
    X, _ = load_iris(return_X_y=True)
    return Batch.from_input(X[:rows])


def slow_knn() -> KNeighborsRegressor:
    """Brute-force Minkowski p=3 neighbours: a few ms per row, one long C loop per call."""
    rng = np.random.default_rng(0)
    return KNeighborsRegressor(n_neighbors=1, algorithm="brute", p=3).fit(rng.random((20000, 20)), rng.random(20000))


def slow_batch(rows: int) -> Batch:
    return Batch.from_input(np.random.default_rng(1).random((rows, 20)))


def sized_knn(megabytes: int, seed: int) -> KNeighborsRegressor:
    """A model whose fitted arrays take about `megabytes` (brute force keeps the training data)."""
    rows = megabytes * 1024 * 1024 // (8 * 64)
    rng = np.random.default_rng(seed)
    return KNeighborsRegressor(algorithm="brute").fit(rng.random((rows, 64)), rng.random(rows))


def huge_linear(n_features: int) -> LinearRegression:
    """A valid regressor whose coefficient array is n_features floats (zeros: compresses to little)."""
    model = LinearRegression().fit(np.zeros((2, 1)), [0.0, 0.0])
    model.coef_ = np.zeros(n_features)
    model.n_features_in_ = n_features
    return model
