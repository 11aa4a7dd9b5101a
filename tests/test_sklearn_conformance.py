"""Every registered predictor is a scikit-learn regressor: ``check_estimator`` in full.

The predictor registry is listed at collection time, so a predictor a plugin adds is
checked without editing this file.  Settings that only shrink the work (fewer trees,
no hyperparameter grid) keep the run short; every check runs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import nascore
from nascore.errors import ConfigError
from nascore.params import validate_params

# the GP's optimizer warns about bounds on the checks' random data; that is not a failure
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: smaller-than-default settings that keep each check fast (the checks still all run)
SMALL = {
    "boosted-trees": {"n_estimators": 20},
    "random-forest": {"n_estimators": 20},
    "gradient-boosting": {"n_estimators": 50},
    "srm": {"search": False},
}
#: one out-of-range value per predictor and the message fit and nascore.create give
BAD = {
    "boosted-trees": ("max_depth", 0, "max_depth must be in [1, inf], got 0"),
    "random-forest": ("n_estimators", 0, "n_estimators must be in [1, inf], got 0"),
    "gradient-boosting": ("learning_rate", 0.0, "learning_rate must be in (0, inf], got 0.0"),
    "gaussian-process": ("nu", 0.25, "nu must be in [0.5, inf], got 0.25"),
    "srm": ("regressor", "svm", "regressor must be one of 'nu-svr', 'random-forest', 'ols', 'blr', got 'svm'"),
}
NAMES = [c.name for c in nascore.components("predictor")]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: the GP's small matrix algebra runs ~20x slower in CPU time when
    several threads fight over the shared cores."""
    with threadpool_limits(1):
        yield


def small(name):
    return nascore.create("predictor", name, **SMALL.get(name, {}))


@parametrize_with_checks([small(n) for n in NAMES])
def test_check_estimator(estimator, check):
    check(estimator)


def test_every_predictor_is_checked():
    # a registered predictor with an out-of-range example is also covered by the tests below
    assert set(BAD) == set(NAMES), "add the new predictor's bad value to BAD"


@pytest.mark.parametrize("name", NAMES)
def test_bad_value_stored_by_constructor_refused_by_fit_and_create(name):
    key, value, message = BAD[name]
    cls = type(nascore.create("predictor", name))
    est = cls(**{key: value})  # the constructor only stores it, as scikit-learn requires
    assert getattr(est, key) == value
    est.set_params(**{key: value})
    X, y = np.random.default_rng(0).random((20, 3)), np.arange(20.0)
    with pytest.raises(ConfigError) as info:
        est.fit(X, y)
    assert message in str(info.value)
    with pytest.raises(ConfigError) as info:
        nascore.create("predictor", name, **{key: value})
    assert str(info.value) == f"predictor {name!r}: {message}"
    validate_params(cls())  # the defaults pass


def test_config_with_bad_predictor_value_exits_2_with_one_line(tmp_path):
    from nascore.cli import cli

    config = tmp_path / "run.toml"
    config.write_text('[space]\nname = "nb201"\n[predictor]\nname = "random-forest"\nn_estimators = 0\n')
    res = CliRunner().invoke(cli, ["run", str(config), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "nascore: error: predictor 'random-forest': n_estimators must be in [1, inf], got 0"]


def _data(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return X, 3 * X[:, 0] + 2 * X[:, 1] ** 2 - X[:, 2]


@pytest.mark.parametrize("name", NAMES)
def test_sparse_input_means_the_same_matrix(name):
    # the tag says sparse input is accepted (encoders emit CSR); a fitted predictor must
    # give the same answer for a matrix and its CSR form (check_estimator only checks
    # that sparse input is taken, not what comes out)
    est = small(name)
    assert get_tags(est).input_tags.sparse
    X, y = _data()
    X[X < 0.3] = 0.0
    est.fit(X[:40], y[:40])
    np.testing.assert_allclose(est.predict(sp.csr_matrix(X[40:])), est.predict(X[40:]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_fitted_state_survives_pickling(name):
    X, y = _data()
    est = small(name).fit(X[:40], y[:40])
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X[40:]), est.predict(X[40:]))


def test_srm_is_a_regressor_not_a_transformer():
    srm = nascore.create("predictor", "srm")
    tags = get_tags(srm)
    assert tags.estimator_type == "regressor" and tags.transformer_tags is None
    assert not hasattr(srm, "transform") and not hasattr(srm, "fit_transform")


@pytest.mark.parametrize("name", NAMES)
def test_curves_keyword(name):
    """``fit(X, y, curves=...)`` / ``predict(X, curves=...)`` work for every predictor;
    SRM uses them: its model for 2-point prefixes predicts y = 0.5 (y_1 + y_2) + 1,
    an exact linear function of the prefix, so OLS recovers it."""
    X, _ = _data()
    rng = np.random.default_rng(1)
    curves = rng.random((60, 2))
    y = curves.sum(axis=1) / 2 + 1.0
    est = small(name)
    if name == "srm":
        est.set_params(regressor="ols", features="TS", taus=[2])
        pred = est.fit(None, y[:40], curves=curves[:40]).predict(None, curves=curves[40:])
        np.testing.assert_allclose(pred, y[40:], atol=1e-8)
    else:
        pred = est.fit(X[:40], y[:40], curves=curves[:40]).predict(X[40:], curves=curves[40:])
        np.testing.assert_allclose(pred, small(name).fit(X[:40], y[:40]).predict(X[40:]))
