"""Cheap structural checks for state that compiled code indexes without bounds checks: sklearn
decision trees, KD/Ball trees, HistGradientBoosting predictors, libsvm models, cluster centres,
CSR matrices and B-splines. A forged index would otherwise read or write outside an array at
predict time (a crash at best). Children must come after their parent, so no tree has a cycle."""

from __future__ import annotations

import numpy as np

from mlplatform.inference.limits import unsafe

BINARY_TREE_NODE_FIELDS = ("idx_start", "idx_end", "is_leaf", "radius")
HGB_NODE_FIELDS = ("value", "count", "feature_idx", "num_threshold", "missing_go_to_left", "left",
                   "right", "gain", "depth", "is_leaf", "bin_threshold", "is_categorical", "bitset_idx")


def _require(condition, what: str) -> None:
    if not condition:
        raise unsafe(f"inconsistent model state: {what}")


def _children_ok(left, right, internal) -> bool:
    n = left.shape[0]
    index = np.arange(n)
    return bool(np.all(left[internal] > index[internal]) and np.all(right[internal] > index[internal])
                and np.all(left[internal] < n) and np.all(right[internal] < n))


def check_tree(tree) -> None:
    """sklearn.tree._tree.Tree after __setstate__ (node arrays are views of its C memory)."""
    n = tree.node_count
    _require(n >= 1, "decision tree has no nodes")
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    internal = left != -1
    _require(np.array_equal(internal, right != -1), "decision tree leaf with one child")
    _require(_children_ok(left, right, internal), "decision tree child index out of range")
    features = feature[internal]
    _require(features.size == 0 or (features.min() >= 0 and features.max() < tree.n_features),
             "decision tree feature index out of range")


def check_binary_tree_state(name: str, state, allowlist) -> None:
    """KDTree/BallTree __getstate__ layout: (data, idx_array, node_data, node_bounds, leaf_size,
    n_levels, n_nodes, n_trims, n_leaves, n_splits, n_calls, dist_metric, sample_weight)."""
    _require(type(state) is tuple and len(state) == 13, f"{name} state layout")
    data, idx, nodes, bounds = state[:4]
    ints = state[4:11]
    _require(all(type(v) is int and v >= 0 for v in ints), f"{name} counters must be integers")
    leaf_size, n_levels, n_nodes = ints[:3]
    for array in (data, idx, nodes, bounds):
        _require(type(array) is np.ndarray and array.flags.c_contiguous, f"{name} arrays")
    _require(data.dtype == np.float64 and data.ndim == 2 and data.shape[0] >= 1, f"{name} data")
    n_samples, n_features = data.shape
    _require(idx.dtype == np.intp and idx.shape == (n_samples,), f"{name} index array")
    _require(idx.min() >= 0 and idx.max() < n_samples, f"{name} index out of range")
    _require(nodes.dtype.names == BINARY_TREE_NODE_FIELDS and nodes.shape == (n_nodes,), f"{name} nodes")
    _require(leaf_size >= 1 and 1 <= n_levels <= 62 and n_nodes == 2 ** n_levels - 1, f"{name} levels")
    start, end = nodes["idx_start"], nodes["idx_end"]
    _require(np.all((start >= 0) & (start <= end) & (end <= n_samples)), f"{name} node range")
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    _require(inner.size == 0 or 2 * inner.max() + 2 < n_nodes, f"{name} node child out of range")
    depth = 2 if name == "KDTree" else 1
    _require(bounds.dtype == np.float64 and bounds.shape == (depth, n_nodes, n_features), f"{name} bounds")
    metric, weight = state[11], state[12]
    _require(allowlist.is_class(type(metric)), f"{name} distance metric type")
    vec = metric.__getstate__()[1]
    _require(type(metric).__name__ != "MinkowskiDistance64" or vec.size in (0, n_features),
             f"{name} Minkowski weights")
    _require(weight is None or (type(weight) is np.ndarray and weight.dtype == np.float64
                                and weight.shape == (n_samples,)), f"{name} sample weight")


def check_hgb(estimator) -> None:
    """HistGradientBoosting predictors against the estimator's feature count and bin mapper."""
    n_features = estimator.n_features_in_
    mapper = estimator._bin_mapper
    categorical = mapper.is_categorical_
    _require(categorical is None or (type(categorical) is np.ndarray and categorical.shape == (n_features,)),
             "bin mapper categorical mask")
    if categorical is not None:
        for f in np.flatnonzero(categorical):
            cats = np.asarray(mapper.bin_thresholds_[f])
            _require(cats.size == 0 or (cats.min() >= 0 and cats.max() <= 255 and np.all(cats == np.floor(cats))),
                     "known categories out of range")
    for per_iteration in estimator._predictors:
        for predictor in per_iteration:
            check_hgb_predictor(predictor, n_features)


def check_hgb_predictor(predictor, n_features: int) -> None:
    nodes = predictor.nodes
    _require(type(nodes) is np.ndarray and nodes.dtype.names == HGB_NODE_FIELDS and nodes.ndim == 1
             and nodes.shape[0] >= 1, "gradient boosting predictor nodes")
    internal = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    _require(_children_ok(left, right, internal), "gradient boosting child index out of range")
    features = nodes["feature_idx"][internal]
    _require(features.size == 0 or (features.min() >= 0 and features.max() < n_features),
             "gradient boosting feature index out of range")
    raw, binned = predictor.raw_left_cat_bitsets, predictor.binned_left_cat_bitsets
    for bitsets in (raw, binned):
        _require(type(bitsets) is np.ndarray and bitsets.dtype == np.uint32 and bitsets.ndim == 2
                 and bitsets.shape[1] == 8, "gradient boosting category bitsets")
    categorical = internal & (nodes["is_categorical"] != 0)
    used = nodes["bitset_idx"][categorical]
    _require(used.size == 0 or used.max() < min(raw.shape[0], binned.shape[0]), "category bitset index")


def check_libsvm(estimator) -> None:
    sv = estimator.support_vectors_
    n_sv = sv.shape[0]
    n_support = estimator._n_support
    _require(type(n_support) is np.ndarray and n_support.dtype == np.int32 and n_support.ndim == 1,
             "libsvm class counts")
    classifier = estimator._impl in ("c_svc", "nu_svc")
    n_class = n_support.shape[0] if classifier else 2
    _require(not classifier or int(n_support.sum()) == n_sv, "libsvm support vector counts")
    _require(classifier or np.all(n_support <= n_sv), "libsvm support vector counts")
    pairs = n_class * (n_class - 1) // 2
    dual, intercept = estimator._dual_coef_, estimator._intercept_
    _require(dual.shape == (max(n_class - 1, 1), n_sv) and intercept.shape == (pairs,),
             "libsvm coefficient shapes")
    _require(estimator._probA.shape in ((0,), (pairs,)) and estimator._probB.shape == estimator._probA.shape,
             "libsvm probability shapes")
    _require(estimator.support_.shape == (n_sv,), "libsvm support indices")
    if estimator.kernel != "precomputed":
        _require(sv.ndim == 2 and sv.shape[1] == estimator.n_features_in_, "libsvm support vector width")


def check_centers(estimator, attribute: str) -> None:
    centers = getattr(estimator, attribute)
    _require(type(centers) is np.ndarray and centers.ndim == 2
             and centers.shape[1] == estimator.n_features_in_, f"{attribute} width")


def check_sparse(matrix) -> None:
    try:
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise unsafe(f"inconsistent sparse matrix: {exc}") from None


def check_bspline(spline) -> None:
    t, c, k = spline.t, spline.c, spline.k
    _require(type(k) is int and 0 <= k <= 50, "B-spline degree")
    _require(type(t) is np.ndarray and t.ndim == 1 and t.dtype == np.float64 and t.shape[0] >= 2 * k + 2,
             "B-spline knots")
    _require(type(c) is np.ndarray and c.ndim >= 1 and c.shape[0] >= t.shape[0] - k - 1, "B-spline coefficients")
    _require(type(spline.axis) is int and 0 <= spline.axis < c.ndim, "B-spline axis")
    _require(spline.extrapolate in (True, False, "periodic"), "B-spline extrapolation")


def check_bisecting(estimator) -> None:
    """BisectingKMeans predicts by recursing down its node tree, stacking child centres."""
    n_features, seen = estimator.n_features_in_, set()
    pending = [estimator._bisecting_tree]
    while pending:
        node = pending.pop()
        _require(id(node) not in seen and len(seen) < 100_000, "bisecting tree revisits a node")
        seen.add(id(node))
        center = node.center
        _require(type(center) is np.ndarray and center.shape == (n_features,), "bisecting centre width")
        children = [c for c in (node.left, node.right) if c is not None]
        _require(len(children) in (0, 2), "bisecting node with one child")
        pending.extend(children)


def _tree_of(member):
    attributes = getattr(member, "__dict__", None)
    return attributes.get("tree_") if isinstance(attributes, dict) else None


def check_tree_ensemble(estimator) -> None:
    """Forests, bagging, isolation forests and gradient boosting predict with check_input=False
    (or validate X against their first tree only), so every tree must be exactly as wide as the
    input it gets; gradient boosting writes one output column per tree column."""
    n_features = estimator.n_features_in_
    members = estimator.estimators_
    subsets = estimator.__dict__.get("estimators_features_")
    flat = list(members.ravel()) if isinstance(members, np.ndarray) else list(members)
    _require(subsets is None or len(subsets) == len(flat), "ensemble feature subsets")
    for index, member in enumerate(flat):
        tree = _tree_of(member)
        if subsets is not None:
            subset = subsets[index]
            _require(type(subset) is np.ndarray and subset.ndim == 1 and subset.dtype.kind in "iu"
                     and (subset.size == 0 or (subset.min() >= 0 and subset.max() < n_features)),
                     "ensemble feature subset indices")
        if tree is not None:
            width = n_features if subsets is None else subsets[index].shape[0]
            _require(tree.n_features == width and member.n_features_in_ == width, "ensemble tree width")
    if isinstance(members, np.ndarray):  # gradient boosting: (n_estimators, trees per iteration)
        _check_boosting_layout(estimator, members, flat)


def _check_boosting_layout(estimator, members, flat) -> None:
    from sklearn.tree import DecisionTreeRegressor

    per_iteration = estimator.n_trees_per_iteration_
    _require(members.dtype == object and members.ndim == 2 and members.shape[1] == per_iteration
             and all(type(m) is DecisionTreeRegressor for m in flat), "gradient boosting stages")
    if per_iteration > 1:  # the init estimator's probabilities give the output columns
        init = estimator.init_
        classes = getattr(init, "classes_", None) if not isinstance(init, str) else None
        _require(init == "zero" if isinstance(init, str) else classes is not None and len(classes) == per_iteration,
                 "gradient boosting initial predictions")


def _int_in(value, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise unsafe(f"{what} must be an integer in [{low}, {high}]")
    return value


def _mt19937_state(state: dict) -> None:
    inner = state.get("state")
    if type(inner) is not dict or set(inner) != {"key", "pos"}:
        raise unsafe("MT19937 state has an unexpected layout")
    key, pos = inner["key"], inner["pos"]
    if type(key) is not np.ndarray or key.dtype != np.uint32 or key.shape != (624,):
        raise unsafe("MT19937 key must be 624 uint32 words")
    _int_in(pos, 0, 624, "MT19937 position")


def _pcg64_state(state: dict) -> None:
    inner = state.get("state")
    if type(inner) is not dict or set(inner) != {"state", "inc"}:
        raise unsafe("PCG64 state has an unexpected layout")
    for value in inner.values():
        _int_in(value, 0, (1 << 128) - 1, "PCG64 state")
    _int_in(state.get("has_uint32"), 0, 1, "PCG64 has_uint32")
    _int_in(state.get("uinteger"), 0, (1 << 32) - 1, "PCG64 uinteger")


BIT_GENERATOR_STATES = {"MT19937": _mt19937_state, "PCG64": _pcg64_state}


def check_bit_generator_state(state, expected: str) -> None:
    if type(state) is not dict or state.get("bit_generator") != expected:
        raise unsafe(f"{expected} state has an unexpected layout")
    BIT_GENERATOR_STATES[expected](state)


def check_seed_pool(pool, pool_size: int) -> None:
    """SeedSequence.generate_state indexes its pool by pool_size (a C loop)."""
    if type(pool) is not np.ndarray or pool.dtype != np.uint32 or pool.shape != (pool_size,):
        raise unsafe("SeedSequence pool does not match its size")


# Post-load re-checks of C state validated at BUILD (defence in depth: the final objects, whatever
# order the stream built them in).
def check_built_tree(tree) -> None:
    check_tree(tree)


def check_built_binary_tree(tree) -> None:
    from mlplatform.inference.allowlist import get_allowlist

    check_binary_tree_state(type(tree).__name__, tree.__getstate__(), get_allowlist())


def check_built_bit_generator(generator) -> None:
    check_bit_generator_state(generator.state, type(generator).__name__)


def check_built_seed_sequence(sequence) -> None:
    check_seed_pool(np.asarray(sequence.pool), sequence.pool_size)


def check_built_random_state(random_state) -> None:
    check_built_bit_generator(random_state._bit_generator)


def check_built_generator(generator) -> None:
    check_built_bit_generator(generator.bit_generator)
