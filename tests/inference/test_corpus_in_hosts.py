"""The corpora through real, sandboxed model hosts (a manager of this module's own, so that other
tests emptying the session's model store cannot pull files away).

Benign: every file predicts through the pool hosts bit-identically to `joblib.load` in this
process, on the same Batch and the same single-threaded BLAS (thread count changes float
summation order); the files refused by design are refused with their code.
Malicious: every sample is refused by a pool host with its code and reason and without side
effect; at the upload gate (a fresh host per file) one sample per attack class, and every
deferred-trigger sample, since only the gate runs predict on a probe row.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mlplatform.errors import ModelRejected
from mlplatform.inference import signature
from mlplatform.inference.batch import Batch
from tests.corpus.benign import benign_models
from tests.corpus.malicious import malicious_files
from tests.hosts_support import start_private_manager

MODEL_NAMES = [m.name for m in benign_models()]
DECOMPRESSED_LIMIT = 8 << 20  # what the hostile resource samples are sized for
DEFERRED_TRIGGERS = 10


def _samples(base: Path):
    return malicious_files(base / "companions", base / "marker", DECOMPRESSED_LIMIT)


def _sample_names() -> tuple[list[str], list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        samples = _samples(Path(tmp))
    first_of_class = {}
    for m in samples:
        first_of_class.setdefault(m.attack_class, m.name)
    gate = sorted(set(first_of_class.values()) | {m.name for m in samples if m.attack_class == DEFERRED_TRIGGERS})
    return [m.name for m in samples], gate


ALL_SAMPLES, GATE_SAMPLES = _sample_names()


@pytest.fixture(scope="module")
def corpus_hosts():
    manager = start_private_manager("corpus", {"MLPLATFORM_MAX_MODEL_DECOMPRESSED_BYTES": str(DECOMPRESSED_LIMIT)})
    yield manager
    manager.stop()


@pytest.fixture(scope="module")
def benign_store(corpus_hosts, benign_corpus) -> dict:
    """model name -> [(corpus file, its path in the hosts' store, sha256)]."""
    store = corpus_hosts.models_dir / "benign"
    store.mkdir()
    placed = {}
    for name, files in benign_corpus.items():
        placed[name] = []
        for corpus_file in files:
            path = store / corpus_file.path.name
            shutil.copyfile(corpus_file.path, path)
            placed[name].append((corpus_file, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return placed


@pytest.fixture(scope="module")
def hostile(corpus_hosts):
    """(marker, {name: sample}, {name: path in the store}); the marker's directory is writable by
    anyone, so only the sandbox and the loader stand between a sample and the marker."""
    base = Path(tempfile.mkdtemp(prefix="mlp-hostile-"))
    os.chmod(base, 0o777)
    samples = {m.name: m for m in _samples(base)}
    store = corpus_hosts.models_dir / "hostile"
    store.mkdir()
    paths = {}
    for name, sample in samples.items():
        paths[name] = store / name
        paths[name].write_bytes(sample.data)
    yield base / "marker", samples, paths
    shutil.rmtree(base, ignore_errors=True)


def reference(path: Path, batch: Batch) -> dict:
    """joblib.load here, predicting on the very same Batch the hosts got (benign files only)."""
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model = joblib.load(path)
        described = signature.describe(model)
        return signature.predict(model, described, batch, proba=True)


def identical(got: np.ndarray, want: np.ndarray) -> bool:
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if want.dtype.kind in "biuf":
        return got.tobytes() == want.tobytes()
    return got.tolist() == want.tolist()


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_benign_model_predicts_in_the_pool_like_joblib(model_name, benign_store, corpus_hosts):
    client = corpus_hosts.client()
    for corpus_file, path, sha in benign_store[model_name]:
        batch = Batch.from_input(corpus_file.X)
        if corpus_file.expect_refusal:
            with pytest.raises(ModelRejected) as refused:
                client.predict(sha, path, batch, proba=True)
            assert refused.value.code == corpus_file.expect_refusal, (corpus_file.format, refused.value.message)
            continue
        got = client.predict(sha, path, batch, proba=True)
        want = reference(path, batch)
        assert set(want) <= set(got), corpus_file.format
        for key, value in want.items():
            assert identical(got[key], value), (corpus_file.format, key, got[key][:3], value[:3])


def _assert_refused(exc: ModelRejected, sample) -> None:
    assert exc.code == sample.code, (sample.name, exc.code, exc.message)
    assert sample.mentions in exc.message, (sample.name, exc.message)


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_hostile_file_is_refused_by_a_pool_host_without_side_effects(name, hostile, corpus_hosts):
    marker, samples, paths = hostile
    client = corpus_hosts.client()
    sha = hashlib.sha256(paths[name].read_bytes()).hexdigest()
    with pytest.raises(ModelRejected) as refused:
        client.load(sha, paths[name])
    _assert_refused(refused.value, samples[name])
    assert not marker.exists()
    assert all(sha not in h["loaded"] and h["state"] == "ready" for h in client.status()["hosts"])


@pytest.mark.parametrize("name", GATE_SAMPLES)
def test_hostile_file_is_refused_at_the_upload_gate(name, hostile, corpus_hosts):
    marker, samples, paths = hostile
    with pytest.raises(ModelRejected) as refused:
        corpus_hosts.client().inspect(paths[name])
    _assert_refused(refused.value, samples[name])
    assert not marker.exists()


def test_every_attack_class_reaches_the_gate():
    with tempfile.TemporaryDirectory() as tmp:
        classes = {m.attack_class for m in _samples(Path(tmp)) if m.name in GATE_SAMPLES}
    assert set(range(1, 14)) <= classes
