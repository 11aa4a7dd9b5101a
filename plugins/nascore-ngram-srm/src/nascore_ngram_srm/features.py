"""The feature sets of Section 4.2 / Table 3 of the N-gram/SRM paper.

* **TS** - the time series of validation accuracies ``y_1..y_tau`` (plus their first
  differences, as in Baker et al.'s SRMs),
* **AP** - architecture parameters: number of weights (log10) and number of layers,
* **HP** - training hyperparameters (initial learning rate, decay, ...; log10 of rates),
* **NG** - the N-gram features of the architecture (:mod:`.encoder`).

The SRM predictor takes ``X = [NG | AP | HP]`` (``ap_columns`` / ``hp_columns`` say how
many trailing columns are AP and HP) and the TS part through ``curves``;
:func:`design_matrix` stacks the blocks in that order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from nascore.api import ConfigError

GROUPS = ("TS", "AP", "HP", "NG")


def curve_values(curve, metric: str = "valid_accuracy") -> np.ndarray:
    """A learning curve as floats: accepts numbers or the trainer's per-epoch dicts."""
    if curve is None:
        return np.zeros(0)
    out = []
    for point in curve:
        if isinstance(point, Mapping):
            if metric not in point:
                raise ConfigError(f"learning-curve point {dict(point)!r} has no {metric!r}")
            point = point[metric]
        out.append(float(point))
    return np.asarray(out, dtype=float)


def curve_list(curves, n_rows: int | None, metric: str = "valid_accuracy") -> list[np.ndarray]:
    """Normalize ``curves`` (None, a 2-D array, or ragged sequences) to a list of arrays."""
    if curves is None:
        return [np.zeros(0) for _ in range(n_rows or 0)]
    if isinstance(curves, np.ndarray) and curves.ndim == 2:
        out = [row.astype(float) for row in curves]
    elif isinstance(curves, Sequence) or isinstance(curves, np.ndarray):
        out = [curve_values(c, metric) for c in curves]
    else:
        raise ConfigError(f"curves must be a list of learning-curve prefixes, got {type(curves).__name__}")
    if n_rows is not None and len(out) != n_rows:
        raise ConfigError(f"got {len(out)} curves for {n_rows} rows of X; pass one curve (prefix) per architecture")
    return out


def ts_features(prefixes: np.ndarray, differences: bool = True) -> np.ndarray:
    """TS block of rows ``y_1..y_tau`` (2-D, one prefix per row) and, with
    ``differences``, the first differences ``y_t - y_(t-1)``."""
    prefixes = np.asarray(prefixes, dtype=float)
    if not differences or prefixes.shape[1] < 2:
        return prefixes
    return np.hstack([prefixes, np.diff(prefixes, axis=1)])


def architecture_features(space, archs, task=None, metrics: Sequence[Mapping] | None = None) -> np.ndarray:
    """AP block: ``[log10(params), layers]`` per architecture.

    ``params`` comes from ``metrics`` (an evaluation's metrics) when given, else from
    ``space.cost(arch, task)``; layers from ``space.num_layers`` or the token count."""
    rows = []
    for i, arch in enumerate(archs):
        params = None if metrics is None else metrics[i].get("params")
        if params is None:
            if task is None:
                raise ConfigError("architecture_features needs a task (or metrics with 'params') to count weights")
            params = space.cost(arch, task)["params"]
        # this plugin's chain spaces count their weight layers; any other space counts its tokens
        layers = space.num_layers(arch) if hasattr(space, "num_layers") else len(space.tokens(arch))
        rows.append([math.log10(max(float(params), 1.0)), float(layers)])
    return np.asarray(rows, dtype=float).reshape(len(rows), 2)


def hyperparameter_features(configs: Sequence[Mapping], keys: Sequence[str]) -> np.ndarray:
    """HP block: the values of ``keys`` in each training configuration; rates and
    decays (keys containing 'lr', 'rate' or 'decay') enter as log10."""
    rows = []
    for cfg in configs:
        row = []
        for k in keys:
            if k not in cfg:
                raise ConfigError(f"hyperparameter {k!r} missing from a training configuration {dict(cfg)!r}")
            v = float(cfg[k])
            row.append(math.log10(v) if v > 0 and any(s in k for s in ("lr", "rate", "decay")) else v)
        rows.append(row)
    return np.asarray(rows, dtype=float).reshape(len(rows), len(keys))


def design_matrix(ng=None, ap=None, hp=None):
    """``(X, ap_columns, hp_columns)`` with ``X = [NG | AP | HP]`` (dense float array)."""
    blocks = [b for b in (ng, ap, hp) if b is not None]
    if not blocks:
        raise ConfigError("design_matrix needs at least one of ng, ap, hp")
    dense = [b.toarray() if sparse.issparse(b) else np.asarray(b, dtype=float) for b in blocks]
    n = {d.shape[0] for d in dense}
    if len(n) != 1:
        raise ConfigError(f"feature blocks have different row counts: {sorted(n)}")
    X = np.hstack(dense)
    return X, (0 if ap is None else dense[1 if ng is not None else 0].shape[1]), (0 if hp is None else dense[-1].shape[1])


def parse_feature_sets(spec: str) -> tuple[str, ...] | None:
    """``"TS+AP+HP"`` -> ('TS', 'AP', 'HP'); ``"all"`` -> None (every available group)."""
    if spec.strip().lower() == "all":
        return None
    parts = tuple(p.strip().upper() for p in spec.split("+") if p.strip())
    bad = [p for p in parts if p not in GROUPS]
    if bad or not parts:
        raise ConfigError(f"unknown feature set {bad[0] if bad else spec!r}; use 'all' or a '+'-union of "
                          f"{', '.join(GROUPS)} (e.g. 'TS+AP+HP')")
    return parts
