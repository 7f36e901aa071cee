"""Post-load checks, run inside the model host before a model is used.

walk() visits the object graph iteratively, breadth first, with an identity memo: it bounds the
number of distinct objects and their depth, checks that every object is of an allowed type
(plain values and containers, numpy arrays/dtypes/scalars, instances of allowlisted classes),
that every callable found as a value is an allowlisted function or class by identity (so nothing
can fire later at predict time), that no instance attribute shadows a method or property, and
runs the cheap structural checks of classes whose state compiled code indexes. logical_size()
then bounds what a naive recursive walk of the containers would visit (shared sub-lists)."""

from __future__ import annotations

import functools
from collections import deque

import numpy as np
from sklearn.base import BaseEstimator

from mlplatform.inference import numpy_guards as ng
from mlplatform.inference import structure
from mlplatform.inference.limits import Limits, Rejected, over_limit, unsafe
from mlplatform.inference.state import CALLABLE_TYPES, check_attribute_name, check_element, describe, is_numpy_scalar

LEAF_TYPES = (type(None), bool, int, float, complex, str, bytes)
CONTAINERS = (list, tuple, set, frozenset)


def check_model(model, limits: Limits, allowlist) -> None:
    objects = walk(model, limits, allowlist)
    check_estimator(model, allowlist)
    freeze(objects, allowlist)


def freeze(objects, allowlist) -> None:
    """Make every numeric array of the model read-only. Compiled code trusts indices checked at
    load (tree and KD-tree nodes, sparse indices, libsvm counts), and a callable parameter handed
    one of these arrays (a ufunc's or numpy.mean's `out=`) could otherwise rewrite them at predict
    time. Object arrays stay writable (their elements are Python objects: type-checked on use).
    libsvm's predict takes writable buffers: its estimators get private, writable copies that
    nothing else in the model can refer to."""
    for obj in objects:
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            obj.flags.writeable = False
    for obj in objects:
        if type(obj) is not np.ndarray and allowlist.check_of_type(type(obj)) == "libsvm":
            attributes = vars(obj)
            for key, value in list(attributes.items()):
                if type(value) is np.ndarray or allowlist.check_of_type(type(value)) == "sparse":
                    attributes[key] = value.copy()


def check_estimator(model, allowlist) -> None:
    cls = type(model)
    if not (allowlist.is_class(cls) and cls.__module__.startswith("sklearn.") and isinstance(model, BaseEstimator)):
        raise Rejected("not_an_estimator", f"the file holds a {describe(cls)}, not a scikit-learn estimator")
    if not any(callable(getattr(model, m, None)) for m in ("predict", "transform")):
        raise Rejected("not_an_estimator", f"{describe(cls)} has neither predict nor transform "
                       "(fit-only estimators such as DBSCAN or NearestNeighbors cannot serve predictions)")


def walk(root, limits: Limits, allowlist) -> list:
    """Returns the distinct non-leaf objects; raises Rejected on the first violation.
    Plain leaves (numbers, strings, numpy scalars) are checked but neither counted nor memoised:
    there can be no more of them than the stream had bytes."""
    edges: dict[int, list] = {}
    keep = [root]  # ids stay valid while their objects are alive
    queue = deque([(root, 0)])
    seen = {id(root)}
    while queue:
        obj, depth = queue.popleft()
        if depth > limits.max_graph_depth:
            raise over_limit(f"object graph is deeper than {limits.max_graph_depth} levels")
        kids = edges[id(obj)] = children(obj, allowlist)
        for child in kids:
            if type(child) in LEAF_TYPES or is_numpy_scalar(child) or id(child) in seen:
                continue
            seen.add(id(child))
            keep.append(child)
            if len(keep) > limits.max_graph_nodes:
                raise over_limit(f"object graph has more than {limits.max_graph_nodes} objects")
            queue.append((child, depth + 1))
    logical_size(root, edges, limits.max_graph_nodes)
    return keep


def children(obj, allowlist) -> list:
    """Validate one object and return what it refers to."""
    cls = type(obj)
    if cls in LEAF_TYPES or is_numpy_scalar(obj):
        return []
    entry = allowlist.entry_of(obj)
    if entry is not None:  # an allowlisted class, function or ufunc held as a value
        if entry.as_value != "anywhere":
            raise unsafe(f"'{entry.qualified}' may not be stored in a model"
                         + ("" if entry.as_value == "never" else f" except as {entry.as_value}"))
        return []
    if cls in CONTAINERS:
        return list(obj)
    if cls is dict:
        return [*obj.keys(), *obj.values()]
    if cls is np.ndarray:
        return _array_children(obj, allowlist)
    if isinstance(obj, np.dtype):
        ng.check_dtype(obj, "numpy dtype")
        return []
    if cls is slice:
        return [obj.start, obj.stop, obj.step]
    if isinstance(obj, CALLABLE_TYPES):
        raise unsafe(f"callable {describe(obj)} is not an allowlisted function or class")
    if allowlist.is_derived_type(cls):
        return []
    return _instance_children(obj, cls, allowlist)


def _array_children(array, allowlist) -> list:
    ng.check_dtype(array.dtype, "numpy array")
    if not array.dtype.hasobject:
        return []
    elements = list(array.flat)
    for element in elements:
        check_element(element, allowlist, "object array element")
    return elements


def _instance_children(obj, cls, allowlist) -> list:
    if not allowlist.is_instance_type(cls) or allowlist.check_of_type(cls) == "array_wrapper":
        raise unsafe(f"object of type {describe(cls)} is not allowed in a model")
    found = []
    if isinstance(obj, np.ndarray):  # numpy.ma.MaskedArray: its data, then its attributes
        found.extend(_array_children(obj.view(np.ndarray), allowlist))
    if isinstance(obj, functools.partial):
        found.extend([obj.func, obj.args, obj.keywords])
    if isinstance(obj, dict):  # allowlisted dict subclasses (sklearn Bunch)
        if any(callable(v) for v in dict.values(obj)):
            # a Bunch answers attribute lookups with its items: Bunch(predict=f) impersonates an
            # estimator inside a meta-estimator and runs f at predict time
            raise unsafe(f"{describe(cls)} may not hold callables (its items are attributes)")
        found.extend([*dict.keys(obj), *dict.values(obj)])
    for base in CONTAINERS:  # allowlisted tuple subclasses (namedtuples such as _ImputerTriplet)
        if isinstance(obj, base):
            found.extend(base.__iter__(obj))
    found.extend(_c_state(obj, allowlist.check_of_type(cls)))
    attributes = getattr(obj, "__dict__", None) if not isinstance(obj, np.ndarray) else vars(obj)
    if attributes is not None:
        if type(attributes) is not dict:
            raise unsafe(f"{describe(cls)} has an unexpected attribute namespace")
        for key, value in attributes.items():
            check_attribute_name(cls, key, describe(cls))
            if not _placed_as_reviewed(allowlist, cls, key, value):
                found.append(value)
    if attributes is not None and isinstance(obj, BaseEstimator):
        _feature_count(obj, attributes)
    STRUCTURAL.get(allowlist.check_of_type(cls), _no_check)(obj)
    if cls.__module__ == "sklearn.preprocessing._function_transformer" and cls.__qualname__ == "FunctionTransformer":
        _callable_arguments(obj, ("kw_args", "inv_kw_args"), allowlist)
    return found


def _c_state(obj, check) -> list:
    """Arrays that Cython classes without a __dict__ keep (KD/Ball trees, distance metrics): walked,
    checked and frozen like every other array of the model."""
    if check == "binary_tree":
        state = obj.__getstate__()
        return [*state[:4], state[11], state[12]]
    if check == "dist_metric":
        return list(obj.__getstate__()[1:])
    return []


def _placed_as_reviewed(allowlist, cls, key: str, value) -> bool:
    """True for an allowlisted object reviewed for exactly this attribute (e.g. BisectingKMeans'
    fit routine): accepted here, refused anywhere else by children()."""
    entry = allowlist.entry_of(value) if isinstance(value, CALLABLE_TYPES) else None
    return entry is not None and entry.as_value == f"{cls.__module__}.{cls.__qualname__}.{key}"


MAX_FEATURES = 1 << 20


def _feature_count(estimator, attributes: dict) -> None:
    """n_features_in_ sizes the probe row and every input check: a small non-negative integer,
    equal to the number of feature names when the estimator has them."""
    count = attributes.get("n_features_in_")
    if count is not None and not (type(count) is int or (isinstance(count, np.integer) and is_numpy_scalar(count))) \
            or count is not None and not 0 <= count <= MAX_FEATURES:
        raise unsafe(f"inconsistent model state: {describe(type(estimator))}.n_features_in_ must be an integer "
                     f"in [0, {MAX_FEATURES}]")
    names = attributes.get("feature_names_in_")
    if names is not None and not (type(names) is np.ndarray and names.ndim == 1
                                  and (count is None or names.shape[0] == count)):
        raise unsafe(f"inconsistent model state: {describe(type(estimator))}.feature_names_in_ does not "
                     "match n_features_in_")


def _callable_arguments(obj, names, allowlist) -> None:
    """Keyword arguments a model stores for its callables are plain values (numbers, strings,
    dtypes, allowlisted types): an array there would be handed to the callable at predict time,
    e.g. as the `out=` of a ufunc or numpy.mean that rewrites an index array compiled code trusts."""
    for name in names:
        kwargs = vars(obj).get(name)
        if kwargs is None:
            continue
        if type(kwargs) is not dict or not all(type(k) is str and _plain_argument(v, allowlist, 0)
                                               for k, v in kwargs.items()):
            raise unsafe(f"{describe(type(obj))}.{name} may only hold plain keyword arguments")


def _plain_argument(value, allowlist, depth: int) -> bool:
    if type(value) in LEAF_TYPES or is_numpy_scalar(value) or isinstance(value, np.dtype):
        return True
    if type(value) in (tuple, list) and depth < 4:
        return all(_plain_argument(v, allowlist, depth + 1) for v in value)
    entry = allowlist.entry_of(value)
    return entry is not None and entry.kind == "class" and entry.module.startswith("numpy") \
        and isinstance(value, type) and not issubclass(value, np.ndarray)


def _no_check(obj) -> None:
    return None


def _fitted(*attributes):
    """Run a structural check only on fitted estimators (an unfitted one fails its probe later)."""
    def wrap(check):
        def run(obj):
            if all(attribute in vars(obj) for attribute in attributes):
                check(obj)
        return run
    return wrap


@_fitted("tree_", "n_features_in_")
def _decision_tree(estimator) -> None:
    if estimator.tree_.n_features != estimator.n_features_in_:
        raise unsafe("inconsistent model state: tree feature count differs from the estimator's")


@_fitted("_tree", "n_features_in_")
def _neighbors(estimator) -> None:
    tree = estimator._tree
    if tree is not None and tree.data.shape[1] != estimator.n_features_in_:
        raise unsafe("inconsistent model state: neighbours index width differs from n_features_in_")


STRUCTURAL = {
    "hgb": _fitted("_predictors", "_bin_mapper", "n_features_in_")(structure.check_hgb),
    "libsvm": _fitted("support_vectors_", "_n_support", "n_features_in_")(structure.check_libsvm),
    "cluster_centers": _fitted("cluster_centers_", "n_features_in_")(
        lambda e: structure.check_centers(e, "cluster_centers_")),
    "birch": _fitted("subcluster_centers_", "n_features_in_")(
        lambda e: structure.check_centers(e, "subcluster_centers_")),
    "bisecting": _fitted("_bisecting_tree", "n_features_in_")(structure.check_bisecting),
    "decision_tree": _decision_tree,
    "ensemble": _fitted("estimators_", "n_features_in_")(structure.check_tree_ensemble),
    "neighbors": _neighbors,
    "sparse": structure.check_sparse,
    "sklearn_tree": structure.check_built_tree,
    "binary_tree": structure.check_built_binary_tree,
    "bit_generator": structure.check_built_bit_generator,
    "seed_sequence": structure.check_built_seed_sequence,
    "random_state": structure.check_built_random_state,
    "generator": structure.check_built_generator,
    "bspline": structure.check_bspline,
}
STRUCTURAL_CHECKS = frozenset(STRUCTURAL)


def logical_size(root, edges: dict[int, list], cap: int) -> None:
    """Bound what a recursive, unmemoised walk of the graph would visit: shared sub-containers and
    shared sub-estimators (a FeatureUnion or Pipeline step used twice per level calls it 2^depth
    times at predict time) count every time they are referenced. Iterative post-order over the
    graph walk() recorded; an edge back into the path counts 1."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        obj, done = stack.pop()
        key = id(obj)
        kids = edges.get(key, ())
        if done:
            on_path.discard(key)
            total = 1 + sum(1 if id(k) in on_path else size.get(id(k), 1) for k in kids)
            if total > cap:
                raise over_limit(f"nested containers and shared references expand to more than {cap} objects when walked")
            size[key] = total
            continue
        if key in size or key in on_path:
            continue
        on_path.add(key)
        stack.append((obj, True))
        stack.extend((k, False) for k in kids if id(k) not in size and id(k) not in on_path)
