"""The ``srm`` predictor: sequential models on synthetic curves with known answers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

import nascore
from nascore.errors import ConfigError
from nascore.testing import check_component
from nascore_ngram_srm.features import architecture_features, design_matrix, hyperparameter_features
from nascore_ngram_srm.srm import SequentialRegressionModels as SRM

T = 10


def linear_curves(n, seed=0):
    """y_t = a + b t: the final point is exactly y_2 + (T - 2)(y_2 - y_1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(40, 80, n), rng.uniform(0.5, 2.0, n)
    curves = a[:, None] + b[:, None] * np.arange(1, T + 1)[None, :]
    return curves, curves[:, -1]


def saturating_curves(n, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    top, gap, rate = rng.uniform(70, 99, n), rng.uniform(20, 60, n), rng.uniform(0.2, 1.0, n)
    t = np.arange(1, T + 1)[None, :]
    curves = top[:, None] - gap[:, None] * np.exp(-rate[:, None] * t) + rng.normal(0, noise, (n, T))
    return curves, curves[:, -1]


def test_conformance():
    check_component("predictor", "srm")


def test_ols_recovers_linear_extrapolation_exactly_from_two_points():
    curves, y = linear_curves(60)
    srm = SRM(regressor="ols", features="TS").fit(None, y[:40], curves[:40])
    assert list(srm.taus_) == list(range(1, T + 1))
    for tau in (2, 3, 7):
        assert np.allclose(srm.predict(None, curves[40:, :tau]), y[40:], atol=1e-6)
        assert srm.residual_std(tau) < 1e-6
    # one point cannot separate the intercept from the slope
    assert srm.residual_std(1) > 1.0
    assert r2_score(y[40:], srm.predict(None, curves[40:, :1])) < 0.99


def test_rows_use_the_model_of_their_prefix_length():
    curves, y = saturating_curves(80)
    srm = SRM(regressor="blr", features="TS", taus=[2, 5]).fit(None, y[:60], curves[:60])
    mixed = [curves[60, :2], curves[61, :7], curves[62, :5]]
    out = srm.predict(None, mixed)
    assert out[0] == pytest.approx(srm.predict(None, [curves[60, :2]])[0])
    assert out[1] == pytest.approx(srm.predict(None, [curves[61, :5]])[0])  # 7 points -> model tau=5
    assert out[2] == pytest.approx(srm.predict(None, [curves[62, :5]])[0])
    with pytest.raises(ConfigError, match="no model for curves of length 1"):
        srm.predict(None, [curves[60, :1]])


@pytest.mark.parametrize("regressor, min_r2", [("nu-svr", 0.9), ("random-forest", 0.7), ("ols", 0.9), ("blr", 0.9)])
def test_every_base_regressor_predicts_from_a_quarter_of_the_curve(regressor, min_r2):
    curves, y = saturating_curves(160, noise=0.3)
    srm = SRM(regressor=regressor, features="TS", taus=[3], n_estimators=30).fit(None, y[:120], curves[:120])
    pred, std = srm.predict(None, curves[120:, :3], return_std=True)
    assert r2_score(y[120:], pred) > min_r2
    rmse = np.sqrt(np.mean((pred - y[120:]) ** 2))
    assert 0.3 * rmse < std[0] < 3 * rmse  # CV residuals estimate the held-out error


def test_feature_groups_select_columns():
    rng = np.random.default_rng(0)
    n = 80
    ng = (rng.random((n, 4)) < 0.5).astype(float)
    ap, hp = rng.random((n, 2)), rng.random((n, 1))
    X, n_ap, n_hp = design_matrix(ng, ap, hp)
    assert X.shape == (n, 7) and (n_ap, n_hp) == (2, 1)
    curves = rng.random((n, 3))
    y_hp = 10 * hp[:, 0]
    srm = SRM(regressor="ols", features="HP", ap_columns=2, hp_columns=1).fit(X, y_hp, curves)
    assert srm.groups_ == ("HP",) and list(srm.taus_) == [0]
    assert np.allclose(srm.predict(X, curves), y_hp, atol=1e-8)
    y_ng = 5 * ng[:, 1] - 3 * ng[:, 2]
    srm = SRM(regressor="ols", features="NG+TS", ap_columns=2, hp_columns=1).fit(X, y_ng, curves)
    assert srm.groups_ == ("NG", "TS") and list(srm.taus_) == [0, 1, 2, 3]
    assert np.allclose(srm.predict(X, curves[:, :2]), y_ng, atol=1e-6)
    assert SRM(features="all", ap_columns=2, hp_columns=1, search=False).fit(X, y_ng, curves).groups_ == ("NG", "AP", "HP", "TS")
    with pytest.raises(ConfigError, match="feature set AP selected but absent"):
        SRM(features="TS+AP").fit(ng, y_ng, curves)


def test_ap_and_hp_blocks():
    space = nascore.create("search_space", "metaqnn", width=0.25, batch_norm=False)
    a = space.from_string("C3-64 FC-128")
    ap = architecture_features(space, [a], metrics=[{"params": 33_938}])
    assert ap[0] == pytest.approx([np.log10(33_938), 3.0])
    hp = hyperparameter_features([{"lr": 0.1, "momentum": 0.9}], ["lr", "momentum"])
    assert hp[0] == pytest.approx([-1.0, 0.9])


def test_estimator_contract_and_pickle():
    curves, y = saturating_curves(50)
    srm = SRM(regressor="nu-svr", features="TS", taus=[2, 4], search=False)
    assert clone(srm).get_params() == srm.get_params()
    srm.set_params(cv=4)
    assert srm.cv == 4
    srm.fit(None, y, curves)
    again = pickle.loads(pickle.dumps(srm))
    assert np.array_equal(again.predict(None, curves[:, :4]), srm.predict(None, curves[:, :4]))


def test_bad_input():
    curves, y = saturating_curves(20)
    with pytest.raises(ConfigError, match="empty training set"):
        SRM().fit(None, [], [])
    bad = SRM(features="TS+XY")  # scikit-learn's rule: the constructor only stores it
    with pytest.raises(ConfigError, match="unknown feature set"):
        bad.fit(None, y, curves)
    with pytest.raises(ConfigError, match="predictor 'srm': unknown feature set"):
        nascore.create("predictor", "srm", features="TS+XY")  # refused up front
    with pytest.raises(NotFittedError, match="not fitted"):
        SRM().predict(None, curves)
    srm = SRM(regressor="ols", features="TS", taus=[2]).fit(None, y, curves[:, :6])
    with pytest.raises(ConfigError, match="at most T=6"):
        srm.predict(None, curves[:, :8])
    with pytest.raises(ConfigError, match="cannot fit tau=12"):
        SRM(features="TS", taus=[12]).fit(None, y, curves)
    with pytest.raises(ConfigError, match="2 curves for 20 rows"):
        SRM().fit(np.zeros((20, 2)), y, curves[:2])
    with pytest.raises(ConfigError, match="no features"):
        SRM().fit(None, y, None)


def test_blockwise_svr_kernel_matches_libsvm():
    """The matrix-product RBF decision function equals scikit-learn's, sparse NG included."""
    import scipy.sparse as sp
    from sklearn.svm import NuSVR

    from nascore_ngram_srm.regressors import predict

    rng = np.random.default_rng(1)
    X = np.hstack([(rng.random((200, 30)) < 0.2).astype(float), rng.normal(size=(200, 4))])
    y = X[:, :5].sum(axis=1) + X[:, 30] + 0.1 * rng.normal(size=200)
    model = NuSVR(C=10.0, gamma=0.05).fit(X[:150], y[:150])
    expect = model.predict(X[150:])
    assert np.allclose(predict(model, [X[150:]]), expect, atol=1e-9)
    assert np.allclose(predict(model, [sp.csr_matrix(X[150:, :30]), X[150:, 30:]]), expect, atol=1e-9)


def test_increment_target_and_scaled_ngrams():
    curves, y = linear_curves(60)
    srm = SRM(regressor="ols", features="TS", target="increment", taus=[2, 4]).fit(None, y[:40], curves[:40])
    assert np.allclose(srm.predict(None, curves[40:, :2]), y[40:], atol=1e-6)
    rng = np.random.default_rng(0)
    ng = (rng.random((80, 5)) < 0.5).astype(float)
    target = 3 * ng[:, 0] + ng[:, 1]
    import scipy.sparse as sp

    for scale_ng in (False, True):
        srm = SRM(regressor="nu-svr", features="NG", scale_ng=scale_ng).fit(sp.csr_matrix(ng[:60]), target[:60])
        pred = srm.predict(sp.csr_matrix(ng[60:]))
        assert np.allclose(pred, srm.predict(ng[60:]), atol=1e-9)  # sparse and dense X agree
        assert r2_score(target[60:], pred) > 0.8


def test_ng_weight_equals_scaling_the_ngram_columns():
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    ng = (rng.random((70, 6)) < 0.4).astype(float)
    curves, y = saturating_curves(70, seed=1)
    y = y + 2 * ng[:, 0]
    kw = dict(regressor="nu-svr", features="TS+NG", taus=[3], search=False)
    weighted = SRM(ng_weight=0.3, **kw).fit(sp.csr_matrix(ng[:50]), y[:50], curves[:50, :3])
    scaled = SRM(**kw).fit(sp.csr_matrix(0.3 * ng[:50]), y[:50], curves[:50, :3])
    a = weighted.predict(sp.csr_matrix(ng[50:]), curves[50:, :3])
    assert np.allclose(a, scaled.predict(sp.csr_matrix(0.3 * ng[50:]), curves[50:, :3]), atol=1e-9)
    assert np.allclose(a, weighted.predict(ng[50:], curves[50:, :3]), atol=1e-9)  # dense X too
    plain = SRM(**kw).fit(sp.csr_matrix(ng[:50]), y[:50], curves[:50, :3]).predict(sp.csr_matrix(ng[50:]),
                                                                                     curves[50:, :3])
    assert np.abs(a - plain).max() > 1e-3  # the weight changes the model
    with pytest.raises(ConfigError, match="ng_weight must be in"):
        SRM(ng_weight=0.0).fit(sp.csr_matrix(ng[:50]), y[:50], curves[:50, :3])


def test_log_error_transform_predicts_in_accuracy_units():
    curves, y = saturating_curves(80, seed=2)
    srm = SRM(regressor="ols", features="TS", taus=[T], target_transform="log-error").fit(None, y[:60], curves[:60])
    # with the whole curve the final point is a feature: OLS on -log(100.5 - y) returns it exactly
    assert np.allclose(srm.predict(None, curves[60:]), y[60:], atol=1e-6)
    srm = SRM(regressor="nu-svr", features="TS", taus=[3], target_transform="log-error").fit(None, y[:60], curves[:60, :3])
    pred, std = srm.predict(None, curves[60:, :3], return_std=True)
    assert r2_score(y[60:], pred) > 0.7 and np.all(pred < 100.5)
    # delta method: std in accuracy units = sigma_t * (100.5 - pred); quantiles are asymmetric
    assert np.allclose(std, srm.residual_std(3) * (100.5 - pred))
    hi, lo = srm.quantile(None, curves[60:, :3], 0.9), srm.quantile(None, curves[60:, :3], 0.1)
    assert np.all(hi > pred) and np.all(lo < pred) and np.all(hi - pred < pred - lo)
    assert np.all(hi < 100.5)
    with pytest.raises(ConfigError, match="ceiling"):
        SRM(features="TS", target_transform="log-error", ceiling=1.0).fit(None, y[:60], curves[:60, :3])
    with pytest.raises(ConfigError, match="q must be"):
        srm.quantile(None, curves[60:, :3], 1.0)
