"""Enumerate the model-loading allowlist from the benign corpus and write it, with its review,
to mlplatform/inference/allowlist.json.

Fits every model of tests/corpus/benign.py, dumps each in every format (joblib plain, zlib and
one other compressor, pickle protocols 4 and 5), loads each file with a recording unpickler
(joblib's NumpyUnpickler; object arrays' nested streams are read by a recording unpickler too,
so their globals and calls are seen) and records every find_class pair, the opcodes that call
each global and the callables handed to helpers. Each pair is then classified by the hand
review in scripts/allowlist_review.py; an unreviewed pair stops the script.

    .venv/bin/python scripts/make_allowlist.py [--check]   (--check: compare, don't write)
"""

from __future__ import annotations

import argparse
import functools
import json
import pickle
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import allowlist_review as review  # noqa: E402
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler  # noqa: E402
from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap  # noqa: E402

from mlplatform.inference.allowlist import ALLOWLIST_PATH, NEVER, resolve_never  # noqa: E402
from mlplatform.inference.loader import installed_versions  # noqa: E402
from tests.corpus.benign import write_corpus  # noqa: E402

HELPER_TARGET_CHECKS = {"partial", "new_obj", "cython_unpickle", "random_ctor"}
NUMPY_HELPER_CHECKS = {"numpy_reconstruct", "numpy_scalar", "numpy_frombuffer", "masked_reconstruct", "random_ctor"}


class Log:
    def __init__(self):
        self.seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.calls: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.targets: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        self.names: dict[int, tuple[tuple[str, str], object]] = {}
        self.objects: dict[tuple[str, str], object] = {}

    def name_of(self, obj):
        found = self.names.get(id(obj))
        return found[0] if found and found[1] is obj else None


class Recorder(NumpyUnpickler):
    """Loads trusted benign files exactly as joblib does, recording what they use."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def __init__(self, file_handle, log: Log, model: str):
        NumpyUnpickler.__init__(self, "", file_handle, ensure_native_byte_order=True)
        self.log, self.model = log, model

    def find_class(self, module, name):
        obj = NumpyUnpickler.find_class(self, module, name)
        self.log.seen[(module, name)].add(self.model)
        self.log.names[id(obj)] = ((module, name), obj)
        self.log.objects[(module, name)] = obj
        return obj

    def _record_call(self, func, opcode, args):
        key = self.log.name_of(func)
        if key is None:
            raise SystemExit(f"{opcode} calls an object no global named: {func!r}")
        self.log.calls[key].add(opcode)
        if args:
            first = args[0]
            target = first if isinstance(first, type) or callable(first) else type(first)
            if self.log.name_of(target):
                self.log.targets[key].add(self.log.name_of(target))

    def load_reduce(self):
        self._record_call(self.stack[-2], "REDUCE", self.stack[-1])
        pickle._Unpickler.load_reduce(self)

    def load_newobj(self):
        self._record_call(self.stack[-2], "NEWOBJ", self.stack[-1])
        pickle._Unpickler.load_newobj(self)

    def load_newobj_ex(self):
        self._record_call(self.stack[-3], "NEWOBJ_EX", self.stack[-2])
        pickle._Unpickler.load_newobj_ex(self)

    def load_build(self):
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, functools.partial):
            self.log.targets[("functools", "partial")].add(self.log.name_of(state[0]))
        if isinstance(inst, NumpyArrayWrapper) and state["dtype"].hasobject:
            pickle._Unpickler.load_build(self)
            self.stack.pop()
            self.stack.append(Recorder(self.file_handle, self.log, self.model).load())
            return
        NumpyUnpickler.load_build(self)

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build


def record(files) -> Log:
    """Load every corpus file (tests.corpus.benign.CorpusFile) with the recording unpickler."""
    log = Log()
    for corpus_file in files:
        with open(corpus_file.path, "rb") as fh, \
                _validate_fileobject_and_memmap(fh, str(corpus_file.path)) as (fobj, _mode):
            Recorder(fobj, log, corpus_file.model_name).load()
    return log


def exclusion(module: str, name: str, obj, never_ids: set[int]) -> str | None:
    if module == "scipy.stats" or module.startswith("scipy.stats."):
        return review.SCIPY_STATS_WHY
    if (module, name) in review.EXCLUDE_RULES:
        return review.EXCLUDE_RULES[(module, name)]
    if id(obj) in never_ids:
        return "never-allowed object (runs code, imports by name, touches files or deserialises)"
    return None


def classify(module: str, name: str, obj) -> tuple[str, str | None, str]:
    """(kind, check, review note) for one seen pair; SystemExit if no rule covers it."""
    kind = ("cython_helper" if name.startswith("__pyx_unpickle") or name == "newObj"
            else "class" if isinstance(obj, type) else "function")
    if (module, name) in review.SPECIAL:
        check, note = review.SPECIAL[(module, name)]
        return ("numpy_helper" if check in NUMPY_HELPER_CHECKS else kind), check, note
    if kind == "class" and module.startswith("sklearn."):
        from sklearn.base import BaseEstimator

        for check, names in review.CHECK_BY_CLASS.items():
            if name in names:
                return kind, check, f"{review.ESTIMATOR_NOTE} {review.CHECK_NOTES[check]}"
        if module == "sklearn.metrics._dist_metrics":
            return kind, "dist_metric", review.DIST_METRIC_NOTE
        if obj.__dictoffset__ == 0 and not issubclass(obj, tuple):  # a Cython cdef class
            return kind, None, review.CYTHON_PLAIN_NOTE
        return kind, None, review.ESTIMATOR_NOTE if issubclass(obj, BaseEstimator) else review.HELPER_CLASS_NOTE
    if kind == "function" and module.startswith(("sklearn.", "numpy")):
        return kind, None, review.NUMPY_VALUE_NOTE if module.startswith("numpy") else review.FUNCTION_NOTE
    if kind == "class" and module == "numpy" and issubclass(obj, __import__("numpy").generic):
        return kind, None, review.NUMPY_VALUE_NOTE
    raise SystemExit(f"no review rule covers {module}.{name}: review it in scripts/allowlist_review.py")


def build(log: Log) -> dict:
    never_ids = {id(obj) for _label, obj in resolve_never()}
    entries, excluded = [], {}
    for (module, name), _models in sorted(log.seen.items()):
        obj = log.objects[(module, name)]
        why = exclusion(module, name, obj, never_ids)
        if why:
            excluded[(module, name)] = {"module": module, "name": name, "why": why, "seen": True}
            continue
        kind, check, note = classify(module, name, obj)
        entry = {"module": module, "name": name, "kind": kind, "check": check,
                 "calls": sorted(log.calls.get((module, name), ())), "review": note}
        if check in HELPER_TARGET_CHECKS:
            entry["targets"] = sorted(f"{m}:{n}" for m, n in log.targets[(module, name)])
        entry["as_value"] = ("never" if check in review.VALUE_NEVER_CHECKS
                             else review.AS_VALUE.get((module, name), "anywhere"))
        entries.append(entry)
    for (module, name), why in review.EXCLUDE_RULES.items():
        excluded.setdefault((module, name), {"module": module, "name": name, "why": why, "seen": False})
    admitted = {(e["module"], e["name"]) for e in entries}
    for entry in entries:  # helper targets must themselves be admitted entries
        for target in entry.get("targets", ()):
            if tuple(target.split(":")) not in admitted:
                raise SystemExit(f"{entry['module']}.{entry['name']} target {target} is not admitted")
    return {"versions": installed_versions(), "entries": entries,
            "excluded": [excluded[k] for k in sorted(excluded)],
            "never": sorted(f"{m}.{n}" for m, names in NEVER.items() for n in names)}


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if allowlist.json differs")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text = render(build(record(write_corpus(Path(tmp)))))
    if options.check:
        same = ALLOWLIST_PATH.exists() and ALLOWLIST_PATH.read_text() == text
        print("allowlist.json is up to date" if same else "allowlist.json differs from the enumeration")
        return 0 if same else 1
    ALLOWLIST_PATH.write_text(text)
    data = json.loads(text)
    print(f"wrote {ALLOWLIST_PATH} ({len(data['entries'])} entries, {len(data['excluded'])} excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
