"""Fixtures for the in-host loader tests.

The benign corpus (about 200 fitted models x 5 formats) is generated once and shared by every
xdist worker and later sessions: it lives in the system temp dir under a key made of the corpus
sources and the library versions, written by whichever process takes the fcntl lock first."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

from mlplatform.inference.limits import Limits

CORPUS_SOURCES = ("benign.py", "families.py", "data.py")
CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"

# Generous enough for every benign model, small enough that a test never allocates much.
BENIGN_LIMITS = Limits(max_decompressed_bytes=256 << 20, max_array_bytes=256 << 20)
HOSTILE_LIMITS = Limits(max_decompressed_bytes=8 << 20, max_array_bytes=4 << 20, max_graph_nodes=100_000,
                        max_graph_depth=200, max_pickle_ops=1_000_000)


def _corpus_key() -> str:
    import joblib
    import numpy
    import pandas
    import scipy
    import sklearn

    digest = hashlib.sha256()
    for name in CORPUS_SOURCES:
        digest.update((CORPUS_DIR / name).read_bytes())
    for module in (sklearn, numpy, scipy, joblib, pandas):
        digest.update(module.__version__.encode())
    return digest.hexdigest()[:16]


def _shared_corpus_dir() -> Path:
    from tests.corpus.benign import MANIFEST, write_corpus

    root = Path(tempfile.gettempdir()) / f"mlplatform-benign-corpus-{_corpus_key()}"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other workers wait here until the corpus exists
        if not (root / MANIFEST).exists():
            staging = Path(tempfile.mkdtemp(prefix=f"{root.name}.", dir=root.parent))
            write_corpus(staging)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(staging, root)
    return root


@pytest.fixture(scope="session")
def benign_corpus() -> dict:
    """model name -> its corpus files (one per format)."""
    from tests.corpus.benign import load_corpus

    grouped = defaultdict(list)
    for corpus_file in load_corpus(_shared_corpus_dir()):
        grouped[corpus_file.model_name].append(corpus_file)
    return dict(grouped)


@pytest.fixture(scope="session")
def preloaded():
    from mlplatform.inference.loader import preload

    preload()


@pytest.fixture
def benign_limits() -> Limits:
    return BENIGN_LIMITS


@pytest.fixture
def hostile_limits() -> Limits:
    return HOSTILE_LIMITS


@pytest.fixture(autouse=True)
def clean_state():
    """Nothing under tests/inference touches the database: skip the suite-wide table truncation."""
    yield
