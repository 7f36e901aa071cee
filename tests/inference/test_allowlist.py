"""The reviewed allowlist data: deterministic, exact, free of never-allowed objects, pinned to the
installed library versions, and equal to what scripts/make_allowlist.py enumerates."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import joblib
import pytest

from mlplatform.inference import allowlist as allowlist_module
from mlplatform.inference.allowlist import ALLOWLIST_PATH, Allowlist, assert_no_never_allowed, get_allowlist, load_data
from mlplatform.inference.loader import installed_versions, preload

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = load_data()


def test_json_is_sorted_and_deterministic():
    entries = [(e["module"], e["name"]) for e in DATA["entries"]]
    assert entries == sorted(entries) and len(set(entries)) == len(entries)
    assert ALLOWLIST_PATH.read_text() == json.dumps(DATA, indent=1, sort_keys=True) + "\n"


def test_entries_are_exact_reviewed_pairs():
    for entry in DATA["entries"]:
        assert "." not in entry["name"] and entry["name"] and entry["module"]
        assert entry["kind"] in ("class", "function", "cython_helper", "numpy_helper")
        assert entry["review"], entry
        assert set(entry["calls"]) <= {"REDUCE", "NEWOBJ", "NEWOBJ_EX"}
    assert 150 <= len(DATA["entries"]) <= 400


def test_excluded_entries_are_absent():
    admitted = {(e["module"], e["name"]) for e in DATA["entries"]}
    excluded = {(e["module"], e["name"]) for e in DATA["excluded"]}
    assert not admitted & excluded
    for pair in [("builtins", "getattr"), ("numpy", "vectorize"), ("numpy._core", "_ufunc_reconstruct")]:
        assert pair in excluded and pair not in admitted
    assert not [m for m, _n in admitted if m == "scipy.stats" or m.startswith("scipy.stats.")]
    assert any(m.startswith("scipy.stats.") for m, _n in excluded)


def test_no_entry_is_a_never_allowed_object():
    preload()
    assert_no_never_allowed(get_allowlist())
    dangerous = {(m, n) for m, names in allowlist_module.NEVER.items() for n in names}
    assert not dangerous & {(e["module"], e["name"]) for e in DATA["entries"]}
    assert sorted(DATA["never"]) == sorted(f"{m}.{n}" for m, n in dangerous)


@pytest.mark.parametrize(("module", "name"), [("os", "system"), ("posix", "system"), ("subprocess", "Popen"),
                                              ("builtins", "getattr"), ("numpy", "load")])
def test_an_alias_of_a_never_allowed_object_stops_start_up(module, name, tmp_path):
    data = {**DATA, "entries": [*DATA["entries"], {"module": module, "name": name, "kind": "function"}]}
    allowlist = Allowlist({**data, "excluded": []}).resolve()
    with pytest.raises(RuntimeError, match="never-allowed"):
        assert_no_never_allowed(allowlist)


def test_versions_are_pinned_to_the_installed_libraries():
    assert DATA["versions"] == installed_versions()
    requirements = (ROOT / "requirements.txt").read_text()
    for package, key in (("scikit-learn", "sklearn"), ("numpy", "numpy"), ("scipy", "scipy"), ("joblib", "joblib")):
        assert re.search(rf"^{package}=={re.escape(DATA['versions'][key])}$", requirements, re.M), package


def test_joblib_routes_find_class_into_object_array_streams():
    # joblib < 1.6.0 read object arrays' nested pickle with a plain pickle.load (no find_class)
    assert tuple(int(p) for p in joblib.__version__.split(".")[:2]) >= (1, 6)


def test_the_enumeration_reproduces_the_reviewed_file(benign_corpus):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_allowlist
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    files = [f for group in benign_corpus.values() for f in group]
    assert make_allowlist.render(make_allowlist.build(make_allowlist.record(files))) == ALLOWLIST_PATH.read_text()
