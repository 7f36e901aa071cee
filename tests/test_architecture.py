"""Layering, checked on the source: transports (ui, api, worker) never import each other, and the
service layer and the core modules never import a transport or its framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlplatform"
TRANSPORTS = ("mlplatform.ui", "mlplatform.api", "mlplatform.worker")
CORE = ("mlplatform.services", "mlplatform.config", "mlplatform.db", "mlplatform.models",
        "mlplatform.errors", "mlplatform.cache", "mlplatform.logs")
FORBIDDEN_IN_CORE = ("reflex", "fastapi", "starlette", "rq.worker", *TRANSPORTS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement anywhere in `source` names, relative imports resolved.
    `from a import b` yields both `a` and `a.b` (b may be a submodule)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules_under(*packages: str) -> dict[str, set[str]]:
    """module name -> what it imports, for every .py file inside the given packages/modules."""
    result = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if any(is_within(name, p) for p in packages):
            result[name] = imported_modules(path.read_text(), name, path.name == "__init__.py")
    return result


def violations(modules: dict[str, set[str]], forbidden_for) -> list[str]:
    return sorted(
        f"{name} imports {imported}"
        for name, imports in modules.items()
        for imported in imports
        if any(is_within(imported, bad) for bad in forbidden_for(name))
    )


def other_transports(module: str) -> list[str]:
    return [t for t in TRANSPORTS if not is_within(module, t)]


def test_transports_do_not_import_each_other():
    modules = modules_under(*TRANSPORTS)
    assert violations(modules, other_transports) == []


def test_services_and_core_modules_import_no_framework_or_transport():
    modules = modules_under(*CORE)
    assert violations(modules, lambda _name: FORBIDDEN_IN_CORE) == []


# --- the walker itself: these make the checks above impossible to pass by seeing nothing -------


def test_the_walker_sees_every_package_and_their_real_imports():
    transports = modules_under(*TRANSPORTS)
    core = modules_under(*CORE)
    for package in (*TRANSPORTS, "mlplatform.services"):
        assert any(is_within(m, package) for m in (transports | core)), package
    assert {"fastapi", "fastapi.FastAPI"} <= transports["mlplatform.api.app"]
    assert "reflex" in transports["mlplatform.ui.app"]
    assert "mlplatform.services.auth" in transports["mlplatform.worker.tasks"]
    assert "jwt" in core["mlplatform.services.tokens"]
    assert {"mlplatform.services", "mlplatform.services.tokens"} <= core["mlplatform.services.principals"]


@pytest.mark.parametrize(
    "module, source, bad",
    [
        ("mlplatform.api.routes.x", "from mlplatform.ui import state", "mlplatform.ui"),
        ("mlplatform.api.routes.x", "from ...worker import tasks", "mlplatform.worker"),
        ("mlplatform.ui.pages.x", "import mlplatform.api.deps as deps", "mlplatform.api"),
        ("mlplatform.worker.tasks", "def f():\n    from mlplatform.ui.state import S", "mlplatform.ui"),
    ],
)
def test_the_walker_catches_transport_cross_imports(module, source, bad):
    found = violations({module: imported_modules(source, module)}, other_transports)
    assert found and all(bad in v for v in found)


@pytest.mark.parametrize(
    "source",
    [
        "import reflex as rx",
        "from fastapi import Depends",
        "from starlette.requests import Request",
        "from rq.worker import Worker",
        "import rq.worker",
        "from rq import worker",
        "from mlplatform.worker import tasks",
        "from ..worker.tasks import purge_expired_refresh_tokens",
        "from ..api import deps",
        "def lazy():\n    import fastapi",
    ],
)
def test_the_walker_catches_framework_imports_in_services(source):
    found = violations({"mlplatform.services.x": imported_modules(source, "mlplatform.services.x")},
                       lambda _name: FORBIDDEN_IN_CORE)
    assert found


@pytest.mark.parametrize("source", ["from rq import Queue", "from rq.job import Job", "import redis",
                                    "from mlplatform.services import tokens", "from . import tokens"])
def test_the_walker_allows_what_services_may_use(source):
    modules = {"mlplatform.services.x": imported_modules(source, "mlplatform.services.x")}
    assert violations(modules, lambda _name: FORBIDDEN_IN_CORE) == []


# --- model bytes: only the sandboxed host side unpickles -----------------------------------------

PICKLERS = ("pickle", "_pickle", "joblib", "cloudpickle", "dill")
# Modules that run inside a model host (after lock-down) and may use pickle/joblib. streams.py
# opens joblib's compressed containers for the loader.
IN_HOST_PICKLING = {f"mlplatform.inference.{m}" for m in
                    ("unpickler", "loader", "checks", "signature", "allowlist", "host", "streams")}
HOST_ONLY = tuple(f"mlplatform.inference.{m}" for m in ("host", "loader", "unpickler"))
OUTSIDE_HOSTS = (*TRANSPORTS, "mlplatform.services", *(f"mlplatform.inference.{m}" for m in
                 ("client", "manager", "hostproc", "protocol", "batch")))


def test_only_in_host_modules_import_pickle_or_joblib():
    modules = modules_under("mlplatform")
    assert violations(modules, lambda name: () if name in IN_HOST_PICKLING else PICKLERS) == []


def test_nothing_outside_the_hosts_imports_the_loader():
    modules = modules_under(*OUTSIDE_HOSTS)
    assert violations(modules, lambda _name: HOST_ONLY) == []


def test_the_walker_sees_the_inference_package():
    modules = modules_under("mlplatform.inference")
    assert "mlplatform.inference.loader" in modules["mlplatform.inference.host"]
    assert "mlplatform.inference.protocol" in modules["mlplatform.inference.client"]
    assert "pickle" in modules["mlplatform.inference.unpickler"]  # the one module that must


@pytest.mark.parametrize("source", ["import pickle", "from joblib import load", "import cloudpickle as cp",
                                    "def f():\n    import _pickle", "from mlplatform.inference import loader"])
def test_the_walker_catches_unpickling_outside_hosts(source):
    modules = {"mlplatform.services.x": imported_modules(source, "mlplatform.services.x")}
    found = violations(modules, lambda _name: PICKLERS) + violations(modules, lambda _name: HOST_ONLY)
    assert found
