"""Choosing the regression model of the accuracy predictor (STEERAGE section 4.4.1, Fig. 3).

The paper compares six regressors -- Gaussian process, multilayer perceptron, linear
regression, decision tree, boosted decision trees and Bayesian ridge -- by their
leave-one-out mean-squared error on a set of trained architectures, and picks boosted
trees, the lowest.  :func:`compare_regressors` repeats that comparison on any set of
(architecture features, accuracy) pairs, e.g. the evaluations of a nascore run; it also
reports the Kendall tau between the leave-one-out predictions and the truth, since a
predictor must keep the ranking of architectures (section 4.4).
"""

from __future__ import annotations

import time

import numpy as np

from nascore.api import ConfigError

REGRESSORS = ("gaussian-process", "mlp", "linear", "decision-tree", "boosted-trees", "bayesian-ridge")


def make_regressor(name: str, seed: int = 0, n_estimators: int = 500):
    """A fresh scikit-learn-compatible regressor of the comparison."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.linear_model import BayesianRidge, LinearRegression
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    from .predictor import BoostedTreesPredictor

    if name == "gaussian-process":
        kernel = ConstantKernel() * RBF(length_scale=np.ones(1)) + WhiteKernel()
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)
    if name == "mlp":
        mlp = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=2000, random_state=seed)
        return TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler())
    if name == "linear":
        return LinearRegression()
    if name == "decision-tree":
        return DecisionTreeRegressor(max_depth=5, random_state=seed)
    if name == "boosted-trees":
        return BoostedTreesPredictor(n_estimators=n_estimators, random_state=seed)
    if name == "bayesian-ridge":
        return BayesianRidge()
    raise ConfigError(f"unknown regressor {name!r}; valid: {', '.join(REGRESSORS)}")


def loo_predictions(estimator, X, y) -> np.ndarray:
    """Leave-one-out predictions: each sample predicted by a model fitted on the others."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    out = np.empty(len(y))
    mask = np.ones(len(y), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(len(y)):
            mask[i] = False
            out[i] = clone(estimator).fit(X[mask], y[mask]).predict(X[i:i + 1])[0]
            mask[i] = True
    return out


def compare_regressors(X, y, names=REGRESSORS, seed: int = 0, n_estimators: int = 500) -> dict:
    """``{name: {"loo_mse", "kendall_tau", "seconds"}}`` for each regressor in ``names``."""
    from nascore.api import kendall_tau

    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim != 2 or len(X) != len(y):
        raise ConfigError(f"need a 2-D feature matrix with one row per target, got {X.shape} and {y.shape}")
    if len(y) < 3:
        raise ConfigError(f"leave-one-out comparison needs at least 3 trained architectures, got {len(y)}")
    out = {}
    for name in names:
        t0 = time.perf_counter()
        pred = loo_predictions(make_regressor(name, seed, n_estimators), X, y)
        out[name] = {"loo_mse": float(np.mean((pred - y) ** 2)), "kendall_tau": kendall_tau(pred, y),
                     "seconds": time.perf_counter() - t0}
    return out


def run_dataset(run_dir, metric: str = "valid_accuracy"):
    """(X, y, space) from a nascore run directory: unit-cube vectors of its successful
    evaluations and their ``metric``."""
    import nascore
    from nascore.api import read_config, read_evaluations, require_run_dir

    config = read_config(require_run_dir(run_dir))
    table = dict(config["space"])
    space = nascore.create("search_space", table.pop("name"), **table)
    evals = [e for e in read_evaluations(run_dir) if e.ok and e.metric(metric) is not None]
    if not evals:
        raise ConfigError(f"{run_dir} has no successful evaluations with {metric!r}")
    X = np.stack([space.to_vector(space.make(e.genome)) for e in evals])
    return X, np.array([e.metric(metric) for e in evals], dtype=float), space
