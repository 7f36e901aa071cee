"""The benign corpus: fitted scikit-learn models of every supported family, dumped in every format
users produce (joblib plain and compressed, pickle protocols 4 and 5). scripts/make_allowlist.py
enumerates the allowlist from it and tests/inference checks that each file loads and predicts
exactly as joblib.load does (or is refused with its code, for the few refused by design)."""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import joblib

from tests.corpus.data import Data
from tests.corpus.families import FAMILIES, REFUSED, _BestEstimator

OTHER_COMPRESSORS = ("gzip", "bz2", "lzma", "xz")
BASE_FORMATS = ("joblib", "joblib_zlib", "pickle4", "pickle5")
MANIFEST = "manifest.json"


@dataclass
class BenignModel:
    name: str
    data: Callable[[], Data]
    factory: Any  # zero-argument callable returning an unfitted estimator, or a _BestEstimator marker
    expect_refusal: str | None = None  # the Rejected code this model must get, if refused by design
    index: int = 0

    @property
    def X_fit(self):
        return self.data().X

    @property
    def y(self):
        return self.data().y

    @property
    def X_probe(self):
        return self.data().probe

    @property
    def other_compressor(self) -> str:
        return OTHER_COMPRESSORS[self.index % len(OTHER_COMPRESSORS)]

    @property
    def formats(self) -> tuple[str, ...]:
        return (*BASE_FORMATS[:2], f"joblib_{self.other_compressor}", *BASE_FORMATS[2:])

    def fit(self) -> object:
        marker = self.factory if isinstance(self.factory, _BestEstimator) else None
        estimator = (marker.factory if marker else self.factory)()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of deliberately tiny fits
            estimator.fit(self.X_fit, self.y)
        return marker.finish(estimator) if marker else estimator


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    model_name: str
    format: str
    X: Any  # the probe input
    expect_refusal: str | None = None


def benign_models() -> list[BenignModel]:
    rows = [(*row, None) for row in FAMILIES] + list(REFUSED)
    return [BenignModel(name, data, factory, refusal, index)
            for index, (name, data, factory, refusal) in enumerate(rows)]


def dump(obj: object, path: Path, fmt: str) -> None:
    if fmt == "joblib":
        joblib.dump(obj, path)
    elif fmt == "joblib_zlib":
        joblib.dump(obj, path, compress=3)
    elif fmt.startswith("joblib_"):
        joblib.dump(obj, path, compress=(fmt.removeprefix("joblib_"), 3))
    elif fmt in ("pickle4", "pickle5"):
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=int(fmt[-1]))
    else:
        raise ValueError(f"unknown format {fmt}")


def write_corpus(directory: Path | str, models: list[BenignModel] | None = None) -> list[CorpusFile]:
    """Fit every model, dump it in each of its formats under `directory` (file names carry no
    extension, like the content-addressed store), and write a manifest for load_corpus()."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files, manifest = [], []
    for model in models if models is not None else benign_models():
        fitted = model.fit()
        for fmt in model.formats:
            path = directory / f"{model.name}.{fmt}"
            dump(fitted, path, fmt)
            files.append(CorpusFile(path, model.name, fmt, model.X_probe, model.expect_refusal))
            manifest.append({"file": path.name, "model": model.name, "format": fmt})
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return files


def load_corpus(directory: Path | str) -> list[CorpusFile]:
    """The files a previous write_corpus() left in `directory` (probe inputs rebuilt, no fitting)."""
    directory = Path(directory)
    models = {m.name: m for m in benign_models()}
    return [CorpusFile(directory / row["file"], row["model"], row["format"],
                       models[row["model"]].X_probe, models[row["model"]].expect_refusal)
            for row in json.loads((directory / MANIFEST).read_text())]
