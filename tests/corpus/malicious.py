"""Crafted hostile model files, at least one per attack class of SAFE_LOADING.md (several for the
important ones). Each would leave the marker file (or an environment variable) behind if any of
its code ran; the tests load each one and assert its refusal code and that nothing happened.

malicious_files(directory, marker) writes any companion files a sample points at (a "second
upload" on disk) and returns the samples; their bytes are written by the tests."""

from __future__ import annotations

import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.corpus.opcodes import (BUILD, EMPTY_DICT, EMPTY_LIST, MARK, NONE, REDUCE, STOP,
                                  call, dict_of, glob, integer, new_object, program, proto, raw_bytes, text, tup)

ENV_FLAG = "MLP_MALICIOUS_RAN"


@dataclass(frozen=True)
class Malicious:
    name: str
    attack_class: int  # the SAFE_LOADING attack class (1-13)
    data: bytes
    code: str  # the Rejected code the loader must answer with
    mentions: str = ""  # a substring the reason must contain (the offending global or limit)


def _shell(marker: Path) -> bytes:
    return text(f"touch {marker}")


def _python(marker: Path) -> bytes:
    return text(f"open({str(marker)!r}, 'w').close()")


def _logistic(state: bytes) -> bytes:
    """A LogisticRegression instance with the given dict state (an allowed carrier)."""
    return new_object("sklearn.linear_model._logistic", "LogisticRegression", state)


def direct_calls(marker: Path) -> list[Malicious]:
    shell, code = _shell(marker), _python(marker)
    return [
        Malicious("os_system", 1, program(call("os", "system", shell)), "unsafe_model", "os.system"),
        Malicious("posix_system", 1, program(call("posix", "system", shell)), "unsafe_model", "posix.system"),
        Malicious("nt_system", 1, program(call("nt", "system", shell)), "unsafe_model", "nt.system"),
        Malicious("os_popen", 1, program(call("os", "popen", shell)), "unsafe_model", "os.popen"),
        Malicious("subprocess_popen", 1, program(call("subprocess", "Popen", tup(text("touch"), text(str(marker))))),
                  "unsafe_model", "subprocess.Popen"),
        Malicious("subprocess_run", 1, program(call("subprocess", "run", shell)), "unsafe_model", "subprocess.run"),
        Malicious("builtins_eval", 1, program(call("builtins", "eval", code)), "unsafe_model", "builtins.eval"),
        Malicious("builtins_exec", 1, program(call("builtins", "exec", code)), "unsafe_model", "builtins.exec"),
        Malicious("os_system_protocol5", 1, program(call("os", "system", shell), 5), "unsafe_model", "os.system"),
        Malicious("os_system_in_estimator_state", 1,
                  program(_logistic(dict_of(C=call("os", "system", shell)))), "unsafe_model", "os.system"),
    ]


def aliases(marker: Path) -> list[Malicious]:
    code = _python(marker)
    return [
        Malicious("python2_builtin_eval", 2, program(call("__builtin__", "eval", code)), "unsafe_model", "__builtin__"),
        Malicious("python2_copy_reg", 2, program(call("copy_reg", "_reconstructor", glob("os", "system"))),
                  "unsafe_model", "copy_reg"),
        Malicious("numpy_core_old_path", 2, program(call("numpy.core.multiarray", "_reconstruct", glob("numpy", "ndarray"),
                                                         tup(integer(0)), raw_bytes(b"b"))),
                  "unsafe_model", "numpy.core.multiarray._reconstruct"),
        Malicious("numpy_testing_runstring", 2, program(call("numpy.testing._private.utils", "runstring", code,
                                                             EMPTY_DICT)), "unsafe_model", "runstring"),
        Malicious("joblib_reexported_os", 2, program(call("joblib.numpy_pickle", "os", text("x"))),
                  "unsafe_model", "joblib.numpy_pickle.os"),
        Malicious("numpy_reexported_builtins", 2, program(call("numpy", "__builtins__", text("x"))),
                  "unsafe_model", "numpy.__builtins__"),
    ]


def dotted_names(marker: Path) -> list[Malicious]:
    shell = _shell(marker)
    return [
        Malicious("dotted_through_numpy", 3, program(call("numpy", "testing._private.utils.os.system", shell)),
                  "unsafe_model", "dotted"),
        Malicious("dotted_class_method", 3, program(call("sklearn.pipeline", "Pipeline.__init__.__globals__", text("x"))),
                  "unsafe_model", "dotted"),
        Malicious("dotted_allowlisted_module", 3, program(call("sklearn.linear_model._logistic", "np.load", text("x"))),
                  "unsafe_model", "dotted"),
        Malicious("ndarray_tofile", 13, program(call("numpy", "ndarray.tofile", text(str(marker)))),
                  "unsafe_model", "dotted"),
    ]


def string_gadgets(marker: Path) -> list[Malicious]:
    shell = _shell(marker)
    return [
        Malicious("importlib_import_module", 4, program(call("importlib", "import_module", text("os"))),
                  "unsafe_model", "importlib.import_module"),
        Malicious("builtins_getattr", 4, program(call("builtins", "getattr", glob("sklearn.pipeline", "Pipeline"),
                                                      text("__init__"))), "unsafe_model", "builtins.getattr"),
        Malicious("operator_attrgetter", 4, program(call("operator", "attrgetter", text("system"))),
                  "unsafe_model", "operator.attrgetter"),
        Malicious("pkgutil_resolve_name", 4, program(call("pkgutil", "resolve_name", text("os:system"))),
                  "unsafe_model", "pkgutil.resolve_name"),
        Malicious("pydoc_locate", 4, program(call("pydoc", "locate", text("os.system"))), "unsafe_model", "pydoc.locate"),
        Malicious("numpy_ufunc_reconstruct", 4, program(call("numpy._core", "_ufunc_reconstruct", text("os"),
                                                             text("system")) + tup(shell) + REDUCE),
                  "unsafe_model", "_ufunc_reconstruct"),
        Malicious("sklearn_callable_value_called", 4, program(call("numpy", "mean", text("x"))),
                  "unsafe_model", "numpy.mean"),
    ]


def exec_by_another_name(marker: Path) -> list[Malicious]:
    code = _python(marker)
    return [
        Malicious("cprofile_run", 5, program(call("cProfile", "run", code)), "unsafe_model", "cProfile.run"),
        Malicious("timeit_timeit", 5, program(call("timeit", "timeit", code)), "unsafe_model", "timeit.timeit"),
        Malicious("code_interactive_interpreter", 5, program(call("code", "InteractiveInterpreter")),
                  "unsafe_model", "code.InteractiveInterpreter"),
        Malicious("runpy_run_path", 5, program(call("runpy", "run_path", text(str(marker)))), "unsafe_model", "runpy"),
        Malicious("sklearn_testing_script", 5, program(call("sklearn.utils._testing",
                                                            "assert_run_python_script_without_output", code)),
                  "unsafe_model", "sklearn.utils._testing"),
    ]


def code_objects(marker: Path) -> list[Malicious]:
    code = compile(f"open({str(marker)!r}, 'w').close()", "<x>", "exec")
    fields = [integer(0), integer(0), integer(0), integer(0), integer(2), integer(0), raw_bytes(code.co_code)]
    return [
        Malicious("types_code_type", 6, program(call("types", "CodeType", *fields)), "unsafe_model", "types.CodeType"),
        Malicious("types_function_type", 6, program(call("types", "FunctionType", NONE, EMPTY_DICT)),
                  "unsafe_model", "types.FunctionType"),
        Malicious("builtins_compile", 6, program(call("builtins", "compile", _python(marker), text("x"), text("exec"))),
                  "unsafe_model", "builtins.compile"),
    ]


def nested(marker: Path, directory: Path) -> list[Malicious]:
    inner = pickle.dumps(_OsSystem(f"touch {marker}"), protocol=4)
    second = directory / "second_upload.pkl"
    second.write_bytes(inner)
    npy = directory / "second_upload.npy"
    npy.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '|O', 'fortran_order': False, "
                    b"'shape': (1,), }".ljust(117) + b"\n" + inner)
    legacy_state = dict_of(filename=text(second.name), subclass=glob("numpy", "ndarray"), allow_mmap=pickle.NEWFALSE)
    return [
        Malicious("pickle_loads", 7, program(call("pickle", "loads", raw_bytes(inner))), "unsafe_model", "pickle.loads"),
        Malicious("underscore_pickle_loads", 7, program(call("_pickle", "loads", raw_bytes(inner))),
                  "unsafe_model", "_pickle.loads"),
        Malicious("joblib_load", 7, program(call("joblib", "load", text(str(second)))), "unsafe_model", "joblib.load"),
        Malicious("numpy_load_allow_pickle", 7, program(call("numpy", "load", text(str(npy)), NONE, pickle.NEWTRUE)),
                  "unsafe_model", "numpy.load"),
        Malicious("legacy_ndarray_wrapper", 7, program(new_object("joblib.numpy_pickle", "NDArrayWrapper", legacy_state)),
                  "unsupported_format", "NDArrayWrapper"),
        Malicious("legacy_compat_wrapper", 7, program(new_object("joblib.numpy_pickle_compat", "NDArrayWrapper",
                                                                 legacy_state)), "unsupported_format", "NDArrayWrapper"),
        Malicious("legacy_zf_format", 7, b"ZF0x00000010" + zlib.compress(inner), "unsupported_format", "legacy"),
    ]


class _OsSystem:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def opcode_variants(marker: Path) -> list[Malicious]:
    command = f"touch {marker}".encode()
    protocol0 = b"cos\nsystem\n(S'" + command + b"'\ntR."
    protocol1 = b"cos\nsystem\nq\x00(U" + bytes([len(command)]) + command + b"tq\x01Rq\x02."
    benign_list = [1, 2, 3]
    inst = proto() + MARK + b"ios\nsystem\n" + STOP
    obj = proto() + MARK + glob("sklearn.pipeline", "Pipeline") + b"o" + STOP
    return [
        Malicious("protocol0_text", 8, protocol0, "unsupported_format", "protocol"),
        Malicious("protocol1_binary", 8, protocol1, "unsupported_format", "protocol"),
        Malicious("protocol2", 8, pickle.dumps(benign_list, protocol=2), "unsupported_format", "protocol 2"),
        Malicious("protocol3", 8, pickle.dumps(benign_list, protocol=3), "unsupported_format", "protocol 3"),
        Malicious("inst_opcode", 8, inst, "unsafe_model", "INST"),
        Malicious("obj_opcode", 8, obj, "unsafe_model", "OBJ"),
        Malicious("global_opcode_in_protocol4", 8, proto() + b"cos\nsystem\n" + _shell(marker) + b"\x85R.",
                  "unsafe_model", "GLOBAL"),
        Malicious("ext1_opcode", 8, proto() + b"\x82\x01" + STOP, "unsafe_model", "EXT1"),
        Malicious("persistent_id", 8, proto() + text("os.system") + b"Q" + STOP, "unsafe_model", "BINPERSID"),
        Malicious("proto_switch_mid_stream", 8, proto() + EMPTY_LIST + b"\x80\x02" + STOP, "unsafe_model", "PROTO"),
        Malicious("memo_put_get_text", 8, proto() + EMPTY_LIST + b"p0\n" + STOP, "unsafe_model", "PUT"),
        Malicious("build_as_setattr_on_class", 8, program(glob("sklearn.pipeline", "Pipeline") +
                                                          dict_of(predict=glob("numpy", "mean")) + BUILD),
                  "unsafe_model", "BUILD"),
        Malicious("build_on_environ", 8, program(glob("os", "environ") + dict_of(**{ENV_FLAG: text("1")}) + BUILD),
                  "unsafe_model", "os.environ"),
    ]


def state_injection(marker: Path) -> list[Malicious]:
    slot_state = tup(NONE, dict_of(__class__=glob("sklearn.pipeline", "Pipeline")))
    return [
        Malicious("build_shadows_predict", 9, program(_logistic(dict_of(predict=glob("numpy", "mean")))),
                  "unsafe_model", "predict"),
        Malicious("build_sets_dunder_class", 9, program(_logistic(dict_of(__class__=glob("sklearn.pipeline", "Pipeline")))),
                  "unsafe_model", "__class__"),
        Malicious("build_sets_dunder_dict", 9, program(_logistic(dict_of(__dict__=EMPTY_DICT))), "unsafe_model", "__dict__"),
        Malicious("build_slot_state", 9, program(_logistic(slot_state)), "unsafe_model", "dict"),
        Malicious("build_non_string_key", 9, program(_logistic(EMPTY_DICT + integer(1) + integer(2) + b"s")),
                  "unsafe_model", "strings"),
        Malicious("scipy_stats_distribution", 9, program(new_object("scipy.stats._continuous_distns", "uniform_gen",
                                                                     dict_of(_ctor_param=EMPTY_DICT))),
                  "unsafe_model", "best_estimator_"),
    ]


def deferred_triggers(marker: Path) -> list[Malicious]:
    return [
        Malicious("function_transformer_os_system", 10, program(new_object(
            "sklearn.preprocessing._function_transformer", "FunctionTransformer",
            dict_of(func=glob("os", "system")))), "unsafe_model", "os.system"),
        Malicious("svc_kernel_callable", 10, program(new_object("sklearn.svm._classes", "SVC",
                                                                dict_of(kernel=glob("builtins", "print")))),
                  "unsafe_model", "builtins.print"),
        Malicious("knn_metric_vectorize", 10, program(new_object(
            "sklearn.neighbors._classification", "KNeighborsClassifier",
            dict_of(metric=call("numpy", "vectorize", glob("os", "system"))))), "unsafe_model", "numpy.vectorize"),
        Malicious("partial_wraps_unlisted", 10, program(call("functools", "partial", glob("numpy", "mean"))),
                  "unsafe_model", "functools.partial"),
    ]


def file_writes(marker: Path) -> list[Malicious]:
    array = call("numpy", "zeros", integer(3))
    return [
        Malicious("numpy_save", 13, program(call("numpy", "save", text(str(marker)), array)), "unsafe_model", "numpy.save"),
        Malicious("numpy_memmap", 13, program(call("numpy", "memmap", text(str(marker)), glob("numpy", "uint8"),
                                                   text("w+"), integer(0), tup(integer(8)))), "unsafe_model", "memmap"),
        Malicious("builtins_open", 13, program(call("builtins", "open", text(str(marker)), text("w"))),
                  "unsafe_model", "builtins.open"),
        Malicious("joblib_dump", 13, program(call("joblib", "dump", integer(1), text(str(marker)))),
                  "unsafe_model", "joblib.dump"),
        Malicious("shutil_copyfile", 13, program(call("shutil", "copyfile", text("/etc/hostname"), text(str(marker)))),
                  "unsafe_model", "shutil.copyfile"),
    ]


def malicious_files(directory: Path, marker: Path, limit: int = 8 << 20) -> list[Malicious]:
    """Every sample; `limit` is the decompressed-size limit the resource samples are sized for."""
    from tests.corpus.forged import forged_files  # these two build on this module
    from tests.corpus.malicious_limits import joblib_structure, pickle_level, resource_exhaustion

    directory.mkdir(parents=True, exist_ok=True)
    return [*forged_files(), *direct_calls(marker), *aliases(marker), *dotted_names(marker), *string_gadgets(marker),
            *exec_by_another_name(marker), *code_objects(marker), *nested(marker, directory),
            *opcode_variants(marker), *state_injection(marker), *deferred_triggers(marker),
            *joblib_structure(marker), *resource_exhaustion(limit), *pickle_level(), *file_writes(marker)]

