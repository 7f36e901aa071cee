"""The fitted model families of the benign corpus: (name, data set, factory[, refusal code]).
Kept small (few trees, few iterations) so the whole corpus fits and dumps in seconds."""

from __future__ import annotations

import numpy as np
import scipy.stats
from sklearn import (calibration, cluster, compose, cross_decomposition, decomposition, discriminant_analysis,
                     dummy, ensemble, feature_extraction, feature_selection, gaussian_process, impute,
                     isotonic, kernel_approximation, kernel_ridge, linear_model, manifold, mixture,
                     model_selection, multiclass, multioutput, naive_bayes, neighbors, neural_network,
                     pipeline, preprocessing, random_projection, semi_supervised, svm, tree)
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers IterativeImputer)
from sklearn.gaussian_process import kernels

from tests.corpus import data as d

lm, en, pp = linear_model, ensemble, preprocessing
R = 0  # random_state everywhere: the corpus is the same on every run


def _customers_columns(scale_numeric=True):
    numeric = pipeline.make_pipeline(impute.SimpleImputer(strategy="median"),
                                     *( [pp.StandardScaler()] if scale_numeric else []))
    strings = pipeline.make_pipeline(impute.SimpleImputer(strategy="constant", fill_value="missing"),
                                     pp.OneHotEncoder(handle_unknown="ignore"))
    return compose.ColumnTransformer([
        ("num", numeric, ["age", "income", "visits"]),
        ("city", strings, ["city"]),
        ("plan", pp.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
    ])


def _text(vectorizer, classifier):
    return lambda: pipeline.make_pipeline(vectorizer(), classifier())


def _search_grid():
    return model_selection.GridSearchCV(
        pipeline.make_pipeline(pp.StandardScaler(), lm.LogisticRegression(max_iter=300)),
        {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)


def _search_random(distributions: bool):
    params = ({"C": scipy.stats.loguniform(1e-2, 1e2), "gamma": scipy.stats.uniform(0.01, 1)}
              if distributions else {"C": [0.1, 1.0, 10.0], "gamma": [0.1, 1.0]})
    return model_selection.RandomizedSearchCV(svm.SVC(), params, n_iter=4, cv=3, random_state=R)


class _BestEstimator:
    """Factory marker: fit the search, keep only best_estimator_ (what users should upload)."""

    def __init__(self, factory):
        self.factory = factory

    def finish(self, fitted):
        return fitted.best_estimator_


class _InDict(_BestEstimator):
    """Factory marker: a fitted model inside a dict (not an estimator at the top level)."""

    def finish(self, fitted):
        return {"model": fitted, "note": "wrapped"}


LINEAR = [
    ("logistic_iris", d.iris, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_iris_str_labels", d.iris_str, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_iris_obj_labels", d.iris_obj, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_cancer_liblinear", d.cancer, lambda: lm.LogisticRegression(solver="liblinear")),
    ("logistic_csr", d.iris_csr, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_csr_array", d.iris_csr_array, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_frame", d.iris_frame, lambda: lm.LogisticRegression(max_iter=500)),
    ("logistic_cv", d.iris, lambda: lm.LogisticRegressionCV(cv=3, max_iter=500)),
    ("ridge_classifier", d.wine, lambda: lm.RidgeClassifier()),
    ("ridge_classifier_cv", d.cancer, lambda: lm.RidgeClassifierCV()),
    ("sgd_classifier_log", d.synthetic, lambda: lm.SGDClassifier(loss="log_loss", random_state=R)),
    ("sgd_classifier_hinge_csr", d.iris_csr, lambda: lm.SGDClassifier(random_state=R)),
    ("perceptron", d.iris, lambda: lm.Perceptron(random_state=R)),
    ("linear_regression", d.diabetes, lambda: lm.LinearRegression()),
    ("linear_regression_frame", d.diabetes_frame, lambda: lm.LinearRegression()),
    ("linear_regression_multi", d.multi_target, lambda: lm.LinearRegression()),
    ("ridge", d.diabetes, lambda: lm.Ridge(alpha=0.5)),
    ("ridge_cv", d.diabetes, lambda: lm.RidgeCV()),
    ("lasso", d.diabetes, lambda: lm.Lasso(alpha=0.1)),
    ("lasso_cv", d.diabetes, lambda: lm.LassoCV(cv=3, random_state=R)),
    ("elastic_net", d.diabetes, lambda: lm.ElasticNet(alpha=0.01)),
    ("elastic_net_cv", d.diabetes, lambda: lm.ElasticNetCV(cv=3)),
    ("lars", d.diabetes, lambda: lm.Lars()),
    ("lasso_lars_ic", d.diabetes, lambda: lm.LassoLarsIC()),
    ("omp", d.diabetes, lambda: lm.OrthogonalMatchingPursuit()),
    ("bayesian_ridge", d.diabetes, lambda: lm.BayesianRidge()),
    ("ard", d.diabetes_small, lambda: lm.ARDRegression()),
    ("sgd_regressor", d.diabetes, lambda: lm.SGDRegressor(random_state=R)),
    ("huber", d.diabetes, lambda: lm.HuberRegressor(max_iter=500)),
    ("theil_sen", d.diabetes_small, lambda: lm.TheilSenRegressor(random_state=R, max_subpopulation=200)),
    ("ransac", d.diabetes, lambda: lm.RANSACRegressor(random_state=R)),
    ("quantile", d.diabetes_small, lambda: lm.QuantileRegressor(alpha=0.0)),
    ("poisson", d.diabetes, lambda: lm.PoissonRegressor()),
    ("gamma", d.diabetes, lambda: lm.GammaRegressor()),
    ("tweedie", d.diabetes, lambda: lm.TweedieRegressor(power=1.5)),
    ("multitask_lasso", d.multi_target, lambda: lm.MultiTaskLasso(alpha=0.1)),
]

TREES = [
    ("decision_tree_classifier", d.iris, lambda: tree.DecisionTreeClassifier(random_state=R)),
    ("decision_tree_classifier_str", d.iris_str, lambda: tree.DecisionTreeClassifier(max_depth=3, random_state=R)),
    ("decision_tree_regressor", d.diabetes, lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=R)),
    ("decision_tree_missing", d.synthetic_missing, lambda: tree.DecisionTreeClassifier(random_state=R)),
    ("extra_tree_classifier", d.wine, lambda: tree.ExtraTreeClassifier(random_state=R)),
    ("extra_tree_regressor", d.diabetes, lambda: tree.ExtraTreeRegressor(random_state=R)),
    ("random_forest_classifier", d.iris, lambda: en.RandomForestClassifier(n_estimators=8, random_state=R)),
    ("random_forest_csr", d.iris_csr, lambda: en.RandomForestClassifier(n_estimators=5, random_state=R)),
    ("random_forest_frame", d.iris_frame, lambda: en.RandomForestClassifier(n_estimators=5, random_state=R)),
    ("random_forest_regressor", d.diabetes, lambda: en.RandomForestRegressor(n_estimators=6, max_depth=6, random_state=R)),
    ("random_forest_multilabel", d.multi_label, lambda: en.RandomForestClassifier(n_estimators=4, random_state=R)),
    ("extra_trees_classifier", d.wine, lambda: en.ExtraTreesClassifier(n_estimators=6, random_state=R)),
    ("extra_trees_regressor", d.diabetes, lambda: en.ExtraTreesRegressor(n_estimators=5, max_depth=6, random_state=R)),
    ("bagging_classifier", d.iris, lambda: en.BaggingClassifier(n_estimators=4, random_state=R)),
    ("bagging_regressor", d.diabetes, lambda: en.BaggingRegressor(n_estimators=4, random_state=R)),
    ("adaboost_classifier", d.iris, lambda: en.AdaBoostClassifier(n_estimators=10, random_state=R)),
    ("adaboost_regressor", d.diabetes, lambda: en.AdaBoostRegressor(n_estimators=8, random_state=R)),
    ("gradient_boosting_binary", d.cancer, lambda: en.GradientBoostingClassifier(n_estimators=10, random_state=R)),
    ("gradient_boosting_multiclass", d.iris, lambda: en.GradientBoostingClassifier(n_estimators=8, random_state=R)),
    ("gradient_boosting_init", d.iris, lambda: en.GradientBoostingClassifier(n_estimators=5, init=lm.LogisticRegression(max_iter=300), random_state=R)),
    ("gradient_boosting_regressor", d.diabetes, lambda: en.GradientBoostingRegressor(n_estimators=10, random_state=R)),
    ("gradient_boosting_huber", d.diabetes, lambda: en.GradientBoostingRegressor(loss="huber", n_estimators=6, random_state=R)),
    ("hist_gradient_boosting_classifier", d.iris, lambda: en.HistGradientBoostingClassifier(max_iter=15, random_state=R)),
    ("hist_gradient_boosting_binary_str", d.customers, lambda: pipeline.make_pipeline(_customers_columns(), en.HistGradientBoostingClassifier(max_iter=10, random_state=R))),
    ("hist_gradient_boosting_missing", d.synthetic_missing, lambda: en.HistGradientBoostingClassifier(max_iter=10, random_state=R)),
    ("hist_gradient_boosting_regressor", d.diabetes, lambda: en.HistGradientBoostingRegressor(max_iter=15, random_state=R)),
    ("hist_gradient_boosting_categorical_mask", d.categories, lambda: en.HistGradientBoostingClassifier(max_iter=10, categorical_features=[True, True, False, False, False], random_state=R)),
    ("hist_gradient_boosting_categorical_dtype", d.customers_categorical, lambda: en.HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype", random_state=R)),
    ("hist_gradient_boosting_regressor_categorical", d.customers_categorical_regression, lambda: en.HistGradientBoostingRegressor(max_iter=10, categorical_features=["city", "plan"], random_state=R)),
    ("hist_gradient_boosting_poisson", d.diabetes, lambda: en.HistGradientBoostingRegressor(loss="poisson", max_iter=10, random_state=R)),
    ("isolation_forest", d.iris, lambda: en.IsolationForest(n_estimators=10, random_state=R)),
    ("random_trees_embedding", d.iris, lambda: en.RandomTreesEmbedding(n_estimators=4, random_state=R)),
    ("voting_classifier", d.iris, lambda: en.VotingClassifier([("lr", lm.LogisticRegression(max_iter=300)), ("nb", naive_bayes.GaussianNB()), ("dt", tree.DecisionTreeClassifier(random_state=R))], voting="soft")),
    ("voting_regressor", d.diabetes, lambda: en.VotingRegressor([("lr", lm.LinearRegression()), ("dt", tree.DecisionTreeRegressor(max_depth=4, random_state=R))])),
    ("stacking_classifier", d.iris, lambda: en.StackingClassifier([("svc", svm.LinearSVC(random_state=R)), ("knn", neighbors.KNeighborsClassifier())], cv=3)),
    ("stacking_regressor", d.diabetes, lambda: en.StackingRegressor([("ridge", lm.Ridge()), ("dt", tree.DecisionTreeRegressor(max_depth=3, random_state=R))], cv=3)),
]

SVM_NEIGHBOURS = [
    ("svc_probability", d.iris, lambda: svm.SVC(probability=True, random_state=R)),
    ("svc_poly_str", d.iris_str, lambda: svm.SVC(kernel="poly", degree=2)),
    ("svc_csr", d.iris_csr, lambda: svm.SVC()),
    ("nu_svc", d.wine, lambda: svm.NuSVC()),
    ("svr", d.diabetes, lambda: svm.SVR(C=10.0)),
    ("nu_svr", d.diabetes, lambda: svm.NuSVR()),
    ("linear_svc", d.cancer, lambda: pipeline.make_pipeline(pp.StandardScaler(), svm.LinearSVC(random_state=R))),
    ("linear_svr", d.diabetes, lambda: svm.LinearSVR(random_state=R, max_iter=5000)),
    ("one_class_svm", d.iris, lambda: svm.OneClassSVM(nu=0.1)),
    ("knn_classifier_kd_tree", d.iris, lambda: neighbors.KNeighborsClassifier(algorithm="kd_tree")),
    ("knn_classifier_ball_tree", d.wine, lambda: neighbors.KNeighborsClassifier(algorithm="ball_tree", weights="distance")),
    ("knn_classifier_brute_str", d.iris_str, lambda: neighbors.KNeighborsClassifier(algorithm="brute")),
    ("knn_classifier_manhattan", d.iris, lambda: neighbors.KNeighborsClassifier(algorithm="ball_tree", metric="manhattan")),
    ("knn_classifier_minkowski_p3", d.iris, lambda: neighbors.KNeighborsClassifier(algorithm="kd_tree", p=3)),
    ("knn_classifier_chebyshev", d.wine, lambda: neighbors.KNeighborsClassifier(algorithm="ball_tree", metric="chebyshev")),
    ("knn_regressor", d.diabetes, lambda: neighbors.KNeighborsRegressor(algorithm="kd_tree")),
    ("radius_neighbors_classifier", d.iris, lambda: neighbors.RadiusNeighborsClassifier(radius=1.5)),
    ("radius_neighbors_regressor", d.diabetes, lambda: neighbors.RadiusNeighborsRegressor(radius=0.2)),
    ("nearest_centroid", d.iris, lambda: neighbors.NearestCentroid()),
    ("knn_transformer_kd_tree", d.iris, lambda: neighbors.KNeighborsTransformer(algorithm="kd_tree", n_neighbors=4)),
    ("knn_transformer_ball_tree", d.iris, lambda: neighbors.KNeighborsTransformer(algorithm="ball_tree", n_neighbors=4)),
    ("lof_novelty", d.iris, lambda: neighbors.LocalOutlierFactor(novelty=True)),
    ("nca", d.iris, lambda: neighbors.NeighborhoodComponentsAnalysis(max_iter=20, random_state=R)),
]

BAYES_CLUSTER_DECOMP = [
    ("gaussian_nb", d.iris, lambda: naive_bayes.GaussianNB()),
    ("gaussian_nb_str", d.iris_obj, lambda: naive_bayes.GaussianNB()),
    ("multinomial_nb", d.counts, lambda: naive_bayes.MultinomialNB()),
    ("bernoulli_nb", d.counts, lambda: naive_bayes.BernoulliNB(binarize=1.0)),
    ("complement_nb", d.counts, lambda: naive_bayes.ComplementNB()),
    ("categorical_nb", d.categories, lambda: naive_bayes.CategoricalNB()),
    ("kmeans", d.iris, lambda: cluster.KMeans(n_clusters=3, n_init=2, random_state=R)),
    ("kmeans_csr", d.iris_csr, lambda: cluster.KMeans(n_clusters=3, n_init=1, random_state=R)),
    ("minibatch_kmeans", d.wine, lambda: cluster.MiniBatchKMeans(n_clusters=3, n_init=1, random_state=R)),
    ("bisecting_kmeans", d.iris, lambda: cluster.BisectingKMeans(n_clusters=3, random_state=R)),
    ("birch", d.iris, lambda: cluster.Birch(n_clusters=3)),
    ("affinity_propagation", d.iris, lambda: cluster.AffinityPropagation(random_state=R)),
    ("mean_shift", d.iris, lambda: cluster.MeanShift(bandwidth=1.0)),
    ("feature_agglomeration", d.wine, lambda: cluster.FeatureAgglomeration(n_clusters=4)),
    ("gaussian_mixture", d.iris, lambda: mixture.GaussianMixture(n_components=3, random_state=R)),
    ("bayesian_gaussian_mixture", d.iris, lambda: mixture.BayesianGaussianMixture(n_components=3, max_iter=200, random_state=R)),
    ("pca", d.wine, lambda: decomposition.PCA(n_components=3)),
    ("pca_whiten_frame", d.iris_frame, lambda: decomposition.PCA(n_components=2, whiten=True)),
    ("incremental_pca", d.wine, lambda: decomposition.IncrementalPCA(n_components=3)),
    ("kernel_pca", d.iris, lambda: decomposition.KernelPCA(n_components=2, kernel="rbf")),
    ("truncated_svd_csr", d.iris_csr, lambda: decomposition.TruncatedSVD(n_components=2, random_state=R)),
    ("nmf", d.counts, lambda: decomposition.NMF(n_components=3, max_iter=400, random_state=R)),
    ("fast_ica", d.wine, lambda: decomposition.FastICA(n_components=3, random_state=R, whiten="unit-variance")),
    ("factor_analysis", d.wine, lambda: decomposition.FactorAnalysis(n_components=3, random_state=R)),
    ("lda_topics", d.counts, lambda: decomposition.LatentDirichletAllocation(n_components=3, max_iter=5, random_state=R)),
    ("linear_discriminant", d.wine, lambda: discriminant_analysis.LinearDiscriminantAnalysis()),
    ("quadratic_discriminant", d.iris, lambda: discriminant_analysis.QuadraticDiscriminantAnalysis()),
    ("pls_regression", d.diabetes, lambda: cross_decomposition.PLSRegression(n_components=3)),
    ("isomap", d.iris, lambda: manifold.Isomap(n_components=2, n_neighbors=8)),
    ("gaussian_random_projection", d.cancer, lambda: random_projection.GaussianRandomProjection(n_components=5, random_state=R)),
    ("sparse_random_projection", d.cancer, lambda: random_projection.SparseRandomProjection(n_components=5, random_state=R)),
    ("rbf_sampler", d.iris, lambda: kernel_approximation.RBFSampler(n_components=20, random_state=R)),
    ("nystroem", d.iris, lambda: kernel_approximation.Nystroem(n_components=20, random_state=R)),
]

MISC = [
    ("mlp_classifier", d.iris, lambda: pipeline.make_pipeline(pp.StandardScaler(), neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=R))),
    ("mlp_classifier_str", d.iris_str, lambda: neural_network.MLPClassifier(hidden_layer_sizes=(6,), max_iter=200, random_state=R)),
    ("mlp_regressor", d.diabetes, lambda: neural_network.MLPRegressor(hidden_layer_sizes=(8,), max_iter=200, random_state=R)),
    ("calibrated_sigmoid", d.cancer, lambda: calibration.CalibratedClassifierCV(svm.LinearSVC(random_state=R, max_iter=3000), cv=3)),
    ("calibrated_isotonic", d.iris, lambda: calibration.CalibratedClassifierCV(naive_bayes.GaussianNB(), method="isotonic", cv=3)),
    ("gaussian_process_classifier", d.iris, lambda: gaussian_process.GaussianProcessClassifier(kernel=1.0 * kernels.RBF(1.0), optimizer=None, random_state=R)),
    ("gaussian_process_regressor", d.diabetes_small, lambda: gaussian_process.GaussianProcessRegressor(kernel=kernels.RBF() + kernels.WhiteKernel(), random_state=R)),
    ("kernel_ridge", d.diabetes, lambda: kernel_ridge.KernelRidge(kernel="rbf", alpha=0.1)),
    ("isotonic", d.diabetes, lambda: pipeline.make_pipeline(compose.ColumnTransformer([("bmi", "passthrough", [2])]), isotonic.IsotonicRegression(out_of_bounds="clip"))),
    ("dummy_classifier", d.iris_str, lambda: dummy.DummyClassifier(strategy="prior")),
    ("dummy_regressor", d.diabetes, lambda: dummy.DummyRegressor(strategy="median")),
    ("one_vs_rest", d.wine, lambda: multiclass.OneVsRestClassifier(lm.LogisticRegression(max_iter=500))),
    ("one_vs_one", d.iris, lambda: multiclass.OneVsOneClassifier(svm.LinearSVC(random_state=R))),
    ("output_code", d.iris, lambda: multiclass.OutputCodeClassifier(lm.LogisticRegression(max_iter=300), code_size=2, random_state=R)),
    ("multi_output_regressor", d.multi_target, lambda: multioutput.MultiOutputRegressor(lm.Ridge())),
    ("classifier_chain", d.multi_label, lambda: multioutput.ClassifierChain(lm.LogisticRegression(max_iter=300), random_state=R)),
    ("transformed_target", d.diabetes, lambda: compose.TransformedTargetRegressor(lm.Ridge(), func=np.log1p, inverse_func=np.expm1)),
    ("label_propagation", d.iris, lambda: semi_supervised.LabelPropagation()),
    ("self_training", d.iris, lambda: semi_supervised.SelfTrainingClassifier(svm.SVC(probability=True, random_state=R))),
]

PREPROCESSING = [
    ("standard_scaler", d.wine, lambda: pp.StandardScaler()),
    ("standard_scaler_csr", d.iris_csr, lambda: pp.StandardScaler(with_mean=False)),
    ("minmax_scaler", d.wine, lambda: pp.MinMaxScaler()),
    ("maxabs_scaler", d.iris_csr, lambda: pp.MaxAbsScaler()),
    ("robust_scaler", d.diabetes, lambda: pp.RobustScaler()),
    ("normalizer", d.iris, lambda: pp.Normalizer()),
    ("quantile_transformer", d.cancer, lambda: pp.QuantileTransformer(n_quantiles=50)),
    ("power_transformer", d.wine, lambda: pp.PowerTransformer()),
    ("kbins", d.iris, lambda: pp.KBinsDiscretizer(n_bins=3, encode="ordinal", quantile_method="averaged_inverted_cdf")),
    ("spline_transformer", d.iris, lambda: pp.SplineTransformer(n_knots=4)),
    ("polynomial_ridge", d.diabetes, lambda: pipeline.make_pipeline(pp.PolynomialFeatures(2), lm.Ridge())),
    ("function_transformer", d.iris, lambda: pp.FunctionTransformer(np.log1p)),
    ("one_hot_strings", d.customers, lambda: compose.ColumnTransformer([("oh", pp.OneHotEncoder(handle_unknown="ignore"), ["plan"])])),
    ("ordinal_encoder", d.customers, lambda: compose.ColumnTransformer([("ord", pp.OrdinalEncoder(), ["plan"])])),
    ("target_encoder", d.customers_regression, lambda: pipeline.make_pipeline(compose.ColumnTransformer([("te", pp.TargetEncoder(random_state=R), ["plan"]), ("n", "passthrough", ["visits"])]), lm.Ridge())),
    ("simple_imputer", d.synthetic_missing, lambda: impute.SimpleImputer()),
    ("knn_imputer", d.synthetic_missing, lambda: impute.KNNImputer(n_neighbors=3)),
    ("iterative_imputer", d.synthetic_missing, lambda: impute.IterativeImputer(max_iter=3, random_state=R)),
    ("missing_indicator", d.synthetic_missing, lambda: impute.MissingIndicator()),
    ("variance_threshold", d.wine, lambda: feature_selection.VarianceThreshold(0.1)),
    ("select_k_best", d.wine, lambda: pipeline.make_pipeline(feature_selection.SelectKBest(feature_selection.f_classif, k=5), lm.LogisticRegression(max_iter=500))),
    ("select_percentile_regression", d.diabetes, lambda: pipeline.make_pipeline(feature_selection.SelectPercentile(feature_selection.f_regression, percentile=50), lm.Ridge())),
    ("select_chi2", d.counts, lambda: pipeline.make_pipeline(feature_selection.SelectKBest(feature_selection.chi2, k=6), naive_bayes.MultinomialNB())),
    ("select_from_model", d.wine, lambda: pipeline.make_pipeline(feature_selection.SelectFromModel(en.RandomForestClassifier(n_estimators=5, random_state=R)), lm.LogisticRegression(max_iter=500))),
    ("rfe", d.iris, lambda: feature_selection.RFE(lm.LogisticRegression(max_iter=300), n_features_to_select=2)),
]

COMPOSITE = [
    ("pipeline_scaler_logistic", d.cancer, lambda: pipeline.make_pipeline(pp.StandardScaler(), lm.LogisticRegression())),
    ("pipeline_imputer_forest", d.synthetic_missing, lambda: pipeline.make_pipeline(impute.SimpleImputer(), en.RandomForestClassifier(n_estimators=4, random_state=R))),
    ("pipeline_pca_svc", d.wine, lambda: pipeline.Pipeline([("scale", pp.StandardScaler()), ("pca", decomposition.PCA(3)), ("svc", svm.SVC(probability=True, random_state=R))])),
    ("column_transformer_logistic", d.customers, lambda: pipeline.make_pipeline(_customers_columns(), lm.LogisticRegression(max_iter=500))),
    ("column_transformer_forest", d.customers, lambda: pipeline.make_pipeline(_customers_columns(False), en.RandomForestClassifier(n_estimators=5, random_state=R))),
    ("column_transformer_gradient_boosting", d.customers_regression, lambda: pipeline.make_pipeline(_customers_columns(), en.GradientBoostingRegressor(n_estimators=8, random_state=R))),
    ("column_transformer_selector", d.customers, lambda: pipeline.make_pipeline(compose.ColumnTransformer([("num", pp.StandardScaler(), compose.make_column_selector(dtype_include=np.number)), ("cat", pp.OneHotEncoder(handle_unknown="ignore"), compose.make_column_selector(dtype_exclude=np.number))]), impute.SimpleImputer(), tree.DecisionTreeClassifier(random_state=R))),
    ("column_transformer_alone", d.customers, lambda: _customers_columns()),
    ("feature_union", d.iris, lambda: pipeline.make_pipeline(pipeline.FeatureUnion([("pca", decomposition.PCA(2)), ("kbest", feature_selection.SelectKBest(k=1))]), svm.SVC())),
    ("feature_union_transformer", d.wine, lambda: pipeline.FeatureUnion([("scale", pp.MinMaxScaler()), ("svd", decomposition.TruncatedSVD(2, random_state=R))])),
    ("count_vectorizer_nb", d.text, _text(feature_extraction.text.CountVectorizer, naive_bayes.MultinomialNB)),
    ("tfidf_logistic", d.text, _text(feature_extraction.text.TfidfVectorizer, lambda: lm.LogisticRegression(max_iter=500))),
    ("tfidf_ngrams_linear_svc", d.text, lambda: pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(ngram_range=(1, 2), min_df=1), svm.LinearSVC(random_state=R))),
    ("hashing_sgd", d.text, lambda: pipeline.make_pipeline(feature_extraction.text.HashingVectorizer(n_features=256), lm.SGDClassifier(random_state=R))),
    ("count_tfidf_transformer", d.text, lambda: pipeline.make_pipeline(feature_extraction.text.CountVectorizer(), feature_extraction.text.TfidfTransformer(), naive_bayes.ComplementNB())),
    ("grid_search_object", d.iris, _search_grid),
    ("grid_search_best", d.iris, _BestEstimator(_search_grid)),
    ("random_search_lists_object", d.iris, lambda: _search_random(False)),
    ("random_search_best", d.iris, _BestEstimator(lambda: _search_random(True))),
]

# Files refused by design: the code the loader must answer with.
REFUSED = [
    ("random_search_scipy_stats", d.iris, lambda: _search_random(True), "unsafe_model"),
    ("dbscan_no_predict", d.iris, lambda: cluster.DBSCAN(eps=0.5), "not_an_estimator"),
    ("nearest_neighbors_kd_tree", d.iris, lambda: neighbors.NearestNeighbors(algorithm="kd_tree"), "not_an_estimator"),
    ("nearest_neighbors_ball_tree", d.iris, lambda: neighbors.NearestNeighbors(algorithm="ball_tree"), "not_an_estimator"),
    ("model_inside_dict", d.iris, _InDict(lambda: lm.LogisticRegression(max_iter=500)), "not_an_estimator"),
]

FAMILIES = [*LINEAR, *TREES, *SVM_NEIGHBOURS, *BAYES_CLUSTER_DECOMP, *MISC, *PREPROCESSING, *COMPOSITE]
