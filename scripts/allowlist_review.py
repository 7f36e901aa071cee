"""The hand review behind mlplatform/inference/allowlist.json, kept as data next to the script
that enumerates the entries (scripts/make_allowlist.py). Every entry the enumeration sees gets a
check (or none) and a review note from here; an entry this file does not cover by a rule below
stops the script, so a new library version cannot slip entries in unreviewed."""

from __future__ import annotations

# Seen by the enumeration (or a known gadget) but never admitted, with the reason shown in refusals.
EXCLUDE_RULES = {
    ("builtins", "getattr"): "fetches any attribute by name; with any allowlisted Python function "
                             "it reaches __globals__ and from there every module",
    ("numpy", "vectorize"): "wraps an arbitrary callable and calls it on every element",
    ("numpy._core", "_ufunc_reconstruct"): "string-to-object resolver (__import__ + getattr of any "
                                          "name); numpy 2 pickles ufuncs by name, so it is not needed",
    ("numpy.core", "_ufunc_reconstruct"): "numpy 1.x path of the same string-to-object resolver",
    ("numpy.core.multiarray", "_reconstruct"): "numpy 1.x alias path (numpy.core is a deprecated "
                                               "shim resolving names through __getattr__); not admitted",
    ("numpy.core.multiarray", "scalar"): "numpy 1.x alias path; not admitted",
    ("numpy.core.numeric", "_frombuffer"): "numpy 1.x alias path; not admitted",
    ("joblib.numpy_pickle", "NDArrayWrapper"): "legacy joblib (< 0.10) wrapper that reads arrays "
                                               "from other files on disk",
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"): "legacy joblib wrapper that reads other files",
    ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"): "legacy joblib wrapper that reads other files",
}
SCIPY_STATS_WHY = ("scipy.stats distribution: its __setstate__ rebuilds methods with exec() of source "
                   "generated from pickled strings (code execution); refuse the search object and "
                   "ask for best_estimator_")

# (module, name) -> (check, review note) for entries that are not plain estimator classes.
SPECIAL = {
    ("builtins", "slice"): (None, "REDUCE with plain int/None arguments only (ColumnTransformer column slices)."),
    ("functools", "partial"): ("partial", "Calls what it wraps: REDUCE and BUILD may only wrap the reviewed "
                               "targets (sklearn.utils.validation.check_array, used by HistGradientBoosting's "
                               "categorical preprocessing); keyword names checked."),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): ("array_wrapper", "BUILD state validated (subclass exactly "
                                                   "ndarray, shape, order, dtype, alignment); bytes charged before "
                                                   "reading through a fresh wrapper; object arrays read by a nested "
                                                   "SafeUnpickler; never survives a load."),
    ("numpy", "dtype"): ("numpy_dtype", "REDUCE only with a short type code; BUILD state checked and the "
                         "result must equal numpy's own construction (flags, offsets, sizes); no object fields."),
    ("numpy", "ndarray"): ("ndarray", "Value only (argument of _reconstruct); array BUILD checks shape, dtype, "
                           "payload size and object elements, charged to the array budget."),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy_reconstruct", "Subtype must be ndarray; shape and size "
                                                 "charged before allocation."),
    ("numpy._core.multiarray", "scalar"): ("numpy_scalar", "Non-object dtype; raw bytes length must equal itemsize."),
    ("numpy._core.numeric", "_frombuffer"): ("numpy_frombuffer", "Protocol-5 arrays: buffer length must equal "
                                             "shape x itemsize; no object dtype; charged."),
    ("numpy.ma", "MaskedArray"): ("masked_array", "Search objects' cv_results_; BUILD checks data, mask and "
                                  "fill value like an array; charged."),
    ("numpy.ma.core", "_mareconstruct"): ("masked_reconstruct", "Subtype MaskedArray over ndarray only; shape "
                                          "charged before allocation."),
    ("numpy.random._pickle", "__bit_generator_ctor"): ("random_ctor", "Instantiates the class it is handed: "
                                                       "only the reviewed bit generator classes."),
    ("numpy.random._pickle", "__randomstate_ctor"): ("random_ctor", "Calls its ctor argument: only a reviewed bit "
                                                     "generator instance and numpy's own ctor."),
    ("numpy.random._pickle", "__generator_ctor"): ("random_ctor", "Calls its ctor argument: only a reviewed bit "
                                                   "generator instance and numpy's own ctor."),
    ("numpy.random._mt19937", "MT19937"): ("bit_generator", "State copied into C: key must be 624 uint32 words "
                                           "and pos in [0, 624] (numpy does not check pos)."),
    ("numpy.random._pcg64", "PCG64"): ("bit_generator", "State integers range-checked before __setstate__."),
    ("numpy.random.bit_generator", "SeedSequence"): ("seed_sequence", "C state: pool must be uint32 of pool_size "
                                                     "entries (generate_state indexes it by pool_size)."),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): ("cython_unpickle", "Type argument must be "
                                                                    "exactly SeedSequence; state comes via BUILD."),
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"): ("cython_unpickle", "Type argument must be "
                                                                      "exactly CyHalfMultinomialLoss; empty state."),
    ("sklearn.metrics._dist_metrics", "newObj"): ("new_obj", "obj.__new__(obj): only the reviewed distance "
                                                  "metric classes (never PyFuncDistance)."),
    ("sklearn.neighbors._kd_tree", "newObj"): ("new_obj", "obj.__new__(obj): only KDTree."),
    ("sklearn.neighbors._ball_tree", "newObj"): ("new_obj", "obj.__new__(obj): only BallTree."),
    ("sklearn.neighbors._kd_tree", "KDTree"): ("binary_tree", "C memoryviews: indices within data rows, node "
                                               "ranges, children within n_nodes, bounds shape, metric type."),
    ("sklearn.neighbors._ball_tree", "BallTree"): ("binary_tree", "As KDTree."),
    ("sklearn.tree._tree", "Tree"): ("sklearn_tree", "REDUCE args checked (n_classes length = n_outputs, "
                                     "__cinit__ copies that many); node_count must equal len(nodes); children "
                                     "after parents and in range, features < n_features."),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"): (
        "hgb_predictor", "Node children/feature/bitset indices checked by its estimator's hgb check."),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingClassifier"): (
        "hgb", "Predictor nodes checked against n_features_in_; known categories within the 256-bit bitsets."),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor"): (
        "hgb", "As HistGradientBoostingClassifier."),
    ("scipy.sparse._csr", "csr_matrix"): ("sparse", "NEWOBJ + dict state; check_format(full_check=True) after load "
                                          "(indices, indptr, shapes)."),
    ("scipy.interpolate._bsplines", "BSpline"): ("bspline", "Knots/coefficients/degree consistency checked "
                                                 "(compiled evaluation indexes c by knot span)."),
    ("scipy._lib.array_api_compat.numpy._aliases", "asarray"): (None, "Value only: BSpline's array namespace "
                                                                "function (np.asarray wrapper)."),
    ("sklearn.utils.validation", "check_array"): (None, "Value only: target of the reviewed functools.partial."),
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"): (None, "Value only, and only as BisectingKMeans."
                                                          "_kmeans_single (its fit routine, never called "
                                                          "at predict; elsewhere it would be a memory gadget)."),
    ("sklearn._loss._loss", "CyHalfMultinomialLoss"): (None, "Cython loss without state, created only through "
                                                        "its reviewed __pyx_unpickle helper."),
    ("sklearn.utils._bunch", "Bunch"): (None, "dict subclass (named_estimators_): items set with dict.__setitem__, "
                                        "its __setstate__ is a no-op."),
}

# Where an admitted object may sit in a loaded model (default: anywhere). Construction helpers
# never outlive the load; a few objects are tied to the one attribute they were reviewed for.
VALUE_NEVER_CHECKS = {"numpy_reconstruct", "numpy_scalar", "numpy_frombuffer", "masked_reconstruct",
                      "random_ctor", "cython_unpickle", "new_obj", "sklearn_tree", "array_wrapper"}
AS_VALUE = {
    # Cython-backed fit routine; as a parameter (e.g. FunctionTransformer.func with kw_args) it would
    # run with centres of the wrong width and write out of bounds.
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"):
        "sklearn.cluster._bisect_k_means.BisectingKMeans._kmeans_single",
}

# Rules for the rest, by module prefix / class properties (see make_allowlist.review()).
CHECK_BY_CLASS = {
    "libsvm": {"SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM"},
    "cluster_centers": {"KMeans", "MiniBatchKMeans"},
    "bisecting": {"BisectingKMeans"},
    "birch": {"Birch"},
    "decision_tree": {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
                      "ExtraTreeRegressor"},
    "ensemble": {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
                 "RandomTreesEmbedding", "IsolationForest", "BaggingClassifier", "BaggingRegressor",
                 "GradientBoostingClassifier", "GradientBoostingRegressor"},
    "neighbors": {"KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier",
                  "RadiusNeighborsRegressor", "NearestNeighbors", "KNeighborsTransformer",
                  "LocalOutlierFactor"},
}
CHECK_NOTES = {
    "libsvm": "libsvm arrays consistent (support vector counts, coefficient shapes, width = n_features_in_).",
    "cluster_centers": "cluster_centers_ width must equal n_features_in_ (Cython assignment loops).",
    "bisecting": "node tree acyclic, every centre of width n_features_in_.",
    "birch": "subcluster_centers_ width must equal n_features_in_.",
    "decision_tree": "tree_.n_features must equal n_features_in_ (Tree itself checked at BUILD).",
    "neighbors": "index width must equal n_features_in_ (KD/Ball tree checked at BUILD).",
    "ensemble": "every tree as wide as its input (trees predict with check_input=False) and feature subsets "
                "in range; gradient boosting stages shaped (n_estimators, n_trees_per_iteration_).",
}
ESTIMATOR_NOTE = ("scikit-learn estimator: NEWOBJ without arguments, dict state through BaseEstimator."
                  "__setstate__ (version mismatch is an error); state keys checked; parameter callables "
                  "must be allowlisted.")
HELPER_CLASS_NOTE = ("scikit-learn helper class: created without arguments (or a namedtuple's fields), "
                     "dict state with checked keys; no code runs from its state.")
CYTHON_PLAIN_NOTE = "Cython class rebuilt by REDUCE with plain numeric arguments only (typed __cinit__)."
DIST_METRIC_NOTE = "Distance metric: state (p, vec, mat) must be float/float64 arrays; Minkowski weights sized."
FUNCTION_NOTE = "Value only (a parameter such as score_func/func/pooling_func); never called while loading."
NUMPY_VALUE_NOTE = "numpy scalar type or ufunc used as a parameter value; never called while loading."
