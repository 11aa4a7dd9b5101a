"""Built-in predictors: scikit-learn regressors with the nascore predictor contract.

``fit(X, y, curves=None)`` / ``predict(X, curves=None)``; ``curves`` is accepted and
ignored by predictors that do not use learning curves.  The constructor only stores
parameters (scikit-learn's rule), so ``get_params``/``set_params``/``clone`` work.
"""

from __future__ import annotations

import attrs
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from .params import in_range, param


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=float)


class _SklearnPredictor(RegressorMixin, BaseEstimator):
    def _make(self):
        raise TypeError("abstract")

    def fit(self, X, y, curves=None):
        from sklearn.utils.validation import check_X_y

        X, y = check_X_y(_dense(X) if not hasattr(X, "tocsr") else X, y, accept_sparse="csr", y_numeric=True)
        self.model_ = self._make().fit(X, y)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X, curves=None):
        from sklearn.utils.validation import check_array, check_is_fitted

        check_is_fitted(self, "model_")
        X = check_array(X, accept_sparse="csr")
        return self.model_.predict(X)


@attrs.define(slots=False, eq=False)
class RandomForestPredictor(_SklearnPredictor):
    """Random forest regression (scikit-learn)."""

    n_estimators: int = param(200, help="number of trees", validator=in_range(1))
    max_depth: int | None = param(None, help="maximum tree depth (None: unlimited)")
    random_state: int = param(0, help="seed")

    def _make(self):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                     random_state=self.random_state, n_jobs=1)


@attrs.define(slots=False, eq=False)
class GaussianProcessPredictor(_SklearnPredictor):
    """Gaussian-process regression with a Matern kernel and a learned noise level."""

    nu: float = param(2.5, help="Matern smoothness", validator=in_range(0.5))
    normalize_y: bool = param(True, help="normalize targets")
    random_state: int = param(0, help="seed of the optimizer restarts")

    def _make(self):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel() * Matern(nu=self.nu) + WhiteKernel()
        return GaussianProcessRegressor(kernel=kernel, normalize_y=self.normalize_y, random_state=self.random_state)

    def fit(self, X, y, curves=None):
        return super().fit(_dense(X), y)

    def predict(self, X, curves=None, return_std=False):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        return self.model_.predict(_dense(X), return_std=return_std)


@attrs.define(slots=False, eq=False)
class GradientBoostingPredictor(_SklearnPredictor):
    """Gradient-boosted regression trees (scikit-learn)."""

    n_estimators: int = param(300, help="boosting stages", validator=in_range(1))
    learning_rate: float = param(0.05, help="shrinkage", validator=in_range(0, low_open=True))
    max_depth: int = param(3, help="depth of each tree", validator=in_range(1))
    random_state: int = param(0, help="seed")

    def _make(self):
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                         max_depth=self.max_depth, random_state=self.random_state)
