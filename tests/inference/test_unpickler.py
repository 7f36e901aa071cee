"""The restricted unpickler against crafted hostile files (tests/corpus/malicious.py, forged.py):
each is refused with its code and a reason naming the global/opcode/limit, and nothing it asked
for happened (no marker file, no environment change, no module imported)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mlplatform.inference.allowlist import get_allowlist
from mlplatform.inference.limits import Budget, Limits
from mlplatform.inference.loader import Rejected, load_model
from mlplatform.inference.streams import BudgetedReader
from mlplatform.inference.unpickler import SafeUnpickler
from tests.corpus.malicious import ENV_FLAG, malicious_files
from tests.corpus.opcodes import EMPTY_LIST, MARK, STOP, call, dict_of, glob, new_object, program, proto, text, tup

pytestmark = pytest.mark.usefixtures("preloaded")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """(marker path, {name: sample}); companion files (second uploads) live next to the marker."""
    base = tmp_path_factory.mktemp("hostile")
    marker = base / "marker"
    return marker, {m.name: m for m in malicious_files(base / "companions", marker)}


def _names() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(m.name for m in malicious_files(Path(tmp), Path(tmp) / "marker"))


@pytest.mark.parametrize("name", _names())
def test_hostile_file_is_refused_without_side_effects(name, hostile, hostile_limits, tmp_path):
    marker, samples = hostile
    sample = samples[name]
    path = tmp_path / "upload"  # content-addressed files have no extension
    path.write_bytes(sample.data)
    environment = dict(os.environ)
    with open(path, "rb") as fh, pytest.raises(Rejected) as refused:
        load_model(fh, hostile_limits)
    assert refused.value.code == sample.code, refused.value.reason
    assert sample.mentions in refused.value.reason
    assert not marker.exists()
    assert ENV_FLAG not in os.environ and dict(os.environ) == environment


def test_every_attack_class_is_represented(hostile):
    _marker, samples = hostile
    assert {s.attack_class for s in samples.values()} == set(range(1, 14))


def test_unknown_module_is_refused_without_importing_it(tmp_path, hostile_limits, monkeypatch):
    marker = tmp_path / "imported"
    module = "mlp_canary_module"
    (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(*a): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Rejected) as refused:
        load_model(io.BytesIO(program(call(module, "run"))), hostile_limits)
    assert refused.value.code == "unsafe_model" and f"{module}.run" in refused.value.reason
    assert module not in sys.modules and not marker.exists()


def _unpickler(data: bytes, limits: Limits = Limits(1 << 20, 1 << 20)) -> SafeUnpickler:
    return SafeUnpickler(BudgetedReader(io.BytesIO(data), limits.max_decompressed_bytes), Budget(limits),
                         get_allowlist())


def test_plain_values_and_allowlisted_globals_load():
    data = pickle.dumps({"a": [1, 2.5, "x", None, True], "b": (b"raw", frozenset({1})), "c": {3}}, protocol=5)
    assert _unpickler(data).load() == {"a": [1, 2.5, "x", None, True], "b": (b"raw", frozenset({1})), "c": {3}}
    assert _unpickler(program(glob("numpy", "mean"))).load() is np.mean


@pytest.mark.parametrize("opcode", [b"c", b"i", b"o", b"\x82", b"\x83", b"\x84", b"P", b"Q", b"I", b"L", b"S",
                                    b"T", b"U", b"V", b"F", b"g", b"p", b"d", b"l", b"\x97", b"\x98", b"\xff"])
def test_forbidden_opcodes_are_refused_before_they_run(opcode):
    with pytest.raises(Rejected) as refused:
        _unpickler(proto() + opcode + b"x\n" * 4 + STOP).load()
    assert refused.value.code == "unsafe_model" and "forbidden pickle opcode" in refused.value.reason


def test_calls_are_limited_to_the_reviewed_opcodes():
    with pytest.raises(Rejected) as refused:  # LogisticRegression is reviewed for NEWOBJ only
        _unpickler(program(call("sklearn.linear_model._logistic", "LogisticRegression", text("x")))).load()
    assert "may not be called by REDUCE" in refused.value.reason


def test_reduce_of_a_non_global_is_refused():
    # REDUCE on an object built during the load (a list), not an allowlisted global
    with pytest.raises(Rejected) as refused:
        _unpickler(proto() + EMPTY_LIST + tup() + b"R" + STOP).load()
    assert "only call allowlisted globals" in refused.value.reason


def test_items_may_only_go_into_real_containers():
    import sklearn

    state = dict_of(C=text("1"), _sklearn_version=text(sklearn.__version__))
    data = program(new_object("sklearn.linear_model._logistic", "LogisticRegression", state) + MARK + text("x") + b"e")
    with pytest.raises(Rejected) as refused:
        _unpickler(data).load()
    assert "cannot add items" in refused.value.reason


def test_dict_keys_must_be_plain_values():
    data = proto() + b"}" + glob("numpy", "mean") + text("v") + b"s" + STOP
    with pytest.raises(Rejected) as refused:
        _unpickler(data).load()
    assert "dictionary key" in refused.value.reason


def test_opcode_budget_is_shared_and_enforced():
    limits = Limits(1 << 20, 1 << 20, max_pickle_ops=1000)
    with pytest.raises(Rejected) as refused:
        _unpickler(proto() + (EMPTY_LIST + b"0") * 600 + STOP, limits).load()
    assert refused.value.code == "resource_limit" and "1000 opcodes" in refused.value.reason


def test_declared_length_inside_a_frame_cannot_exceed_the_stream():
    body = b"\x8e" + struct.pack("<Q", 1 << 40)  # BINBYTES8 inside a frame
    framed = proto() + pickle.FRAME + struct.pack("<Q", len(body) + 1) + body + STOP
    with pytest.raises(Rejected) as refused:
        _unpickler(framed).load()
    assert refused.value.code == "resource_limit"


def test_object_array_elements_are_rechecked_after_the_nested_stream():
    import joblib

    array = np.array(["a", 1, 2.5, None, np.float64(3)], dtype=object)
    buffer = io.BytesIO()
    joblib.dump(array, buffer)
    loaded = _unpickler(buffer.getvalue()).load()
    assert loaded.dtype == object and list(loaded) == list(array)


def test_an_array_handed_out_before_its_state_is_refused():
    from tests.corpus.opcodes import BUILD, integer, raw_bytes

    f8 = call("numpy", "dtype", text("f8"), pickle.NEWFALSE, pickle.NEWTRUE) + tup(
        integer(3), text("<"), b"N", b"N", b"N", integer(-1), integer(-1), integer(0)) + BUILD
    array = call("numpy._core.multiarray", "_reconstruct", glob("numpy", "ndarray"), tup(integer(0)), f8)
    metric = call("sklearn.metrics._dist_metrics", "newObj", glob("sklearn.metrics._dist_metrics", "EuclideanDistance64"))
    # the metric keeps a view of `vec` (still the empty placeholder) before the array gets its state
    matrix = call("numpy._core.numeric", "_frombuffer", raw_bytes(bytes(8)), f8, tup(integer(1), integer(1)), text("C"))
    data = proto() + array + pickle.MEMOIZE + pickle.POP + metric + tup(b"G" + struct.pack(">d", 2.0),
                                                                         pickle.BINGET + b"\x00", matrix)
    with pytest.raises(Rejected) as refused:
        _unpickler(data + BUILD + STOP).load()
    assert "used before its state was set" in refused.value.reason
