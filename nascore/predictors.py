"""Built-in predictors: scikit-learn regressors with the nascore predictor contract.

``fit(X, y, curves=None)`` / ``predict(X, curves=None)``; ``curves`` is accepted and
ignored by predictors that do not use learning curves.  They follow scikit-learn's
estimator rules and pass its ``check_estimator``: the constructor and ``set_params`` only
store parameters, ``fit`` validates them (:func:`~nascore.params.validate_params`; the
component-building path, ``nascore.create`` and configs, refuses a bad value up front),
``X`` may be sparse (an N-gram encoder's CSR matrix) and fitted state pickles.
"""

from __future__ import annotations

import attrs
from sklearn.base import BaseEstimator, RegressorMixin

from .params import fit_time_validators, in_range, param, validate_params


class _SklearnPredictor(RegressorMixin, BaseEstimator):
    #: sparse formats the wrapped model takes as they are; others are densified
    _sparse_formats: tuple[str, ...] = ("csr", "csc")

    def _make(self):
        raise TypeError("abstract")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # encoders may give sparse matrices
        return tags

    def _formatted(self, X):
        """``X`` in a sparse format the wrapped model takes, or dense."""
        from scipy.sparse import issparse

        if not issparse(X) or X.format in self._sparse_formats:
            return X
        return X.tocsr() if "csr" in self._sparse_formats else X.toarray()

    def fit(self, X, y, curves=None):
        from sklearn.utils.validation import validate_data

        validate_params(self)
        X, y = validate_data(self, X, y, accept_sparse=True, y_numeric=True)
        self.model_ = self._make().fit(self._formatted(X), y)
        return self

    def predict(self, X, curves=None):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "model_")
        return self.model_.predict(self._formatted(validate_data(self, X, reset=False, accept_sparse=True)))


@attrs.define(slots=False, eq=False, field_transformer=fit_time_validators)
class RandomForestPredictor(_SklearnPredictor):
    """Random forest regression (scikit-learn)."""

    n_estimators: int = param(200, help="number of trees", validator=in_range(1))
    max_depth: int | None = param(None, help="maximum tree depth (None: unlimited)")
    random_state: int = param(0, help="seed")

    def _make(self):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                     random_state=self.random_state, n_jobs=1)


@attrs.define(slots=False, eq=False, field_transformer=fit_time_validators)
class GaussianProcessPredictor(_SklearnPredictor):
    """Gaussian-process regression with a Matern kernel and a learned noise level."""

    _sparse_formats = ()  # the GP's kernels need dense input

    nu: float = param(2.5, help="Matern smoothness", validator=in_range(0.5))
    normalize_y: bool = param(True, help="normalize targets")
    random_state: int = param(0, help="seed of the optimizer restarts")

    def _make(self):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel() * Matern(nu=self.nu) + WhiteKernel()
        return GaussianProcessRegressor(kernel=kernel, normalize_y=self.normalize_y, random_state=self.random_state)

    def predict(self, X, curves=None, return_std=False):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "model_")
        X = self._formatted(validate_data(self, X, reset=False, accept_sparse=True))
        return self.model_.predict(X, return_std=return_std)


@attrs.define(slots=False, eq=False, field_transformer=fit_time_validators)
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
