"""STEERAGE's accuracy predictor: boosted decision-tree regression (section 4.4.1).

"We set the maximum depth of the tree to five and the maximum number of estimators in
the boosting stage to 500."  Boosting re-weights the training architectures after each
round by the current prediction error so later trees focus on the hard ones; this is
AdaBoost.R2 (Drucker, 1997), scikit-learn's ``AdaBoostRegressor``, with depth-5
regression trees.  The prediction is the weighted median of the trees' predictions; it
is vectorized over a batch of architectures *and* over the trees: the fitted trees are
packed into arrays once and all of them are walked together (depth <= max_depth steps of
array indexing), so a generation of a few dozen architectures costs one small numpy
computation instead of hundreds of per-tree calls; the result equals scikit-learn's
``AdaBoostRegressor.predict`` (tested).
"""

from __future__ import annotations

import attrs
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

import nascore
from nascore.api import fit_time_validators, in_range, one_of, validate_params


class PackedTrees:
    """The trees of a fitted AdaBoost.R2 ensemble as padded arrays (one row per tree)."""

    #: from this many samples on, each tree's own compiled ``predict`` walks the batch
    LARGE_BATCH = 1024

    def __init__(self, ensemble):
        trees = [est.tree_ for est in ensemble.estimators_]
        self.trees = trees
        width = max(t.node_count for t in trees)
        shape = (len(trees), width)
        self.left = np.full(shape, -1, dtype=np.intp)
        self.right = np.full(shape, -1, dtype=np.intp)
        self.feature = np.zeros(shape, dtype=np.intp)
        self.threshold = np.zeros(shape)
        self.value = np.zeros(shape)
        for i, t in enumerate(trees):
            n = t.node_count
            self.left[i, :n], self.right[i, :n] = t.children_left, t.children_right
            self.feature[i, :n] = np.maximum(t.feature, 0)
            self.threshold[i, :n], self.value[i, :n] = t.threshold, t.value[:, 0, 0]
        self.depth = max(t.max_depth for t in trees)
        self.weights = np.asarray(ensemble.estimator_weights_, dtype=float)

    def tree_predictions(self, X, chunk: int = 2048) -> np.ndarray:
        """n_samples × n_trees leaf values (trees compare float32 inputs, as sklearn).

        Small batches (EES generations): all trees advance one level per step on flat
        arrays (node id + tree offset), in chunks of samples so the working set stays in
        cache.  Large batches: each tree's compiled ``Tree.predict``."""
        if len(X) >= self.LARGE_BATCH:  # per-tree compiled walks win on big batches
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            return np.stack([t.predict(X32).reshape(len(X32), -1)[:, 0] for t in self.trees], axis=1)
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        n_trees, width = self.left.shape
        left, right = self.left.ravel(), self.right.ravel()
        feature, threshold = self.feature.ravel(), self.threshold.ravel()
        offsets = (np.arange(n_trees) * width)[None, :]
        out = np.empty((X.shape[0], n_trees))
        for a in range(0, X.shape[0], chunk):
            Xc = X[a:a + chunk]
            row_base = (np.arange(Xc.shape[0]) * Xc.shape[1])[:, None]
            flat_X = Xc.ravel()
            node = np.broadcast_to(offsets, (Xc.shape[0], n_trees)).copy()
            for _ in range(self.depth):
                go_left = flat_X.take(row_base + feature.take(node)) <= threshold.take(node)
                child = np.where(go_left, left.take(node), right.take(node))
                node = np.where(child >= 0, child + offsets, node)
            out[a:a + chunk] = self.value.ravel().take(node)
        return out

    def predict(self, X) -> np.ndarray:
        """AdaBoost.R2's weighted median of the trees' predictions."""
        pred = self.tree_predictions(X)
        order = np.argsort(pred, axis=1)
        cdf = np.cumsum(self.weights[order], axis=1)
        median = (cdf >= 0.5 * cdf[:, -1][:, None]).argmax(axis=1)
        rows = np.arange(pred.shape[0])
        return pred[rows, order[rows, median]]


# slots=False: fitted state lives in the instance __dict__, which pickling keeps
@attrs.define(slots=False, eq=False, field_transformer=fit_time_validators)
class BoostedTreesPredictor(RegressorMixin, BaseEstimator):
    """AdaBoost.R2 over depth-``max_depth`` regression trees (section 4.4.1).

    A scikit-learn regressor that passes ``check_estimator``: parameters are validated
    in ``fit`` (and by ``nascore.create``), ``X`` may be sparse (densified: the packed
    trees walk dense rows), fitted state pickles."""

    conformance = {"params": {"n_estimators": 100}}

    max_depth: int = nascore.param(5, help="maximum depth of each regression tree", validator=in_range(1))
    n_estimators: int = nascore.param(500, help="maximum number of boosting rounds (trees)", validator=in_range(1))
    learning_rate: float = nascore.param(1.0, help="shrinkage of each tree's weight",
                                         validator=in_range(0.0, low_open=True))
    loss: str = nascore.param("linear", help="AdaBoost.R2 loss: linear, square or exponential",
                              validator=one_of("linear", "square", "exponential"))
    random_state: int = nascore.param(0, help="seed of the boosting re-sampling")

    def _regressor(self):
        from sklearn.ensemble import AdaBoostRegressor
        from sklearn.tree import DecisionTreeRegressor

        return AdaBoostRegressor(DecisionTreeRegressor(max_depth=self.max_depth, random_state=self.random_state),
                                 n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                 loss=self.loss, random_state=self.random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # encoders may give sparse matrices
        return tags

    def fit(self, X, y, curves=None):
        """Fit on architecture features ``X`` (N×F) and accuracies ``y``; returns self."""
        from sklearn.utils.validation import validate_data

        validate_params(self)
        X, y = validate_data(self, X, y, accept_sparse=True, y_numeric=True)
        self.model_ = self._boost(_dense(X), y)
        self.packed_ = PackedTrees(self.model_)
        return self

    def _boost(self, X, y):
        """``AdaBoostRegressor.fit`` as scikit-learn computes it (the same random draws,
        trees, weights and errors: tested against it), without the per-round costs that
        dominate on a few hundred architectures: cloning the base tree, re-validating its
        parameters and re-checking the bootstrap sample (the input is checked once, here,
        and converted once to the trees' float32).  Returns a fitted
        ``AdaBoostRegressor`` (its ``predict`` is the reference the packed trees match).
        Five times cheaper per refit, which the composed pipelines do every round."""
        import sklearn
        from sklearn.tree import DecisionTreeRegressor

        model = self._regressor()
        n = X.shape[0]
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.float64)
        rng = np.random.RandomState(self.random_state)
        sample_weight = np.ones(n) / n
        eps = np.finfo(np.float64).eps
        estimators: list = []
        weights, errors = np.zeros(self.n_estimators), np.ones(self.n_estimators)
        rows = np.arange(n)
        with sklearn.config_context(skip_parameter_validation=True):
            for i in range(self.n_estimators):
                sample_weight = np.clip(sample_weight, eps, None)  # never 0: all start at 1/n
                tree = DecisionTreeRegressor(max_depth=self.max_depth,
                                             random_state=rng.randint(np.iinfo(np.int32).max))
                estimators.append(tree)
                boot = rng.choice(rows, size=n, replace=True, p=sample_weight)
                tree.fit(X32[boot], y[boot], check_input=False)
                err = np.abs(tree.predict(X32, check_input=False) - y)
                if err.max() != 0:
                    err /= err.max()
                if self.loss == "square":
                    err **= 2
                elif self.loss == "exponential":
                    err = 1.0 - np.exp(-err)
                error = (sample_weight * err).sum()
                if error <= 0:  # a perfect tree: it alone decides
                    weights[i], errors[i] = 1.0, 0.0
                    break
                if error >= 0.5:  # worse than chance: dropped (unless it is the only one)
                    if len(estimators) > 1:
                        estimators.pop()
                    break
                beta = error / (1.0 - error)
                weights[i], errors[i] = self.learning_rate * np.log(1.0 / beta), error
                if i == self.n_estimators - 1:
                    break
                sample_weight = sample_weight * np.power(beta, (1.0 - err) * self.learning_rate)
                total = sample_weight.sum()
                if not np.isfinite(total) or total <= 0:
                    break
                sample_weight /= total
        model.estimator_ = model.estimator
        model.estimators_, model.estimator_weights_, model.estimator_errors_ = estimators, weights, errors
        model.n_features_in_ = X.shape[1]
        return model

    def predict(self, X, curves=None):
        """Predicted accuracy of each row of ``X``."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "packed_")
        return self.packed_.predict(_dense(validate_data(self, X, reset=False, accept_sparse=True)))


def _dense(X) -> np.ndarray:
    from scipy.sparse import issparse

    return X.toarray() if issparse(X) else X
