"""SRM on NAS-Bench-201: rank correlation of predicted and true ``cifar10_valid``.

Features: ``ngram`` features of the cell's token sequence (NG) and the 12-epoch
accuracy ``cifar10_valid_12ep`` as a one-point learning curve (TS, tau = 1); the SRM
regresses the gain ``cifar10_valid - cifar10_valid_12ep`` (``target="increment"``), on
the log-error scale in the selected models (``target_transform="log-error"``).
Splits are files: ``benchmarks/splits/ngram_srm_nb201.json`` holds the *development*
splits (seeds 0..4 of the first protocol: 1,000 held-out and 87 / 1,000 training
architectures each), on which the candidate list and every setting below were designed,
and the *report* splits, drawn (seeds 100..104) from architectures that are in no
development split, train and held-out alike, and used for nothing but this report.  Each
split: the SRM is trained on 87 or 1,000 architectures and Kendall tau between its
predictions and ``cifar10_valid`` on the 1,000 held-out ones is reported for the
baseline (12-epoch accuracy alone), the candidates with default hyperparameters, and the
main row, which picks a model among :data:`CANDIDATES` by 3-fold CV inside the training
set (the paper's Table 2 model selection), then tunes the chosen regressor's
hyperparameters by CV.  The selected model is compared with the baseline, paired by split.
Reference (issue 4): NASLib's best predictor (XGBoost on adjacency + zero-cost
features) reaches 0.73 with 87 and 0.83 with 1,000 training architectures.

    python benchmarks/ngram_srm_nb201.py [--quick] [--splits report|development] [--references]
    python benchmarks/ngram_srm_nb201.py --make-splits     # (re)write the splits file (deterministic)

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
#: in the RBF kernel.  The list and the settings were designed on the development
#: splits of benchmarks/splits/ngram_srm_nb201.json; the report splits were never used.
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


SPLITS = HERE / "splits" / "ngram_srm_nb201.json"
DEV_SEEDS, REPORT_SEEDS, N_TEST, N_TRAIN = (0, 1, 2, 3, 4), (100, 101, 102, 103, 104), 1000, (87, 1000)


def split(seed: int, n: int, n_train: int, n_test: int):
    """The first protocol's split (the development splits are these, seeds 0..4)."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n_test:n_test + n_train], perm[:n_test]


def make_splits(n: int) -> dict:
    """Development splits (the first protocol's, seeds 0..4) and report splits drawn from
    the architectures in none of them; each: held-out ``test`` and nested ``train_87`` <
    ``train_1000``."""
    dev, used = [], set()
    for seed in DEV_SEEDS:
        train, test = split(seed, n, max(N_TRAIN), N_TEST)
        dev.append({"seed": seed, "test": test.tolist(), **{f"train_{k}": train[:k].tolist() for k in N_TRAIN}})
        used.update(train.tolist(), test.tolist())
    fresh = np.array(sorted(set(range(n)) - used))
    report = []
    for seed in REPORT_SEEDS:
        perm = fresh[np.random.default_rng(seed).permutation(len(fresh))]
        test, train = perm[:N_TEST], perm[N_TEST:N_TEST + max(N_TRAIN)]
        report.append({"seed": seed, "test": test.tolist(), **{f"train_{k}": train[:k].tolist() for k in N_TRAIN}})
    return {"rows": n, "table": "nb201/nb201.csv (official arch_index order)",
            "rule": "development: seeds 0..4 of np.random.default_rng(seed).permutation(rows), test = first 1000, "
                    "train = next 1000 (train_87 its first 87); report: the same from the rows in no "
                    "development split, seeds 100..104",
            "development": dev, "report": report}


def load_splits(kind: str) -> list[dict]:
    return json.loads(SPLITS.read_text())[kind]


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


def one_split(data, n_train, seed, n_test, sp: dict | None = None, references: bool = True) -> dict:
    """Kendall tau on one split of: the 12-epoch baseline, every candidate with default
    hyperparameters, and the candidate chosen by 3-fold CV inside the training set
    (then tuned by the SRM's own CV)."""
    from sklearn.model_selection import KFold

    from nascore.metrics import kendall_tau

    y, y12 = data[1], data[2]
    if sp is not None:
        train, test = np.array(sp[f"train_{n_train}"]), np.array(sp["test"][:n_test])
    else:
        train, test = split(seed, len(y), n_train, n_test)
    out = {BASELINE: kendall_tau(y12[test], y[test])}
    for name, spec in (REFERENCE_MODELS if references else {}).items():
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


#: bench_check: fits are seeded and deterministic on one machine; taus within 0.01 across
#: machines (BLAS), the inner-CV choice may flip between near-equal candidates
CHECK = {"ignore": ["rows.*.chosen", "rows.*.inner_cv*", "rows.*.fit_seconds"],
         "bands": {"*kendall_tau*": 0.01, "*per_seed*": 0.01, "arms.*": 0.01, "comparisons.*": 0.02,
                   "summary.*.kendall_tau": 0.01, "summary.*.se": 0.01}}


_DATA = None


def _init_worker() -> None:
    """Each worker process builds the table's architectures once."""
    global _DATA
    import torch

    import nascore

    torch.set_num_threads(1)
    space = nascore.create("search_space", "nb201")
    strings, y, y12 = load_table()
    _DATA = ([space.from_string(s) for s in strings], y, y12, space)


def _split_job(args) -> dict:
    n_train, sp, n_test, references = args
    if _DATA is None:
        _init_worker()
    return one_split(_DATA, n_train, sp["seed"], n_test, sp, references)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 report splits, 300 held-out architectures, no references")
    ap.add_argument("--splits", choices=["report", "development"], default="report")
    ap.add_argument("--references", action="store_true", help="also the reference models (defaults only)")
    ap.add_argument("--make-splits", action="store_true", help="write benchmarks/splits/ngram_srm_nb201.json")
    ap.add_argument("--workers", type=int, default=1, help="processes, one split each (results do not depend on it)")
    args = ap.parse_args(argv)
    import torch

    import nascore
    from _common import write_result
    from nascore.evidence import paired, summarize

    torch.set_num_threads(1)
    space = nascore.create("search_space", "nb201")
    strings, y, y12 = load_table()
    if args.make_splits:
        SPLITS.parent.mkdir(parents=True, exist_ok=True)
        SPLITS.write_text(json.dumps(make_splits(len(y))) + "\n")
        print(f"wrote {SPLITS}")
        return
    splits = load_splits(args.splits)
    n_test = N_TEST
    if args.quick:
        splits, n_test = splits[:2], 300
    seeds = [sp["seed"] for sp in splits]
    rows, arms, comparisons = [], {}, []
    pool = None
    if args.workers > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(args.workers, initializer=_init_worker)
    for n_train in N_TRAIN:
        jobs = [(n_train, sp, n_test, args.references) for sp in splits]
        res = pool.map(_split_job, jobs) if pool else [_split_job(j) for j in jobs]
        names = [BASELINE, *(REFERENCE_MODELS if args.references else {}), *CANDIDATES, SELECTED]
        for name in names:
            taus = [r["taus"][name] for r in res]
            row = {"variant": name, "train": n_train, "kendall_tau_mean": float(np.mean(taus)),
                   "kendall_tau_se": summarize(taus)["se"], "per_seed": [float(t) for t in taus]}
            if name == SELECTED:
                row.update(chosen=[r["chosen"] for r in res], inner_cv=[r["inner_cv"] for r in res],
                           fit_seconds=float(np.mean([r["selected_seconds"] for r in res])))
            rows.append(row)
            print(f"{name:48s} n={n_train:5d} tau={np.mean(taus):.3f}", flush=True)
        sel, base = [r["taus"][SELECTED] for r in res], [r["taus"][BASELINE] for r in res]
        arms[f"{n_train}/selected"], arms[f"{n_train}/12-epoch alone"] = summarize(sel), summarize(base)
        comparisons.append({"arm": f"{n_train}/selected", "against": f"{n_train}/12-epoch alone",
                            "metric": "kendall_tau", **paired(sel, base)})
    main_rows = {r["train"]: r for r in rows if r["variant"] == SELECTED}
    summary = {str(n): {"kendall_tau": main_rows[n]["kendall_tau_mean"], "se": main_rows[n]["kendall_tau_se"],
                        "target": TARGETS[n], "met_on_mean": main_rows[n]["kendall_tau_mean"] >= TARGETS[n],
                        "naslib_reference": REFERENCE[n]} for n in N_TRAIN}
    out = {"title": f"SRM on NAS-Bench-201: Kendall tau on {args.splits} splits",
           "description": (f"{len(splits)} {args.splits} splits from benchmarks/splits/ngram_srm_nb201.json "
                           f"(seeds {seeds}), {n_test} held-out architectures each; " +
                           ("report splits: architectures in no development split, used for nothing else."
                            if args.splits == "report" else "development splits: the design was chosen on these.")
                           + " Targets (issue 4) 0.75 / 0.85 are judged on the mean; the paired comparison is "
                             "selected model vs the 12-epoch accuracy alone."),
           "held_out": n_test, "splits": args.splits, "target_column": "cifar10_valid",
           "curve_column": "cifar10_valid_12ep",
           "candidates": {k: {"features": v[0], "regressor": v[1], "encoder": v[2], "srm": v[3]}
                          for k, v in CANDIDATES.items()},
           "summary": summary, "arms": arms, "comparisons": comparisons, "rows": rows}
    name = "ngram_srm_nb201" if args.splits == "report" else "ngram_srm_nb201_development"
    write_result(name, out, quick=args.quick, seeds=seeds,
                 settings={"splits": args.splits, "splits_file": "benchmarks/splits/ngram_srm_nb201.json",
                           "held_out": n_test, "train": list(N_TRAIN), "references": args.references},
                 tuned_on="candidate list and SRM/encoder settings designed on the development splits "
                          "(seeds 0..4 of benchmarks/splits/ngram_srm_nb201.json); inner 3-fold CV inside "
                          "each training set picks among the candidates")


if __name__ == "__main__":
    main()
