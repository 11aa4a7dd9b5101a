"""SRM on NAS-Bench-201: rank correlation of predicted and true ``cifar10_valid``.

Features: ``ngram`` features of the cell's token sequence (NG) and the 12-epoch
accuracy ``cifar10_valid_12ep`` as a one-point learning curve (TS, tau = 1); the SRM
regresses the gain ``cifar10_valid - cifar10_valid_12ep`` (``target="increment"``), on
the log-error scale in the selected models (``target_transform="log-error"``).
For each of 5 seeds, 1,000 architectures are held out and the SRM is trained on 87 or
1,000 others; Kendall tau between predictions and ``cifar10_valid`` on the held-out set
is reported (mean, std) for the candidates and reference models below with default
hyperparameters and for the main row, which picks a model among :data:`CANDIDATES` by
3-fold CV inside the training set (the paper's Table 2 model selection), then tunes the
chosen regressor's hyperparameters by CV.
Reference (issue 4): NASLib's best predictor (XGBoost on adjacency + zero-cost
features) reaches 0.73 with 87 and 0.83 with 1,000 training architectures.

    python benchmarks/ngram_srm_nb201.py [--quick]

Writes ``benchmarks/results/ngram_srm_nb201.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ngram_srm_nb201.json"
TARGETS = {87: 0.75, 1000: 0.85}
REFERENCE = {87: 0.73, 1000: 0.83}
INC = {"target": "increment"}
#: the SRM settings of the selected models: the gain y_200 - y_12 on the log-error scale
#: -log(100.5 - acc), which spreads the accuracies near the top of the range
LOG = {"target": "increment", "target_transform": "log-error"}
#: candidate models (feature sets, regressor, encoder params, SRM params), chosen among
#: by 3-fold CV inside each training set.  ``positions`` tags each op with its edge
#: (``nor_conv_3x3@2``), so positional 1-grams are the one-hot op of every edge;
#: ``ng_weight`` < 1 lowers the N-gram columns against the standardized 12-epoch point
#: in the RBF kernel.  Settings were picked on development splits drawn from
#: architectures outside every held-out set below (see docs/plugins/ngram-srm.md).
CANDIDATES = {
    "nu-SVR, 1-grams (counts), NG weight 0.3, log-error": (
        "TS+NG", "nu-svr", {"n": 1, "binary": False}, {**LOG, "ng_weight": 0.3}),
    "nu-SVR, positional 1-grams, NG weight 0.3, log-error": (
        "TS+NG", "nu-svr", {"n": 1, "positions": True}, {**LOG, "ng_weight": 0.3}),
    "nu-SVR, positional 1-grams, log-error": ("TS+NG", "nu-svr", {"n": 1, "positions": True}, LOG),
}
#: single models with default hyperparameters, reported for comparison (not selected
#: among): the previous candidates and one-change ablations of the new ones
REFERENCE_MODELS = {
    "nu-SVR, 1-grams (counts, max-normalized)": ("TS+NG", "nu-svr", {"n": 1, "binary": False, "normalize": "max"}, INC),
    "nu-SVR, 1..2-grams (counts)": ("TS+NG", "nu-svr", {"n": 2, "binary": False}, INC),
    "random forest, 1-grams (counts)": ("TS+NG", "random-forest", {"n": 1, "binary": False}, INC),
    "random forest, 1..2-grams (counts)": ("TS+NG", "random-forest", {"n": 2, "binary": False}, INC),
    "nu-SVR, 1-grams (counts, max-normalized), log-error": (
        "TS+NG", "nu-svr", {"n": 1, "binary": False, "normalize": "max"}, LOG),
    "nu-SVR, 1-grams (counts), NG weight 0.3 (no log-error)": (
        "TS+NG", "nu-svr", {"n": 1, "binary": False}, {**INC, "ng_weight": 0.3}),
    "nu-SVR, positional 1-grams (no log-error)": ("TS+NG", "nu-svr", {"n": 1, "positions": True}, INC),
    "nu-SVR, positional 1..2-grams, log-error": ("TS+NG", "nu-svr", {"n": 2, "positions": True}, LOG),
    "random forest, positional 1-grams, log-error": ("TS+NG", "random-forest", {"n": 1, "positions": True}, LOG),
}
BASELINE = "TS alone (12-epoch accuracy as the ranking)"
SELECTED = "TS+NG, model selected by inner CV"


def load_table():
    root = Path(os.environ.get("NASCORE_DATA", HERE.parent.parent / "shared" / "data"))
    with (root / "nb201" / "nb201.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    col = lambda name: np.array([float(r[name]) for r in rows])  # noqa: E731
    return [r["arch_str"] for r in rows], col("cifar10_valid"), col("cifar10_valid_12ep")


def split(seed: int, n: int, n_train: int, n_test: int):
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test:n_test + n_train], perm[:n_test]


def fit_predict(spec, data, train, test, seed, search=True):
    """Fit the SRM of ``spec`` on ``train`` rows and predict ``test`` rows."""
    from nascore_ngram_srm.encoder import NGramEncoder
    from nascore_ngram_srm.srm import SequentialRegressionModels

    archs, y, y12, space = data
    features, regressor, enc_params, extra = spec
    rows = np.r_[train, test]
    enc = NGramEncoder(**enc_params).set_space(space).fit([archs[i] for i in train])
    X = enc.transform([archs[i] for i in rows])
    srm = SequentialRegressionModels(regressor=regressor, features=features, n_estimators=100,
                                     random_state=seed, search=search, **extra)
    curves = y12[rows][:, None]
    srm.fit(X[:len(train)], y[train], curves[:len(train)])
    return srm.predict(X[len(train):], curves[len(train):])


def one_split(data, n_train, seed, n_test) -> dict:
    """Kendall tau on one split of: the 12-epoch baseline, every candidate with default
    hyperparameters, and the candidate chosen by 3-fold CV inside the training set
    (then tuned by the SRM's own CV)."""
    from sklearn.model_selection import KFold

    from nascore.metrics import kendall_tau

    y, y12 = data[1], data[2]
    train, test = split(seed, len(y), n_train, n_test)
    out = {BASELINE: kendall_tau(y12[test], y[test])}
    for name, spec in REFERENCE_MODELS.items():
        out[name] = kendall_tau(fit_predict(spec, data, train, test, seed, search=False), y[test])
    inner = {}
    for name, spec in CANDIDATES.items():
        out[name] = kendall_tau(fit_predict(spec, data, train, test, seed, search=False), y[test])
        inner[name] = float(np.mean([
            kendall_tau(fit_predict(spec, data, train[a], train[b], seed, search=False), y[train[b]])
            for a, b in KFold(3, shuffle=True, random_state=seed).split(train)]))
    pick = max(inner, key=inner.get)
    t = time.perf_counter()
    out[SELECTED] = kendall_tau(fit_predict(CANDIDATES[pick], data, train, test, seed), y[test])
    return {"taus": out, "chosen": pick, "inner_cv": inner, "selected_seconds": time.perf_counter() - t}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, 300 held-out architectures")
    args = ap.parse_args(argv)
    import torch

    import nascore

    torch.set_num_threads(1)
    space = nascore.create("search_space", "nb201")
    strings, y, y12 = load_table()
    data = ([space.from_string(s) for s in strings], y, y12, space)
    seeds, n_test = (range(2), 300) if args.quick else (range(5), 1000)
    rows = []
    for n_train in (87, 1000):
        splits = [one_split(data, n_train, seed, n_test) for seed in seeds]
        for name in [BASELINE, *REFERENCE_MODELS, *CANDIDATES, SELECTED]:
            taus = [sp["taus"][name] for sp in splits]
            row = {"variant": name, "train": n_train, "kendall_tau_mean": float(np.mean(taus)),
                   "kendall_tau_std": float(np.std(taus)), "per_seed": [float(t) for t in taus]}
            if name == SELECTED:
                row.update(chosen=[sp["chosen"] for sp in splits], inner_cv=[sp["inner_cv"] for sp in splits],
                           fit_seconds=float(np.mean([sp["selected_seconds"] for sp in splits])))
            rows.append(row)
            print(f"{name:48s} n={n_train:5d} tau={np.mean(taus):.3f} +- {np.std(taus):.3f}", flush=True)
    main_rows = {r["train"]: r for r in rows if r["variant"] == SELECTED}
    summary = {str(n): {"kendall_tau": main_rows[n]["kendall_tau_mean"], "std": main_rows[n]["kendall_tau_std"],
                        "target": TARGETS[n], "met": main_rows[n]["kendall_tau_mean"] >= TARGETS[n],
                        "naslib_reference": REFERENCE[n]} for n in (87, 1000)}
    out = {"benchmark": "ngram_srm_nb201", "quick": args.quick, "held_out": n_test, "seeds": len(seeds),
           "target_column": "cifar10_valid", "curve_column": "cifar10_valid_12ep",
           "candidates": {k: {"features": v[0], "regressor": v[1], "encoder": v[2], "srm": v[3]}
                          for k, v in CANDIDATES.items()},
           "reference_models": {k: {"features": v[0], "regressor": v[1], "encoder": v[2], "srm": v[3]}
                                for k, v in REFERENCE_MODELS.items()},
           "summary": summary, "rows": rows}
    path = RESULTS.with_name("ngram_srm_nb201_quick.json") if args.quick else RESULTS
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
