"""Guards for allowlisted helpers that take a callable or a type as an argument (functools.partial,
numpy.random's pickling helpers, Cython `__pyx_unpickle_*` and `newObj`) and for classes whose
pickled state becomes raw C structures (sklearn's Tree, KD/Ball trees, distance metrics, numpy
bit generators). Helpers may only be handed the exact callables/types benign files use (the
entry's `targets`); C state is validated before `__setstate__` copies it."""

from __future__ import annotations

import functools

import numpy as np

from mlplatform.inference import structure
from mlplatform.inference.limits import unsafe

MAX_CLASSES = 1_000_000
MAX_OUTPUTS = 10_000


def _targets(ctx, entry) -> list:
    return [t for t in ctx.allowlist.target_objects(entry) if t is not None]


def _is_target(ctx, entry, obj) -> bool:
    return any(obj is t for t in _targets(ctx, entry))


def _small_int(value, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise unsafe(f"{what} must be an integer in [{low}, {high}]")
    return value


def type_argument_call(ctx, entry, func, args):
    """newObj(cls) and __pyx_unpickle_X(cls, checksum, state): cls must be a reviewed target."""
    if not args or not _is_target(ctx, entry, args[0]):
        got = getattr(args[0], "__qualname__", type(args[0]).__name__) if args else "nothing"
        raise unsafe(f"{entry.qualified} may not build {got}")
    if entry.check == "new_obj" and len(args) != 1:
        raise unsafe(f"{entry.qualified} takes exactly one class")
    if entry.check == "cython_unpickle":
        if len(args) != 3 or type(args[1]) is not int:
            raise unsafe(f"{entry.qualified} called with unexpected arguments")
        if args[2] is not None and args[2] != ():  # only stateless helpers inline their state
            raise unsafe(f"{entry.qualified}: inline state is not supported")
    return func(*args)


def partial_call(ctx, entry, func, args):
    if len(args) != 1 or not _is_target(ctx, entry, args[0]):
        raise unsafe(f"functools.partial may not wrap {_name(args[0] if args else None)}")
    return func(*args)


def partial_build(ctx, inst, state):
    entry = ctx.allowlist.entry_of(functools.partial)
    if type(state) is not tuple or len(state) != 4 or not _is_target(ctx, entry, state[0]):
        raise unsafe(f"functools.partial state may not wrap {_name(state[0] if state else None)}")
    _, args, kwargs, namespace = state
    if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict) \
            or not (namespace is None or (type(namespace) is dict and not namespace)):
        raise unsafe("functools.partial state has an unexpected layout")
    if kwargs and not all(type(k) is str and not k.startswith("_") for k in kwargs):
        raise unsafe("functools.partial keyword names must be plain strings")
    functools.partial.__setstate__(inst, state)


def random_ctor_call(ctx, entry, func, args):
    """numpy.random._pickle ctors: a bit generator class/instance of a target type, and (if
    given) the allowlisted bit generator ctor itself, nothing else."""
    if not 1 <= len(args) <= 2:
        raise unsafe(f"{entry.qualified} called with unexpected arguments")
    first = args[0]
    kind = first if isinstance(first, type) else type(first)
    if not _is_target(ctx, entry, kind) or (isinstance(first, type) and "bit_generator_ctor" not in entry.name):
        raise unsafe(f"{entry.qualified} may not be handed {_name(kind)}")
    if len(args) == 2 and args[1] is not ctx.allowlist.lookup("numpy.random._pickle", "__bit_generator_ctor"):
        raise unsafe(f"{entry.qualified} may only use numpy's own bit generator ctor")
    return func(*args)


def bit_generator_build(ctx, inst, state):
    """BitGenerator.__setstate__((state dict, seed sequence)); MT19937 trusts `pos` blindly."""
    name = type(inst).__name__
    if name not in structure.BIT_GENERATOR_STATES or type(state) is not tuple or len(state) != 2:
        raise unsafe(f"bit generator {name} state has an unexpected layout")
    structure.check_bit_generator_state(state[0], name)
    ctx.require_built(*state[0].get("state", {}).values())
    if state[1] is not None and not ctx.allowlist.is_class(type(state[1])):
        raise unsafe("bit generator seed sequence has an unexpected type")
    type(inst).__setstate__(inst, state)


def random_state_build(ctx, inst, state):
    if type(state) is not dict or set(state) != {"bit_generator", "state", "has_gauss", "gauss"}:
        raise unsafe("RandomState state has an unexpected layout")
    structure.check_bit_generator_state({"bit_generator": state["bit_generator"], "state": state["state"]},
                                        "MT19937")
    _small_int(state["has_gauss"], 0, 1, "RandomState has_gauss")
    if type(state["gauss"]) is not float:
        raise unsafe("RandomState gauss must be a float")
    type(inst).__setstate__(inst, state)


def seed_sequence_build(ctx, inst, state):
    """SeedSequence C state: (entropy, n_children_spawned, pool, pool_size, spawn_key)."""
    if type(state) is not tuple or len(state) != 5:
        raise unsafe("SeedSequence state has an unexpected layout")
    entropy, spawned, pool, pool_size, spawn_key = state
    _small_int(pool_size, 1, 1024, "SeedSequence pool size")
    structure.check_seed_pool(pool, pool_size)
    ctx.require_built(pool, entropy)
    _small_int(spawned, 0, 1 << 62, "SeedSequence children")
    if not _int_like(entropy) or type(spawn_key) is not tuple or not all(type(k) is int for k in spawn_key):
        raise unsafe("SeedSequence entropy/spawn key must be integers")
    type(inst).__setstate__(inst, state)


def _int_like(value) -> bool:
    if type(value) is int or value is None or (isinstance(value, np.integer) and type(value).__module__ == "numpy"):
        return True
    return type(value) is np.ndarray and value.dtype.kind in "iu" and value.ndim == 1


def tree_call(ctx, entry, func, args):
    """sklearn Tree(n_features, n_classes, n_outputs): __cinit__ copies n_outputs entries."""
    if len(args) != 3:
        raise unsafe("sklearn Tree called with unexpected arguments")
    _small_int(args[0], 0, 1 << 31, "Tree n_features")
    n_outputs = _small_int(args[2], 1, MAX_OUTPUTS, "Tree n_outputs")
    classes = args[1]
    if type(classes) is not np.ndarray or classes.dtype != np.intp or classes.shape != (n_outputs,):
        raise unsafe("Tree n_classes must be an intp array of n_outputs entries")
    if classes.size and not (classes.min() >= 1 and classes.max() <= MAX_CLASSES):
        raise unsafe("Tree n_classes out of range")
    ctx.require_built(classes)
    return func(*args)


def tree_build(ctx, inst, state):
    if type(state) is not dict or set(state) != {"max_depth", "node_count", "nodes", "values"}:
        raise unsafe("sklearn Tree state has an unexpected layout")
    nodes = state["nodes"]
    if type(nodes) is not np.ndarray or nodes.ndim != 1 or type(state["values"]) is not np.ndarray:
        raise unsafe("sklearn Tree nodes/values must be arrays")
    _small_int(state["node_count"], 0, nodes.shape[0], "Tree node_count")
    if state["node_count"] != nodes.shape[0]:
        raise unsafe("sklearn Tree node_count does not match its nodes")
    _small_int(state["max_depth"], 0, 1 << 20, "Tree max_depth")
    ctx.require_built(nodes, state["values"])
    type(inst).__setstate__(inst, state)
    structure.check_tree(inst)


def binary_tree_build(ctx, inst, state):
    """KDTree/BallTree C state: validated in full before __setstate__ stores the memoryviews."""
    structure.check_binary_tree_state(type(inst).__name__, state, ctx.allowlist)
    ctx.require_built(*state[:4], state[12])
    type(inst).__setstate__(inst, state)


def dist_metric_build(ctx, inst, state):
    if type(state) is not tuple or len(state) != 3 or type(state[0]) is not float:
        raise unsafe("distance metric state has an unexpected layout")
    for array, ndim in ((state[1], 1), (state[2], 2)):
        if type(array) is not np.ndarray or array.dtype != np.float64 or array.ndim != ndim:
            raise unsafe("distance metric parameters must be float64 arrays")
    ctx.require_built(state[1], state[2])
    type(inst).__setstate__(inst, state)


def _name(obj) -> str:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    return f"{module}.{name}" if module else name
