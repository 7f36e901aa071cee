"""Post-load checks on object graphs built in-process (what a hostile file could assemble from
allowlisted pieces): types, callables as values, attribute shadowing, graph size/depth/logical
size, structural checks, and the top-level estimator rule."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn import cluster, datasets, ensemble, neighbors, svm, tree
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from mlplatform.inference import checks
from mlplatform.inference.allowlist import get_allowlist
from mlplatform.inference.limits import Limits, Rejected

LIMITS = Limits(max_decompressed_bytes=1 << 20, max_array_bytes=1 << 20, max_graph_nodes=10_000, max_graph_depth=50)


@pytest.fixture(scope="module")
def iris():
    return datasets.load_iris(return_X_y=True)


def fitted(estimator, iris):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(*iris)


def refused(obj, limits: Limits = LIMITS) -> Rejected:
    with pytest.raises(Rejected) as caught:
        checks.check_model(obj, limits, get_allowlist())
    return caught.value


def test_a_plain_fitted_model_passes(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    checks.check_model(model, LIMITS, get_allowlist())
    assert len(checks.walk(model, LIMITS, get_allowlist())) >= 4  # the model and its fitted arrays


@pytest.mark.parametrize("value", [os.system, print, lambda x: x, np.load, np.vectorize(abs)])
def test_callables_that_are_not_allowlisted_are_refused(iris, value):
    model = fitted(svm.SVC(), iris)
    model.kernel = value
    assert refused(model).code == "unsafe_model"


def test_allowlisted_callables_as_parameters_pass(iris):
    model = FunctionTransformer(np.log1p).fit(iris[0])
    checks.check_model(model, LIMITS, get_allowlist())


def test_construction_helpers_may_not_be_stored(iris):
    from numpy._core.multiarray import _reconstruct
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    for helper in (_reconstruct, _kmeans_single_lloyd):
        model = FunctionTransformer(helper).fit(iris[0])
        reason = refused(model).reason
        assert "may not be stored" in reason


def test_bisecting_kmeans_keeps_its_reviewed_fit_routine(iris):
    model = fitted(cluster.BisectingKMeans(3, random_state=0), iris)
    checks.check_model(model, LIMITS, get_allowlist())


def test_instance_attributes_may_not_shadow_methods(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    model.__dict__["predict"] = np.mean
    assert "shadow" in refused(model).reason


def test_objects_of_other_types_are_refused(iris):
    import pandas as pd

    model = fitted(LogisticRegression(max_iter=500), iris)
    model.extra_ = pd.DataFrame({"a": [1]})
    assert "not allowed" in refused(model).reason


def test_object_array_elements_follow_the_element_policy(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    model.classes_ = np.array([{"a": 1}], dtype=object)
    assert "element" in refused(model).reason


def test_depth_is_bounded(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    nested: list = []
    for _ in range(LIMITS.max_graph_depth + 5):
        nested = [nested]
    model.notes_ = nested
    rejected = refused(model)
    assert rejected.code == "resource_limit" and "deeper" in rejected.reason


def test_distinct_objects_are_bounded(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    model.notes_ = [[i] for i in range(LIMITS.max_graph_nodes)]
    assert "more than" in refused(model).reason


def test_shared_sublists_are_bounded_by_their_logical_size(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    laugh: list = ["lol"]
    for _ in range(30):
        laugh = [laugh] * 10
    model.notes_ = laugh
    rejected = refused(model)
    assert rejected.code == "resource_limit" and "nested containers" in rejected.reason


def test_cycles_are_walked_once(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    loop: list = []
    loop.append(loop)
    model.notes_ = loop
    checks.check_model(model, LIMITS, get_allowlist())


def test_decision_tree_width_must_match_the_estimator(iris):
    model = fitted(tree.DecisionTreeClassifier(random_state=0), iris)
    model.n_features_in_ = 2
    assert "feature count" in refused(model).reason


def test_libsvm_arrays_must_agree(iris):
    model = fitted(svm.SVC(), iris)
    model._dual_coef_ = model._dual_coef_[:, :3].copy()
    assert "libsvm" in refused(model).reason


def test_neighbours_index_width_must_match(iris):
    model = fitted(neighbors.KNeighborsClassifier(algorithm="kd_tree"), iris)
    model.n_features_in_ = 3
    assert "index width" in refused(model).reason


def test_hist_gradient_boosting_children_must_be_in_range(iris):
    model = fitted(ensemble.HistGradientBoostingClassifier(max_iter=2), iris)
    model._predictors[0][0].nodes["left"][0] = 10_000
    assert "child index" in refused(model).reason


def test_bisecting_tree_must_be_acyclic(iris):
    model = fitted(cluster.BisectingKMeans(3, random_state=0), iris)
    node = model._bisecting_tree
    node.left.left, node.left.right = node, node
    assert "revisits" in refused(model).reason


def test_top_level_must_be_an_estimator_with_predict_or_transform(iris):
    assert refused({"model": 1}).code == "not_an_estimator"
    assert refused(np.arange(3)).code == "not_an_estimator"
    dbscan = fitted(cluster.DBSCAN(), iris)
    rejected = refused(dbscan)
    assert rejected.code == "not_an_estimator" and "neither predict nor transform" in rejected.reason


def test_every_tree_of_an_ensemble_matches_its_input(iris):
    forest = fitted(ensemble.RandomForestClassifier(n_estimators=3, random_state=0), iris)
    forest.n_features_in_ = 2  # the trees would read columns 2 and 3 of a 2-column input
    assert "ensemble tree width" in refused(forest).reason
    bagging = fitted(ensemble.BaggingClassifier(n_estimators=2, max_features=2, random_state=0), iris)
    bagging.estimators_features_[0][0] = 7
    assert "subset" in refused(bagging).reason


def test_gradient_boosting_stages_match_its_outputs(iris):
    X, y = iris
    boosting = fitted(ensemble.GradientBoostingClassifier(n_estimators=3, random_state=0), (X, y == 0))
    boosting.n_trees_per_iteration_ = 3
    assert "gradient boosting" in refused(boosting).reason


def test_model_arrays_are_read_only_after_the_checks(iris):
    """A callable parameter handed a model array (a ufunc's `out=`) cannot rewrite state that
    compiled code trusts; libsvm, which takes writable buffers, gets private copies."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = fitted(KNeighborsClassifier(algorithm="kd_tree"), (iris[0].copy(), iris[1].copy()))
    checks.check_model(knn, LIMITS, get_allowlist())
    assert not any(array.flags.writeable for array in knn._tree.get_arrays())
    assert not knn._fit_X.flags.writeable
    with pytest.raises(ValueError):
        np.mean(iris[0][:, :1], axis=1, dtype=np.intp, out=knn._tree.get_arrays()[1][:150])
    svc = fitted(svm.SVC(), (iris[0].copy(), iris[1].copy()))
    shared = svc._n_support
    checks.check_model(svc, LIMITS, get_allowlist())
    assert svc._n_support is not shared and not shared.flags.writeable
    np.testing.assert_array_equal(svc.predict(iris[0]), svm.SVC().fit(*iris).predict(iris[0]))


def test_callable_keyword_arguments_must_be_plain(iris):
    model = FunctionTransformer(np.mean, kw_args={"axis": 1, "dtype": np.float64}).fit(iris[0])
    checks.check_model(model, LIMITS, get_allowlist())
    model.kw_args = {"axis": 1, "out": np.zeros(150)}
    assert refused(model).code == "unsafe_model"


def test_n_features_in_must_be_a_small_integer(iris):
    model = fitted(LogisticRegression(max_iter=500), iris)
    model.n_features_in_ = 10 ** 9
    assert "n_features_in_" in refused(model).reason
