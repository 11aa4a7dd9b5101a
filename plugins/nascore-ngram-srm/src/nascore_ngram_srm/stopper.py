"""``srm-stop``: early termination of training with sequential regression models
(Section 3 of the N-gram/SRM paper; the rule of Baker et al. 2018, Section 4).

In the driver, :meth:`SRMEarlyStopping.update` fits an SRM on the completed learning
curves seen so far (once there are ``min_curves`` of them).  Inside training, after
``fraction`` of the epochs (the paper's 25%; optionally again after each further
``fraction``, ``repeats`` times), :meth:`SRMEarlyStopping.should_stop`
predicts the final accuracy ``y_hat`` from the curve prefix and stops the candidate when
it is unlikely to beat the best accuracy found so far: with ``sigma`` the SRM's
out-of-fold residual standard deviation and ``y_hat ~ N(pred, sigma^2)``, training stops
when ``P(y_T >= y_best) < 1 - confidence``, i.e. ``pred + z_confidence * sigma < y_best``.
With ``transform = "log-error"`` the SRM models ``-log(ceiling + 0.5% - acc)`` and the
normal error lives on that scale (the ``confidence`` quantile is mapped back to accuracy
with :meth:`SequentialRegressionModels.quantile`).

The object is plain data plus fitted scikit-learn models, so it pickles: the pipeline
ships it to worker processes with each job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs
import numpy as np

from nascore.api import in_range, one_of, param

from .features import curve_values
from .regressors import REGRESSORS


def _field(ev, name, default=None):
    return ev.get(name, default) if isinstance(ev, Mapping) else getattr(ev, name, default)


@attrs.define(slots=False, eq=False)
class SRMEarlyStopping:
    """Stop a candidate whose SRM-predicted final accuracy, after ``fraction`` of its
    epochs, is below the best seen so far with probability ``confidence``."""

    fraction: float = param(0.15, help="fraction of the epochs observed before the first prediction (the paper: 25%; "
                            "0.15 chosen on the digits curve set, benchmarks/ngram_srm_acceleration.py)",
                            validator=in_range(0.0, 1.0, low_open=True, high_open=True))
    confidence: float = param(0.999, help="stop when P(final >= best) < 1 - confidence under the SRM's error",
                              validator=in_range(0.0, 1.0, low_open=True, high_open=True))
    min_curves: int = param(10, help="complete learning curves needed before any candidate is stopped",
                            validator=in_range(2))
    regressor: str = param("nu-svr", help="base regressor of the SRM", validator=one_of(*REGRESSORS))
    transform: str = param("log-error", help="SRM target/curve scale: 'none' or 'log-error' (-log(ceiling + 0.5% - acc))",
                           validator=one_of("none", "log-error"))
    ceiling: float = param(100.0, help="largest possible value of the metric (for transform='log-error')",
                           validator=in_range(0.0, low_open=True))
    target: str = param("final", help="SRM target: 'final' (y_T) or 'increment' (y_T - y_tau)",
                        validator=one_of("final", "increment"))
    repeats: int = param(6, help="check after every `fraction` of the epochs, this many times (1: once, as the paper)",
                         validator=in_range(1))
    cv: int = param(3, help="cross-validation folds of the SRM", validator=in_range(2))
    metric: str = param("valid_accuracy", help="learning-curve metric predicted")
    random_state: int = param(0, help="seed of the SRM's folds")

    # ---- driver side ---------------------------------------------------------------------
    def update(self, evaluations) -> None:
        """Fit the SRM on every complete curve among ``evaluations`` (all so far) and
        record the best final accuracy; a no-op until ``min_curves`` curves exist."""
        curves, finals = [], []
        best = -math.inf
        # by key: the fit must not depend on the order in which a batch's results came back
        for ev in sorted(evaluations, key=lambda e: str(_field(e, "key", "") or "")):
            if _field(ev, "status") != "ok":
                continue
            value = (_field(ev, "metrics") or {}).get(self.metric)
            curve = curve_values(_field(ev, "curve") or [], self.metric)
            if value is None or not len(curve) or not np.all(np.isfinite(curve)):
                continue
            best = max(best, float(value))
            curves.append(curve)
            finals.append(float(value))
        self.best_ = best if math.isfinite(best) else None
        if not curves:
            return
        T = max(len(c) for c in curves)
        full = [i for i, c in enumerate(curves) if len(c) == T]
        unchanged = len(full) == getattr(self, "n_curves_", -1) and T == getattr(self, "T_", T)
        if len(full) < self.min_curves or unchanged:
            return
        self._fit([curves[i] for i in full], [finals[i] for i in full], T)

    def check_points(self, epochs: int) -> list[int]:
        """Epoch counts after which ``should_stop`` predicts: ``fraction``, 2 ``fraction``,
        ... (``repeats`` of them) of ``epochs``, each before the last epoch."""
        points = {min(max(1, int(round(k * self.fraction * epochs))), epochs - 1) for k in range(1, self.repeats + 1)}
        return sorted(p for p in points if p < epochs)

    def _fit(self, curves: list, finals: list, T: int) -> None:
        from .srm import SequentialRegressionModels

        taus = self.check_points(T)
        if not taus or taus[0] < 1:
            return
        srm = SequentialRegressionModels(regressor=self.regressor, features="TS", taus=taus, cv=self.cv,
                                         target_transform=self.transform, ceiling=self.ceiling, target=self.target,
                                         random_state=self.random_state)
        self.srm_ = srm.fit(None, np.asarray(finals), [c for c in curves])
        self.T_, self.n_curves_ = T, len(curves)

    # ---- worker side -----------------------------------------------------------------------
    def should_stop(self, curve, epochs: int | None = None) -> tuple[bool, float | None]:
        """``(stop, predicted_final)`` for a partial ``curve`` of a run of ``epochs``."""
        srm, best = getattr(self, "srm_", None), getattr(self, "best_", None)
        epochs = self.T_ if epochs is None and srm is not None else epochs
        if srm is None or best is None or epochs != self.T_:
            return False, None
        values = curve_values(curve, self.metric)
        if len(values) not in self.check_points(epochs) or not np.all(np.isfinite(values)):
            return False, None
        pred = float(srm.predict(None, [values])[0])
        bound = float(srm.quantile(None, [values], self.confidence)[0])
        return bound < best, pred
