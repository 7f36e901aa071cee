"""The model loader that runs inside sandboxed model hosts (nothing else imports it).

preload() resolves the allowlist before the sandbox locks down; load_model() sniffs the format,
unpickles with SafeUnpickler under the size limits, runs the post-load checks and returns the
estimator, or raises Rejected with one of the ModelRejected codes and a reason that names the
offending global or limit."""

from __future__ import annotations

import importlib
import warnings
from typing import BinaryIO

import joblib
import numpy
import scipy
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from mlplatform.inference import checks, structure
from mlplatform.inference.allowlist import get_allowlist
from mlplatform.inference.guards import KNOWN_CHECKS
from mlplatform.inference.limits import Budget, Limits, Rejected
from mlplatform.inference.streams import DECOMPRESSION_ERRORS, open_stream
from mlplatform.inference.unpickler import SafeUnpickler

__all__ = ["Limits", "Rejected", "check_versions", "installed_versions", "load_model", "preload"]
_ = structure  # structural checks are registered through checks.STRUCTURAL
PREDICT_MODULES = ("pandas", "sklearn.feature_extraction.text", "sklearn.compose",
                   "sklearn.pipeline", "mlplatform.inference.signature")


def installed_versions() -> dict[str, str]:
    return {"sklearn": sklearn.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "joblib": joblib.__version__}


def preload() -> None:
    """Import every allowlisted module and resolve every entry (RuntimeError if one is a
    never-allowed object or has a check nobody implements). Call before lock-down."""
    allowlist = get_allowlist()
    unknown = {e.check for e in allowlist.entries if e.check} - KNOWN_CHECKS - checks.STRUCTURAL_CHECKS
    if unknown:
        raise RuntimeError(f"allowlist names checks that do not exist: {sorted(unknown)}")
    for module in PREDICT_MODULES:  # what describe/predict import lazily, loaded before lock-down
        importlib.import_module(module)


def check_versions() -> None:
    pinned, installed = get_allowlist().versions, installed_versions()
    differing = {k: (pinned.get(k), v) for k, v in installed.items() if pinned.get(k) != v}
    if differing:
        detail = ", ".join(f"{k} {v} (allowlist made for {p})" for k, (p, v) in sorted(differing.items()))
        raise Rejected("version_mismatch", f"installed libraries differ from the reviewed allowlist: {detail}",
                       {"pinned": pinned, "installed": installed})


def load_model(fileobj: BinaryIO, limits: Limits) -> object:
    check_versions()
    allowlist = get_allowlist()
    kind = "uploaded"
    try:
        kind, reader = open_stream(fileobj, limits.max_decompressed_bytes)
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            model = SafeUnpickler(reader, Budget(limits), allowlist).load()
        checks.check_model(model, limits, allowlist)
        return model
    except Rejected:
        raise
    except InconsistentVersionWarning as exc:
        raise Rejected("version_mismatch", f"the model was saved with another scikit-learn version: {exc}",
                       {"estimator": exc.estimator_name, "saved_with": exc.original_sklearn_version,
                        "installed": exc.current_sklearn_version}) from None
    except (MemoryError, RecursionError) as exc:
        raise Rejected("resource_limit", f"loading ran out of resources ({type(exc).__name__})") from None
    except DECOMPRESSION_ERRORS as exc:
        if kind == "pickle" and not isinstance(exc, EOFError):
            raise _failed(exc) from None
        raise Rejected("unsupported_format", f"the {kind} stream is corrupt or truncated "
                       f"({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - any other failure (UnpicklingError, TypeError...) is reported
        raise _failed(exc) from None


def _failed(exc: BaseException) -> Rejected:
    message = str(exc)[:500]
    return Rejected("load_failed", f"{type(exc).__name__}: {message}", {"exception": type(exc).__name__})
