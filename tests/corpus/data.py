"""Small, deterministic data sets for the benign corpus (scikit-learn's bundled data only, so
generating the corpus needs no network and takes seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn import datasets


@dataclass(frozen=True)
class Data:
    X: object
    y: object
    probe: object


def _probe_rows(X, n: int = 6):
    if isinstance(X, pd.DataFrame):
        return X.iloc[:n].copy()
    if isinstance(X, list):
        return X[:n]
    return X[:n]


def _data(X, y) -> Data:
    return Data(X, y, _probe_rows(X))


@lru_cache(maxsize=None)
def iris() -> Data:
    X, y = datasets.load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))  # mixed classes in the probe rows
    return _data(X[order], y[order])


@lru_cache(maxsize=None)
def iris_str() -> Data:
    """String labels (numpy unicode dtype)."""
    base = iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    return _data(base.X, names[base.y])


@lru_cache(maxsize=None)
def iris_obj() -> Data:
    """String labels held in an object array (what pandas columns usually give)."""
    return _data(iris().X, iris_str().y.astype(object))


@lru_cache(maxsize=None)
def iris_binary() -> Data:
    base = iris()
    return _data(base.X, (base.y == 2).astype(np.int64))


@lru_cache(maxsize=None)
def iris_csr() -> Data:
    return _data(sp.csr_matrix(iris().X), iris().y)


@lru_cache(maxsize=None)
def iris_csr_array() -> Data:
    return _data(sp.csr_array(iris().X), iris().y)


@lru_cache(maxsize=None)
def iris_frame() -> Data:
    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    order = np.random.RandomState(0).permutation(len(y))
    X = X.iloc[order].reset_index(drop=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return _data(X, y.iloc[order].to_numpy())


@lru_cache(maxsize=None)
def wine() -> Data:
    X, y = datasets.load_wine(return_X_y=True)
    order = np.random.RandomState(1).permutation(len(y))
    return _data(X[order], y[order])


@lru_cache(maxsize=None)
def diabetes() -> Data:
    X, y = datasets.load_diabetes(return_X_y=True)
    return _data(X, y)


@lru_cache(maxsize=None)
def diabetes_small() -> Data:
    """For the slower robust regressors."""
    d = diabetes()
    return _data(d.X[:120], d.y[:120])


@lru_cache(maxsize=None)
def diabetes_frame() -> Data:
    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    return _data(X, y.to_numpy())


@lru_cache(maxsize=None)
def cancer() -> Data:
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return _data(X, y)


@lru_cache(maxsize=None)
def synthetic() -> Data:
    X, y = datasets.make_classification(
        n_samples=240, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return _data(X, y)


@lru_cache(maxsize=None)
def synthetic_missing() -> Data:
    d = synthetic()
    X = d.X.copy()
    X[np.random.RandomState(3).rand(*X.shape) < 0.1] = np.nan
    return _data(X, d.y)


@lru_cache(maxsize=None)
def multi_target() -> Data:
    d = diabetes()
    return _data(d.X, np.column_stack([d.y, d.X[:, 2] * 100]))


@lru_cache(maxsize=None)
def multi_label() -> Data:
    d = synthetic()
    return _data(d.X, np.column_stack([d.y == 0, d.y == 1, d.X[:, 0] > 0]).astype(np.int64))


@lru_cache(maxsize=None)
def counts() -> Data:
    """Non-negative integer features (naive Bayes, topic models)."""
    rng = np.random.RandomState(4)
    y = rng.randint(0, 3, 180)
    X = rng.poisson(lam=1.0 + y[:, None] * np.linspace(0, 2, 12), size=(180, 12))
    return _data(X.astype(np.int64), y)


@lru_cache(maxsize=None)
def categories() -> Data:
    """Small integer category codes (CategoricalNB)."""
    rng = np.random.RandomState(5)
    X = rng.randint(0, 4, size=(160, 5))
    return _data(X, (X[:, 0] + X[:, 1] > 3).astype(np.int64))


@lru_cache(maxsize=None)
def customers() -> Data:
    """A mixed DataFrame: numeric with gaps, strings with gaps, string labels."""
    rng = np.random.RandomState(6)
    n = 200
    age = rng.randint(18, 80, n).astype(float)
    age[rng.rand(n) < 0.08] = np.nan
    income = np.round(rng.lognormal(10, 0.5, n), 2)
    city = rng.choice(["paris", "lyon", "nantes", "lille"], n).astype(object)
    city[rng.rand(n) < 0.05] = None
    plan = rng.choice(["basic", "pro", "team"], n)
    visits = rng.poisson(4, n).astype(np.int64)
    churn = np.where((age > 50) ^ (plan == "basic") ^ (visits > 4), "yes", "no")
    X = pd.DataFrame({"age": age, "income": income, "city": pd.Series(city, dtype=object),
                      "plan": plan, "visits": visits})
    return _data(X, churn)


@lru_cache(maxsize=None)
def customers_categorical() -> Data:
    """Pandas category dtype columns (HistGradientBoosting's categorical_features='from_dtype')."""
    d = customers()
    X = d.X.copy()
    X["city"] = X["city"].astype("category")
    X["plan"] = X["plan"].astype("category")
    return _data(X, d.y)


@lru_cache(maxsize=None)
def customers_regression() -> Data:
    d = customers()
    return _data(d.X, d.X["income"].to_numpy() / 1000 + np.nan_to_num(d.X["age"].to_numpy()))


_WORDS = {
    "sport": "match goal team player score league coach win season stadium",
    "tech": "code python server cloud data model software network chip api",
    "food": "bread cheese wine recipe kitchen sauce dinner pasta salad bake",
}


@lru_cache(maxsize=None)
def text() -> Data:
    rng = np.random.RandomState(7)
    docs, labels = [], []
    for i in range(90):
        topic = list(_WORDS)[i % 3]
        words = rng.choice(_WORDS[topic].split(), 6).tolist() + rng.choice(
            " ".join(_WORDS.values()).split(), 2).tolist()
        docs.append(" ".join(words))
        labels.append(topic)
    return _data(docs, np.array(labels))


@lru_cache(maxsize=None)
def customers_categorical_regression() -> Data:
    return _data(customers_categorical().X, customers_regression().y)
