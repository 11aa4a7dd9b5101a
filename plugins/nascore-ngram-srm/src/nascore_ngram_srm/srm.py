"""Sequential regression models (SRMs), Section 3 and 4.2 of the N-gram/SRM paper
(after Baker et al., "Accelerating neural architecture search using performance
prediction", 2018).

From a training set ``S = {(X^i, y^i(T))}`` of configurations and their learning curves,
model ``tau`` (``tau = 1..T``) is trained on the features ``u_X`` of each configuration
plus the first ``tau`` points of its curve, ``y(tau) = (y_t)_{t=1..tau}``, to predict the
final performance; each successive model sees one more point of the curve.  A model
``tau = 0`` (no curve, architecture features only) is fitted too when such features are
selected.  At prediction time each row uses the model of the longest prefix it has.

Data contract (scikit-learn regressor, passing ``check_estimator``): ``fit(X, y,
curves=None)`` and ``predict(X, curves=None)``; the constructor only stores parameters
and ``fit`` validates them (``nascore.create`` refuses a bad value up front).  ``X = [NG | AP | HP]``: the encoder's N-gram columns,
then ``ap_columns`` architecture-parameter columns, then ``hp_columns`` hyperparameter
columns (:func:`nascore_ngram_srm.features.design_matrix` builds it; ``X`` may be None
when only TS is used).  ``curves`` holds one observed learning-curve prefix per row
(numbers or the trainer's per-epoch dicts); ``y`` is the final validation accuracy.
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from nascore.api import ConfigError
from nascore.api import fit_time_validators, in_range, one_of, param, validate_params

from .features import curve_list, parse_feature_sets, ts_features
from .regressors import REGRESSORS, fit_with_cv, predict as regressor_predict


def _features_valid(inst, attribute, value):
    if not isinstance(value, str):
        raise ValueError(f"features must be 'all' or a '+'-union of TS, AP, HP, NG, got {value!r}")
    parse_feature_sets(value)


def _taus_valid(inst, attribute, value):
    if value is not None and (not value or any(int(t) < 0 for t in value)):
        raise ValueError(f"taus must be a non-empty list of curve lengths >= 0, got {value!r}")


@attrs.define(slots=False, eq=False, field_transformer=fit_time_validators)
class SequentialRegressionModels(RegressorMixin, BaseEstimator):
    """One regressor per observed curve length tau predicting the final accuracy from
    architecture (NG, AP), hyperparameter (HP) and curve-prefix (TS) features."""

    regressor: str = param("nu-svr", help="base regressor: nu-svr (paper), random-forest, ols or blr",
                           validator=one_of(*REGRESSORS))
    features: str = param("all", help="feature sets: 'all' or a '+'-union of TS, AP, HP, NG (e.g. 'TS+AP+HP')",
                          validator=_features_valid)
    ap_columns: int = param(0, help="trailing columns of X (before the HP columns) that are AP features",
                            validator=in_range(0))
    hp_columns: int = param(0, help="trailing columns of X that are HP features", validator=in_range(0))
    taus: list[int] | None = param(None, help="curve lengths to fit a model for (None: 0..T)", validator=_taus_valid)
    differences: bool = param(True, help="add first differences of the curve prefix to TS (Baker et al.)")
    scale_ng: bool = param(False, help="standardize the NG columns too (AP, HP and TS always are)")
    ng_weight: float = param(1.0, help="factor on the NG columns after scaling: their weight against the "
                                       "standardized AP/HP/TS columns in the kernel", validator=in_range(0.0, low_open=True))
    target_transform: str = param("none", help="'log-error': model -log(ceiling + 0.5% - y) for the target and the "
                                               "curve points (spreads the accuracies near the ceiling); 'none': raw values",
                                  validator=one_of("none", "log-error"))
    ceiling: float = param(100.0, help="largest possible value of the metric (100 for accuracy in %, 1 for fractions)",
                           validator=in_range(0.0, low_open=True))
    target: str = param("final", help="'final': regress y_T; 'increment': regress y_T - y_tau (last observed point)",
                        validator=one_of("final", "increment"))
    cv: int = param(3, help="cross-validation folds for hyperparameters and residuals", validator=in_range(2))
    search: bool = param(True, help="choose hyperparameters by cross-validation (grid search)")
    n_estimators: int = param(100, help="trees of the random forest", validator=in_range(1))
    metric: str = param("valid_accuracy", help="curve key when curve points are dicts")
    random_state: int = param(0, help="seed of the CV folds and the forest")

    # ---- feature blocks -------------------------------------------------------------------
    def _blocks(self, X, n: int) -> dict:
        """Split X into its NG (kept sparse when X is) / AP / HP (dense) blocks."""
        if X is None:
            return {g: np.zeros((n, 0)) for g in ("NG", "AP", "HP")}
        sparse = issparse(X)
        X = X.tocsr().astype(float) if sparse else np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != n:
            raise ConfigError(f"srm: X must be 2-D with one row per target/curve ({n}), got shape {X.shape}")
        d_ng = X.shape[1] - self.ap_columns - self.hp_columns
        if d_ng < 0:
            raise ConfigError(f"srm: X has {X.shape[1]} columns, fewer than ap_columns + hp_columns "
                              f"= {self.ap_columns + self.hp_columns}")
        if not np.all(np.isfinite(X.data if sparse else X)):
            raise ConfigError("srm: X contains NaN or infinite values")
        rest = X[:, d_ng:].toarray() if sparse else X[:, d_ng:]
        return {"NG": X[:, :d_ng], "AP": rest[:, :self.ap_columns], "HP": rest[:, self.ap_columns:]}

    def _groups(self, blocks: dict, max_len: int) -> tuple[str, ...]:
        available = {g for g, b in blocks.items() if b.shape[1]} | ({"TS"} if max_len > 0 else set())
        wanted = parse_feature_sets(self.features)
        if wanted is None:
            groups = tuple(g for g in ("NG", "AP", "HP", "TS") if g in available)
        else:
            missing = [g for g in wanted if g not in available]
            if missing:
                how = {"TS": "pass curves", "AP": "set ap_columns", "HP": "set hp_columns",
                       "NG": "pass encoder columns in X"}[missing[0]]
                raise ConfigError(f"srm: feature set {missing[0]} selected but absent from the data ({how})")
            groups = tuple(g for g in ("NG", "AP", "HP", "TS") if g in wanted)
        if not groups:
            raise ConfigError("srm has no features: pass X columns (NG/AP/HP) and/or learning curves (TS)")
        return groups

    def _parts(self, blocks: dict, curves: list, rows: np.ndarray, tau: int):
        """``(NG rows or None, dense [AP | HP | TS] rows)`` of the design matrix."""
        ng = blocks["NG"][rows] if "NG" in self.groups_ else None
        dense = [blocks[g][rows] for g in ("AP", "HP") if g in self.groups_]
        if "TS" in self.groups_ and tau > 0:
            prefixes = np.stack([curves[i][:tau] for i in rows]) if len(rows) else np.zeros((0, tau))
            dense.append(ts_features(prefixes, self.differences))
        return ng, (np.hstack(dense) if dense else np.zeros((len(rows), 0)))

    def _design(self, blocks: dict, curves: list, rows: np.ndarray, tau: int) -> np.ndarray:
        ng, dense = self._parts(blocks, curves, rows, tau)
        if ng is None:
            return dense
        return np.hstack([ng.toarray() if issparse(ng) else ng, dense])

    def _taus(self, groups, T: int) -> list[int]:
        static = any(g != "TS" for g in groups)
        if "TS" not in groups:
            return [0]
        if self.taus is None:
            return ([0] if static else []) + list(range(1, T + 1))
        taus = sorted({int(t) for t in self.taus})
        bad = [t for t in taus if t > T or (t == 0 and not static)]
        if bad:
            raise ConfigError(f"srm: cannot fit tau={bad[0]} (training curves have at most {T} points"
                              + ("" if static else "; tau=0 needs NG/AP/HP features") + ")")
        return taus

    # ---- fit / predict -----------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # the N-gram encoder's CSR columns stay sparse
        return tags

    def fit(self, X, y, curves=None):
        """Fit the models ``tau`` on ``X`` (NG | AP | HP columns, or None for curves
        only), final accuracies ``y`` and the learning ``curves``; returns self."""
        validate_params(self, "srm")
        if X is not None:  # at least 2 rows: the CV folds and the scaling need them
            X, y = validate_data(self, X, y, accept_sparse="csr", y_numeric=True, ensure_min_samples=2)
        else:
            y = column_or_1d(y, warn=True)
            self.n_features_in_ = 0
        y = np.asarray(y, dtype=float)
        if len(y) == 0:
            raise ConfigError("srm: cannot fit on an empty training set")
        if not np.all(np.isfinite(y)):
            raise ConfigError("srm: targets y contain NaN or infinite values")
        blocks = self._blocks(X, len(y))
        cs = [self._forward(c, "curve points") for c in curve_list(curves, len(y), self.metric)]
        y = self._forward(y, "targets y")
        lengths = np.array([len(c) for c in cs])
        self.groups_ = self._groups(blocks, int(lengths.max()))
        self.T_ = int(lengths.max()) if "TS" in self.groups_ else 0
        self.n_ng_ = blocks["NG"].shape[1] if "NG" in self.groups_ else 0
        self.models_ = {}
        for tau in self._taus(self.groups_, self.T_):
            rows = np.flatnonzero(lengths >= tau)
            if len(rows) >= 2:
                offset = self._offset(cs, rows, tau)
                self.models_[tau] = self._fit_one(self._design(blocks, cs, rows, tau), y[rows] - offset)
        if not self.models_:
            raise ConfigError("srm: need at least 2 training architectures with curves of the requested lengths")
        self.taus_ = np.array(sorted(self.models_))
        return self

    # ---- target transform -------------------------------------------------------------------
    @property
    def _top(self) -> float:
        return self.ceiling * 1.005

    def _forward(self, values: np.ndarray, what: str) -> np.ndarray:
        """The modelled scale of accuracies ``values`` (``target_transform``)."""
        values = np.asarray(values, dtype=float)
        if self.target_transform == "none":
            return values
        if values.size and np.max(values) >= self._top:
            raise ConfigError(f"srm: {what} reach {float(np.max(values)):g}, above ceiling={self.ceiling:g}; "
                              "set ceiling to the metric's maximum (1 for fractions, 100 for %)")
        return -np.log(self._top - values)

    def _inverse(self, t: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Back to accuracies; the std by the delta method (|dy/dt| = top - y)."""
        if self.target_transform == "none":
            return t, std
        gap = np.exp(-t)
        return self._top - gap, std * gap

    def _offset(self, curves: list, rows: np.ndarray, tau: int) -> np.ndarray:
        """What the model adds back: y_tau of each row for ``target='increment'``, else 0."""
        if self.target == "final" or tau == 0 or "TS" not in self.groups_:
            return np.zeros(len(rows))
        return np.array([curves[i][tau - 1] for i in rows])

    def _fit_one(self, F: np.ndarray, t: np.ndarray) -> dict:
        """Standardize the non-NG columns and the target, then fit the base regressor with CV."""
        t_mean, t_scale = float(t.mean()), float(t.std()) or 1.0
        mean = F.mean(axis=0)
        scale = F.std(axis=0)
        if not self.scale_ng:
            mean[: self.n_ng_], scale[: self.n_ng_] = 0.0, 1.0
        scale[scale == 0] = 1.0
        scale[: self.n_ng_] /= self.ng_weight
        model, chosen, resid = fit_with_cv(self.regressor, (F - mean) / scale, (t - t_mean) / t_scale, cv=self.cv,
                                           search=self.search, n_estimators=self.n_estimators,
                                           random_state=self.random_state)
        return {"model": model, "mean": mean, "scale": scale, "t_mean": t_mean, "t_scale": t_scale, "params": chosen,
                "n_train": len(t), "residual_std": resid * t_scale}

    def _scaled_parts(self, m: dict, blocks: dict, curves: list, rows: np.ndarray, tau: int) -> list:
        """The standardized design of ``rows`` as column blocks; an unscaled sparse NG
        block stays sparse (the nu-SVR kernel is then computed block by block)."""
        ng, dense = self._parts(blocks, curves, rows, tau)
        k = 0 if ng is None else ng.shape[1]
        parts = [(dense - m["mean"][k:]) / m["scale"][k:]]
        if ng is not None:
            if self.scale_ng or not issparse(ng):
                ng = (ng.toarray() if issparse(ng) else ng) - m["mean"][:k]
                ng = ng / m["scale"][:k]
            elif self.ng_weight != 1.0:
                ng = ng.tocsr() * self.ng_weight
            parts.insert(0, ng)
        return parts

    def _route(self, lengths: np.ndarray) -> np.ndarray:
        """The tau of the model each row uses: the longest fitted prefix it has."""
        if "TS" not in self.groups_:
            return np.zeros(len(lengths), dtype=int)
        too_long = lengths > self.T_
        if too_long.any():
            raise ConfigError(f"srm: a curve has {int(lengths[too_long][0])} points but the models were fitted on "
                              f"curves of at most T={self.T_}; truncate it or refit with longer curves")
        idx = np.searchsorted(self.taus_, lengths, side="right") - 1
        if (idx < 0).any():
            raise ConfigError(f"srm: no model for curves of length {int(lengths[idx < 0][0])}; fitted curve lengths: "
                              f"{self.taus_.tolist()} (pass longer curves)")
        return self.taus_[idx]

    def _predict_modelled(self, X, curves):
        """Predictions and the CV residual std of the model used, in the modelled scale."""
        check_is_fitted(self, "models_", msg="srm is not fitted: call fit(X, y, curves) first")
        if X is not None:
            if not self.n_features_in_:
                raise ConfigError("srm was fitted without X (curves only); predict from curves with X=None")
            X = validate_data(self, X, reset=False, accept_sparse="csr")
            n = X.shape[0]
        elif curves is not None:
            n = len(curves)
        else:
            raise ConfigError("srm.predict needs X and/or curves")
        if X is None and self.n_features_in_:
            raise ConfigError(f"srm was fitted with {self.n_features_in_} columns of X; pass X to predict")
        cs = [self._forward(c, "curve points") for c in curve_list(curves, n, self.metric)]
        blocks = self._blocks(X, n)
        route = self._route(np.array([len(c) for c in cs], dtype=int))
        pred, std = np.zeros(n), np.zeros(n)
        for tau in np.unique(route):
            rows = np.flatnonzero(route == tau)
            m = self.models_[int(tau)]
            offset = self._offset(cs, rows, int(tau))
            pred[rows] = regressor_predict(m["model"], self._scaled_parts(m, blocks, cs, rows, int(tau)))
            pred[rows] = pred[rows] * m["t_scale"] + m["t_mean"] + offset
            std[rows] = m["residual_std"]
        return pred, std

    def predict(self, X, curves=None, return_std: bool = False):
        """Predicted final accuracy per row (and the CV residual std of the model used,
        mapped to accuracy units by the delta method when ``target_transform`` is set)."""
        pred, std = self._inverse(*self._predict_modelled(X, curves))
        return (pred, std) if return_std else pred

    def quantile(self, X, curves=None, q: float = 0.5) -> np.ndarray:
        """The ``q`` quantile of each row's final accuracy under a normal error with the
        model's CV residual std, taken in the modelled scale (so with ``log-error`` the
        interval is asymmetric: narrower towards the ceiling)."""
        from statistics import NormalDist

        if not 0.0 < q < 1.0:
            raise ConfigError(f"srm.quantile: q must be in (0, 1), got {q!r}")
        pred, std = self._predict_modelled(X, curves)
        std = np.where(np.isfinite(std), std, 0.0)
        return self._inverse(pred + NormalDist().inv_cdf(q) * std, std)[0]

    def residual_std(self, tau: int) -> float:
        """Out-of-fold residual standard deviation of model ``tau`` (in the modelled scale:
        accuracy units unless ``target_transform`` is set)."""
        return self.models_[int(self._route(np.array([tau]))[0])]["residual_std"]
