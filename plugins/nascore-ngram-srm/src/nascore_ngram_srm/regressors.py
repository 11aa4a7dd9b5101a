"""Base regressors of the SRMs (Section 4.2, Table 2 of the N-gram/SRM paper): nu-SVR
(the paper's choice), random forest, ordinary least squares and Bayesian linear
regression, with hyperparameters chosen by k-fold cross-validation.

Targets are standardized before fitting, so the grids below are scale free.  OLS has no
hyperparameters and BLR sets its precisions by evidence maximization (empirical Bayes),
so neither needs a grid.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

REGRESSORS = ("nu-svr", "random-forest", "ols", "blr")


def make_regressor(name: str, *, n_estimators: int = 100, random_state: int = 0):
    """An unfitted scikit-learn regressor with the default hyperparameters."""
    if name == "nu-svr":
        from sklearn.svm import NuSVR

        return NuSVR(kernel="rbf", nu=0.5, C=3.0, gamma="scale")
    if name == "random-forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=n_estimators, random_state=random_state, n_jobs=1)
    if name == "ols":
        from sklearn.linear_model import LinearRegression

        return LinearRegression()
    if name == "blr":
        from sklearn.linear_model import BayesianRidge

        return BayesianRidge()
    raise ValueError(f"unknown regressor {name!r}; choose one of {', '.join(REGRESSORS)}")


def scale_gamma(X: np.ndarray) -> float:
    """scikit-learn's ``gamma='scale'``: 1 / (n_features * Var(X))."""
    var = float(X.var()) if X.size else 0.0
    return 1.0 / (X.shape[1] * var) if var > 0 and X.shape[1] else 1.0


def param_grid(name: str, X: np.ndarray) -> dict:
    """Cross-validation grid of ``name`` for data ``X`` (empty: nothing to choose).

    nu-SVR: C x nu x gamma, gamma as multiples of scikit-learn's 'scale' value
    1 / (d * Var(X)); random forest: max_features x min_samples_leaf."""
    if name == "nu-svr":
        scale = scale_gamma(X)
        return {"C": [1.0, 10.0, 100.0], "nu": [0.3, 0.7], "gamma": [0.1 * scale, scale]}
    if name == "random-forest":
        return {"max_features": [1.0, 0.33], "min_samples_leaf": [1, 3]}
    return {}


def fit_with_cv(name: str, X: np.ndarray, y: np.ndarray, *, cv: int, search: bool, n_estimators: int = 100,
                random_state: int = 0):
    """Fit ``name`` on (X, y), choosing hyperparameters by ``cv``-fold CV (mean squared
    error) when ``search``; returns ``(model, chosen_params, residual_std)`` where the
    residual standard deviation comes from out-of-fold predictions (used as the
    prediction uncertainty by early termination)."""
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict

    model = make_regressor(name, n_estimators=n_estimators, random_state=random_state)
    if name == "nu-svr":
        model.set_params(gamma=scale_gamma(X))  # numeric, so predict() can use it
    folds = min(cv, len(y))
    chosen: dict = {}
    grid = param_grid(name, X) if search else {}
    if folds >= 2:
        splitter = KFold(folds, shuffle=True, random_state=random_state)
        if grid and len(y) >= 2 * folds:
            gs = GridSearchCV(model, grid, cv=splitter, scoring="neg_mean_squared_error", n_jobs=1)
            gs.fit(X, y)
            chosen = dict(gs.best_params_)
            model.set_params(**chosen)
        oof = cross_val_predict(model, X, y, cv=splitter, n_jobs=1)
        residual_std = float(np.sqrt(np.mean((oof - y) ** 2)))
    else:
        residual_std = float("nan")
    model.fit(X, y)
    return model, chosen, residual_std


def _dense(block) -> np.ndarray:
    return block.toarray() if sparse.issparse(block) else np.asarray(block)


def predict(model, parts: list, chunk: int = 4096) -> np.ndarray:
    """``model.predict`` of the design matrix given as column blocks ``parts`` (dense
    arrays or sparse matrices).  For the RBF nu-SVR the decision function
    ``f(x) = sum_i a_i exp(-gamma ||x - s_i||^2) + b`` is evaluated with one matrix
    product per block, sparse blocks staying sparse (libsvm evaluates it pair by pair
    on dense rows, ~20x slower)."""
    from sklearn.svm import NuSVR

    if not (isinstance(model, NuSVR) and model.kernel == "rbf" and not isinstance(model.gamma, str)):
        return model.predict(np.hstack([_dense(p) for p in parts]))
    S = model.support_vectors_
    a, b, gamma = model.dual_coef_[0], float(model.intercept_[0]), float(model.gamma)
    s2 = np.einsum("ij,ij->i", S, S)
    n = parts[0].shape[0]
    out = np.empty(n)
    for lo in range(0, n, chunk):
        k = np.zeros((min(chunk, n - lo), S.shape[0]))  # becomes the kernel matrix, in place
        sq = np.zeros(k.shape[0])
        col = 0
        for p in parts:
            x, s_block = p[lo:lo + chunk], S[:, col:col + p.shape[1]]
            sq += np.asarray(x.multiply(x).sum(axis=1)).ravel() if sparse.issparse(x) else np.einsum("ij,ij->i", x, x)
            k += np.asarray(x @ s_block.T)
            col += p.shape[1]
        k *= -2.0
        k += sq[:, None]
        k += s2[None, :]
        np.maximum(k, 0.0, out=k)
        k *= -gamma
        np.exp(k, out=k)
        out[lo:lo + chunk] = k @ a + b
    return out
