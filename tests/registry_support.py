"""Model files for the registry tests, and the upload gate they go through (the real model hosts).

Benign files are small scikit-learn models fitted and dumped here; the refused ones are a file that
is no pickle at all, a pickle of something that is not an estimator, and a pickle that calls
`posix.system` (built by hand, never loaded here).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlplatform.errors import ModelRejected

GARBAGE = b"this is a text file, not a model\n"
# PROTO 4, "posix", "system", STACK_GLOBAL, ("true",), REDUCE, STOP: os.system("true") if unpickled
UNSAFE = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94."


@lru_cache
def model_bytes(kind: str = "logreg", seed: int = 0, compress: int | tuple = 0) -> bytes:
    """A fitted model, joblib-dumped. `seed` changes the fitted values, hence the bytes."""
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    X = X + rng.normal(0, 0.01, X.shape)
    if kind == "logreg":
        model = LogisticRegression(max_iter=500).fit(X, y)
    elif kind == "tree":
        model = DecisionTreeClassifier(max_depth=3, random_state=seed).fit(X, y)
    elif kind == "big":  # a deep tree, over 1 MB: bigger than the ordinary request body limit
        model = DecisionTreeRegressor(random_state=seed).fit(rng.normal(size=(12_000, 4)), rng.normal(size=12_000))
    else:
        model = LinearRegression().fit(X[:, :3], X[:, 3])
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=compress)
    return buffer.getvalue()


@lru_cache
def not_an_estimator() -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0]}, protocol=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Gate:
    """Records what went through the real upload gate (the model hosts). `refuse` is the one test
    double: it makes the gate refuse given bytes, for cases a real host cannot produce on demand
    (the verdict on bytes that were accepted before changing, e.g. after a limit or pin change)."""

    def __init__(self):
        self.inspected: list[Path] = []
        self.refusals: dict[str, tuple[str, str]] = {}

    def refuse(self, sha: str, code: str, reason: str) -> None:
        self.refusals[sha] = (code, reason)


@pytest.fixture
def gate(model_hosts, monkeypatch) -> Gate:
    from mlplatform.services import registry_versions

    spy, real = Gate(), registry_versions._inspect

    def inspect(path: Path, settings) -> dict:
        spy.inspected.append(path)
        if refusal := spy.refusals.get(sha256(path.read_bytes())):
            raise ModelRejected(refusal[1], code=refusal[0])
        return real(path, settings)

    monkeypatch.setattr(registry_versions, "_inspect", inspect)
    return spy


def stored_files(models_dir: Path) -> list[Path]:
    """The content files in the store (no lock files, no temporary files)."""
    if not models_dir.exists():
        return []
    return sorted(p for p in models_dir.glob("??/*") if not p.name.endswith(".lock"))


@pytest.fixture
def clean_store(settings):
    """An empty model store before and after the test (other tests' files would blur 'no file')."""
    import shutil

    shutil.rmtree(settings.models_dir, ignore_errors=True)
    yield settings.models_dir
    shutil.rmtree(settings.models_dir, ignore_errors=True)
