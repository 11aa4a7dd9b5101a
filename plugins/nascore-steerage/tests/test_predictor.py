"""The boosted-trees accuracy predictor and the regressor comparison (section 4.4.1)."""

import numpy as np
import pytest

from nascore.errors import ConfigError
from nascore.testing import check_component
from nascore_steerage.predictor import BoostedTreesPredictor
from nascore_steerage.regressors import compare_regressors


def test_conformance():
    check_component("predictor", "boosted-trees")


def test_defaults_are_the_papers():
    p = BoostedTreesPredictor()
    assert (p.max_depth, p.n_estimators) == (5, 500)
    p.fit(np.random.default_rng(0).random((60, 4)), np.random.default_rng(1).random(60))
    assert all(est.get_depth() <= 5 for est in p.model_.estimators_)
    assert len(p.model_.estimators_) <= 500


def test_vectorized_prediction_equals_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.random((150, 9))
    y = 90 + 5 * X[:, 0] - 3 * X[:, 1] ** 2 + 2 * (X[:, 2] > 0.5) + rng.normal(0, 0.3, 150)
    p = BoostedTreesPredictor(n_estimators=200).fit(X, y)
    Xt = rng.random((3000, 9))
    assert np.array_equal(p.predict(Xt), p.model_.predict(Xt))  # large batch: compiled per-tree walks
    assert np.array_equal(p.predict(Xt[:50]), p.model_.predict(Xt[:50]))  # small batch: packed arrays
    p.packed_.LARGE_BATCH = 10**9  # force the packed walk on a multi-chunk batch
    assert np.array_equal(p.predict(Xt), p.model_.predict(Xt))


@pytest.mark.parametrize("loss", ["linear", "square", "exponential"])
def test_own_boosting_loop_fits_what_scikit_learn_fits(loss):
    """The lean AdaBoost.R2 loop draws, fits and weighs exactly as AdaBoostRegressor.fit:
    the same trees (predictions), weights, errors and early stop, on one-hot features (the
    composed pipelines' case, 150 rounds), on 16 distinct inputs with noise (a tree worse
    than chance ends it) and on a noiseless step (a perfect first tree ends it)."""
    from sklearn.ensemble import AdaBoostRegressor

    rng = np.random.default_rng(3)
    onehot = (rng.random((60, 30)) < 0.2).astype(float)
    coarse, step = (rng.random((60, 4)) < 0.3).astype(float), rng.random((40, 3))
    lengths = []
    for X, y in ((onehot, 70 + 10 * onehot[:, 0] - 5 * onehot[:, 3] + rng.normal(0, 1, 60)),
                 (coarse, 90 + 5 * coarse[:, 0] - 3 * coarse[:, 1] + rng.normal(0, 0.3, 60)),
                 (step, 80 + 10 * (step[:, 0] > 0.5))):
        p = BoostedTreesPredictor(loss=loss, random_state=7, n_estimators=150).fit(X, y)
        ref = p._regressor().fit(X, y)
        assert isinstance(ref, AdaBoostRegressor)
        assert len(p.model_.estimators_) == len(ref.estimators_)
        assert np.array_equal(p.model_.estimator_weights_, ref.estimator_weights_)
        assert np.array_equal(p.model_.estimator_errors_, ref.estimator_errors_)
        Xt = rng.random((300, X.shape[1]))
        assert np.array_equal(p.predict(Xt), ref.predict(Xt))
        lengths.append(len(ref.estimators_))
    # a long ensemble, a stop on a tree worse than chance, a stop on a perfect tree
    assert lengths[0] == 150 and 1 < lengths[1] < 150 and lengths[2] == 1, lengths


def test_wrong_feature_count_is_refused():
    p = BoostedTreesPredictor(n_estimators=5).fit(np.zeros((10, 3)) + np.arange(10)[:, None], np.arange(10.0))
    with pytest.raises(ValueError, match="features"):
        p.predict(np.zeros((2, 4)))


def test_loo_comparison_prefers_trees_on_a_step_function():
    """Accuracy landscapes have thresholds (e.g. too few neurons); on a step function
    the tree ensembles beat the linear models in leave-one-out MSE."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = 80 + 10 * (X[:, 0] > 0.5) + 5 * (X[:, 1] > 0.3) + rng.normal(0, 0.2, 40)
    res = compare_regressors(X, y, names=("linear", "bayesian-ridge", "decision-tree", "boosted-trees"),
                             n_estimators=30)
    assert res["boosted-trees"]["loo_mse"] < res["linear"]["loo_mse"]
    assert res["boosted-trees"]["loo_mse"] < res["bayesian-ridge"]["loo_mse"]
    assert res["boosted-trees"]["kendall_tau"] > res["linear"]["kendall_tau"]  # ties cap tau on 4 levels
    with pytest.raises(ConfigError, match="at least 3"):
        compare_regressors(X[:2], y[:2])
    with pytest.raises(ConfigError, match="unknown regressor"):
        compare_regressors(X, y, names=("svm",))
