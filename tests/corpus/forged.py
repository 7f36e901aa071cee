"""Hostile files that use only allowlisted globals but forge their arguments or state: raw C state
that compiled code trusts (trees, KD/Ball trees, bit generators), helpers handed the wrong type,
inconsistent arrays and dtypes. Written with the real pickler through Forge, so every global and
array is encoded exactly as numpy/sklearn would encode it."""

from __future__ import annotations

import functools
import pickle
import warnings

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn import cluster, datasets, ensemble, svm, tree
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import _dist_metrics
from sklearn.neighbors import KDTree, _kd_tree
from sklearn.tree._tree import Tree
from sklearn.pipeline import Pipeline

from tests.corpus.malicious import Malicious


class Forge:
    """Pickles as whatever (callable, args[, state]) it is given."""

    def __init__(self, *reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


def _dumps(obj) -> bytes:
    return pickle.dumps(obj, protocol=4)


def _fitted_tree():
    X, y = datasets.load_iris(return_X_y=True)
    return tree.DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)


def tree_states() -> list[Malicious]:
    model = _fitted_tree()
    _cls, args, state = model.tree_.__reduce__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10 ** 6
    cycle = state["nodes"].copy()
    cycle["right_child"][0] = 0
    bad_feature = state["nodes"].copy()
    bad_feature["feature"][0] = 99
    return [
        Malicious("tree_node_count_mismatch", 9, _dumps(Forge(Tree, args, {**state, "node_count": 10 ** 6})),
                  "unsafe_model", "node_count"),
        Malicious("tree_child_out_of_range", 9, _dumps(Forge(Tree, args, {**state, "nodes": nodes})),
                  "unsafe_model", "child index"),
        Malicious("tree_cycle", 9, _dumps(Forge(Tree, args, {**state, "nodes": cycle})), "unsafe_model",
                  "child index"),
        Malicious("tree_feature_out_of_range", 9, _dumps(Forge(Tree, args, {**state, "nodes": bad_feature})),
                  "unsafe_model", "feature index"),
        Malicious("tree_n_classes_shorter_than_outputs", 9,
                  _dumps(Forge(Tree, (4, np.array([3], dtype=np.intp), 50), state)), "unsafe_model", "n_classes"),
    ]


def binary_tree_states() -> list[Malicious]:
    X, _ = datasets.load_iris(return_X_y=True)
    state = list(KDTree(X).__getstate__())
    state[1] = state[1].copy()
    state[1][0] = 10 ** 9
    nodes = state[2].copy()
    nodes["idx_end"][0] = 10 ** 9
    good = list(KDTree(X).__getstate__())
    return [
        Malicious("kdtree_index_out_of_range", 9, _dumps(Forge(_kd_tree.newObj, (KDTree,), tuple(state))),
                  "unsafe_model", "index out of range"),
        Malicious("kdtree_node_range", 9, _dumps(Forge(_kd_tree.newObj, (KDTree,), tuple([*good[:2], nodes, *good[3:]]))),
                  "unsafe_model", "node range"),
        Malicious("newobj_wrong_type", 9, _dumps(Forge(_kd_tree.newObj, (Pipeline,))), "unsafe_model", "may not build"),
        Malicious("dist_metric_newobj_wrong_type", 9, _dumps(Forge(_dist_metrics.newObj, (np.ndarray,))),
                  "unsafe_model", "may not build"),
    ]


def random_states() -> list[Malicious]:
    from numpy.random import _pickle as rp

    generator = np.random.MT19937(0)
    state = generator.state
    state["state"]["pos"] = 10 ** 6
    seed = np.random.SeedSequence(0)
    seed_state = seed.__reduce__()[2]
    return [
        Malicious("mt19937_position_out_of_range", 9, _dumps(Forge(rp.__bit_generator_ctor, (np.random.MT19937,),
                                                                   (state, None))), "unsafe_model", "MT19937 position"),
        Malicious("bit_generator_ctor_other_class", 9, _dumps(Forge(rp.__bit_generator_ctor, (Pipeline,))),
                  "unsafe_model", "may not be handed"),
        Malicious("randomstate_ctor_other_callable", 9,
                  _dumps(Forge(rp.__randomstate_ctor, (np.random.MT19937(0), np.mean))), "unsafe_model", "ctor"),
        Malicious("seed_sequence_pool_mismatch", 9, _dumps(Forge(
            np.random.bit_generator.__pyx_unpickle_SeedSequence, (np.random.SeedSequence, 65708578, None),
            (seed_state[0], 0, seed_state[2], 4096, ()))), "unsafe_model", "pool"),
        Malicious("pyx_unpickle_other_type", 9, _dumps(Forge(
            np.random.bit_generator.__pyx_unpickle_SeedSequence, (Pipeline, 65708578, None))),
                  "unsafe_model", "may not build"),
    ]


def numpy_states() -> list[Malicious]:
    from numpy._core import multiarray, numeric

    f8 = np.dtype("f8")
    fn = np.empty(1, dtype=object)
    fn[0] = np.mean
    return [
        Malicious("dtype_object_field", 9, _dumps(np.dtype([("a", "O"), ("b", "f8")])), "unsafe_model", "object"),
        Malicious("dtype_forged_flags", 9, _dumps(Forge(np.dtype, ("f8", False, True),
                                                        (3, "<", None, None, None, -1, -1, 63))), "unsafe_model",
                  "dtype"),
        Malicious("dtype_field_outside_item", 9, _dumps(Forge(np.dtype, ("V16", False, True), (
            3, "|", None, ("a",), {"a": (f8, 100)}, 16, 1, 16))), "unsafe_model", "outside"),
        Malicious("frombuffer_size_mismatch", 9, _dumps(Forge(numeric._frombuffer, (b"abc", f8, (10,), "C"))),
                  "unsafe_model", "_frombuffer"),
        Malicious("scalar_wrong_length", 9, _dumps(Forge(multiarray.scalar, (f8, b"abc"))), "unsafe_model", "scalar"),
        Malicious("array_payload_short", 9, _dumps(Forge(multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                                                         (1, (1000,), f8, False, b"short"))), "unsafe_model",
                  "raw data"),
        Malicious("object_array_function_element", 11, _dumps(fn), "unsafe_model", "not allowed"),
        Malicious("reconstruct_other_subtype", 9, _dumps(Forge(multiarray._reconstruct, (np.matrix, (0,), b"b"))),
                  "unsafe_model", "numpy.matrix"),
    ]


def estimator_states() -> list[Malicious]:
    X, y = datasets.load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = svm.SVC().fit(X, y)
        kmeans = cluster.KMeans(3, n_init=1, random_state=0).fit(X)
        hgb = ensemble.HistGradientBoostingClassifier(max_iter=2).fit(X, y)
        model = LogisticRegression().fit(X, y)
    svc._n_support = np.array([1000, 1, 1], dtype=np.int32)
    kmeans.cluster_centers_ = kmeans.cluster_centers_[:, :2].copy()
    predictor = hgb._predictors[0][0]
    predictor.nodes["feature_idx"][0] = 40
    matrix = sp.csr_matrix(np.eye(3))
    matrix.indices = matrix.indices.copy()
    matrix.indices[0] = 50
    model.classes_ = matrix
    return [
        Malicious("libsvm_counts", 9, _dumps(svc), "unsafe_model", "libsvm"),
        Malicious("kmeans_center_width", 9, _dumps(kmeans), "unsafe_model", "cluster_centers_"),
        Malicious("hgb_feature_out_of_range", 9, _dumps(hgb), "unsafe_model", "feature index"),
        Malicious("csr_index_out_of_range", 9, joblib_bytes(model), "unsafe_model", "sparse"),
        Malicious("partial_state_swaps_function", 10, _dumps(Forge(functools.partial, (np.mean,))), "unsafe_model",
                  "functools.partial"),
    ]


def predict_time_states() -> list[Malicious]:
    """Models whose load-time state is consistent but that misbehave once predict runs."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import FeatureUnion
    from sklearn.preprocessing import FunctionTransformer

    X, y = datasets.load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # numpy.mean(predictions, axis=0, dtype=int64, out=<the KD tree's index array>) after each
        # predict: the next query reads the training data at an index the model chose
        rewrite = TransformedTargetRegressor(regressor=KNeighborsRegressor(n_neighbors=1, algorithm="kd_tree"),
                                             transformer=FunctionTransformer(check_inverse=False))
        rewrite.fit(X[:1, :3], np.array([1e15]))
    rewrite.transformer_.inverse_func = np.mean
    rewrite.transformer_.inv_kw_args = {"axis": 0, "dtype": np.int64, "out": rewrite.regressor_._tree.get_arrays()[1]}
    union = FunctionTransformer().fit(X[:, :1])
    for _ in range(40):  # 40 objects on disk, 2**40 transform calls at predict time
        union = FeatureUnion([("a", union), ("b", union)])
    from sklearn.ensemble import VotingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.utils._bunch import Bunch

    voting = VotingRegressor([("a", LinearRegression()), ("b", Ridge())]).fit(X, y)
    voting.estimators_[1] = Bunch(predict=np.mean)  # attribute lookups answer with items: a fake estimator
    lying = LogisticRegression().fit(X, y)
    lying.n_features_in_ = 10 ** 12  # the probe row would have 10**12 columns
    return [
        Malicious("ufunc_out_rewrites_kdtree_index", 10, _dumps(rewrite), "unsafe_model", "inv_kw_args"),
        Malicious("shared_estimator_blowup", 12, _dumps(union), "resource_limit", "shared references"),
        Malicious("n_features_in_lie", 9, _dumps(lying), "unsafe_model", "n_features_in_"),
        Malicious("bunch_impersonates_estimator", 10, _dumps(voting), "unsafe_model", "Bunch may not hold callables"),
    ]


def joblib_bytes(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def forged_files() -> list[Malicious]:
    return [*tree_states(), *binary_tree_states(), *random_states(), *numpy_states(), *estimator_states(),
            *predict_time_states()]
