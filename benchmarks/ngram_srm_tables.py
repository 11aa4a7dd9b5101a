"""Tables 1-3 and Figures 1-4 of the N-gram/SRM paper, on our learning-curve set.

Reads ``benchmarks/results/ngram_srm_curves.json`` (built by ``ngram_srm_curves.py``:
random ``metaqnn`` networks trained on digits for T epochs).  For every random split,
SRMs are trained on ``--train`` architectures (the paper: 100) and scored on the rest
by R^2 (x100, as the paper's tables) and Kendall tau of the final validation accuracy.

* Table 1: N-gram feature-matrix size and sparsity for N = 2..8 (whole tokens and
  layer kinds; the paper's numbers for comparison),
* Table 2: nu-SVR / random forest / OLS / BLR with TS+AP+HP at 25% of the curve,
* Table 3: feature sets TS, AP, HP, TS+AP, AP+HP, TS+AP+HP, NG, TS+NG, TS+AP+HP+NG,
* Figure 1: NG-only and TS+NG accuracy against N,
* Figure 2: N-gram rows without and with (l2) normalization: mean and spread,
* Figures 3-4: accuracy of the sequential models against the curve length tau.

    python benchmarks/ngram_srm_tables.py [--quick] [--curves PATH]

Writes ``benchmarks/results/ngram_srm_tables.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAPER_TABLE1 = {3: [1000, 24], 5: [1000, 94], 8: [1000, 344], 10: [1000, 621], 13: [1000, 1113],
                15: [1000, 1417], 18: [1000, 1681]}
PAPER_TABLE2 = {"nu-svr": "94.22 +- 0.25", "random-forest": "92.27 +- 0.91", "ols": "93.22 +- 1.1"}
PAPER_TABLE3 = {"TS": "93.98 +- 0.15", "AP": "27.45 +- 4.25", "HP": "12.60 +- 1.70", "TS+AP": "84.09 +- 1.40",
                "AP+HP": "27.01 +- 2.50", "TS+AP+HP": "94.44 +- 0.14"}


def curve_set_path(quick: bool) -> Path:
    """The learning-curve set; with ``quick`` the quick one when the full one is absent."""
    for name in ("ngram_srm_curves.json",) + (("ngram_srm_curves_quick.json",) if quick else ()):
        if (RESULTS / name).is_file():
            return RESULTS / name
    raise SystemExit("no learning-curve set: run python benchmarks/ngram_srm_curves.py"
                     + (" --quick" if quick else "") + " first")


class CurveSet:
    """The learning-curve set as arrays: archs, curves (n x T), AP and HP blocks."""

    def __init__(self, path: Path):
        import nascore

        data = json.loads(path.read_text())
        cfg = dict(data["space"])
        self.space = nascore.create("search_space", cfg.pop("name"), **cfg)
        rows = data["evaluations"]
        self.archs = [self.space.from_string(r["arch"]) for r in rows]
        self.tokens = [r["tokens"] for r in rows]
        self.curves = np.array([r["curve"] for r in rows], dtype=float)
        self.y = np.array([r["valid_accuracy"] for r in rows], dtype=float)
        self.ap = np.array([[math.log10(r["params"]), r["layers"]] for r in rows], dtype=float)
        hp = np.array([[math.log10(r["lr"]), math.log10(r["weight_decay"]), r["momentum"]] for r in rows])
        self.hp = hp[:, hp.std(axis=0) > 0]  # only hyperparameters that vary carry information
        self.T = self.curves.shape[1]
        self.meta = {k: data[k] for k in ("runs", "space", "task", "epochs", "count")}


def scores(y, pred) -> tuple[float, float]:
    from nascore.metrics import kendall_tau
    from sklearn.metrics import r2_score

    return 100.0 * r2_score(y, pred), kendall_tau(pred, y)


def srm_split(cs: CurveSet, train, test, *, features, regressor="nu-svr", tau, ngram=None, seed=0):
    """R^2 (x100) and Kendall tau of one SRM fitted on ``train`` with prefixes of ``tau``."""
    from nascore_ngram_srm.encoder import NGramEncoder
    from nascore_ngram_srm.features import design_matrix
    from nascore_ngram_srm.srm import SequentialRegressionModels

    rows = np.r_[train, test]
    ng = None
    if "NG" in features:
        enc = NGramEncoder(**(ngram or {"n": 3})).fit([cs.tokens[i] for i in train])
        ng = enc.transform([cs.tokens[i] for i in rows])
    X, n_ap, n_hp = design_matrix(ng, cs.ap[rows], cs.hp[rows])
    srm = SequentialRegressionModels(regressor=regressor, features=features, ap_columns=n_ap, hp_columns=n_hp,
                                     taus=[tau] if "TS" in features else None, random_state=seed)
    curves = cs.curves[rows, :tau] if "TS" in features else None
    srm.fit(X[:len(train)], cs.y[train], None if curves is None else curves[:len(train)])
    pred = srm.predict(X[len(train):], None if curves is None else curves[len(train):])
    return scores(cs.y[test], pred)


def splits(n: int, n_train: int, count: int):
    out = []
    for seed in range(count):
        perm = np.random.default_rng(seed).permutation(n)
        out.append((seed, perm[:n_train], perm[n_train:]))
    return out


def summarize(values) -> dict:
    r2, tau = np.array(values).T
    return {"r2_mean": float(r2.mean()), "r2_std": float(r2.std()), "kendall_tau_mean": float(tau.mean()),
            "kendall_tau_std": float(tau.std())}


def table1(cs: CurveSet, ns) -> dict:
    from nascore_ngram_srm.encoder import ngram_table

    rng = np.random.default_rng(0)
    random_tokens = [cs.space.tokens(cs.space.sample(rng)) for _ in range(1000)]
    return {"curve_set_tokens": ngram_table(cs.tokens, ns),
            "curve_set_types": ngram_table(cs.tokens, ns, granularity="type"),
            "random_1000_types": ngram_table(random_tokens, sorted(PAPER_TABLE1), granularity="type"),
            "paper": PAPER_TABLE1}


def run(cs: CurveSet, n_train: int, n_splits: int, quick: bool) -> dict:
    tau = max(1, round(0.25 * cs.T))
    sp = splits(len(cs.y), n_train, n_splits)
    each = lambda **kw: summarize([srm_split(cs, tr, te, seed=s, **kw) for s, tr, te in sp])  # noqa: E731
    out = {"tau": tau, "table1": table1(cs, range(2, 9))}
    regs = ["nu-svr", "ols"] if quick else ["nu-svr", "random-forest", "ols", "blr"]
    out["table2"] = {r: each(features="TS+AP+HP", regressor=r, tau=tau) for r in regs}
    sets = ["TS", "TS+NG"] if quick else ["TS", "AP", "HP", "TS+AP", "AP+HP", "TS+AP+HP", "NG", "TS+NG",
                                          "TS+AP+HP+NG"]
    out["table3"] = {f: each(features=f, tau=tau) for f in sets}
    ns = [1, 2, 3] if quick else [1, 2, 3, 4, 5, 6]
    out["figure1"] = {f: {n: each(features=f, tau=tau, ngram={"n": n}) for n in ns} for f in ("NG", "TS+NG")}
    out["figure2"] = {norm: {f: each(features=f, tau=tau, ngram={"n": 3, "normalize": norm}) for f in ("NG", "TS+NG")}
                      for norm in ("none", "l2")}
    taus = [1, 2, 3] if quick else list(range(1, cs.T))
    out["figure3"] = {t: each(features="TS+AP+HP+NG", tau=t) for t in taus}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 splits, fewer rows (uses the quick curve set if present)")
    ap.add_argument("--curves", type=Path, default=None, help="learning-curve JSON (default: ngram_srm_curves.json)")
    ap.add_argument("--train", type=int, default=100, help="architectures the SRMs are trained on (paper: 100)")
    ap.add_argument("--splits", type=int, default=10, help="random train/test splits")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    path = args.curves or curve_set_path(args.quick)
    cs = CurveSet(path)
    n_train = min(args.train, len(cs.y) // 2)
    t = time.time()
    out = run(cs, n_train, 3 if args.quick else args.splits, args.quick)
    out.update(benchmark="ngram_srm_tables", quick=args.quick, curves=path.name,
               curve_set=cs.meta, train=n_train, test=len(cs.y) - n_train, hp_columns=int(cs.hp.shape[1]),
               paper={"table2": PAPER_TABLE2, "table3": PAPER_TABLE3}, seconds=time.time() - t)
    suffix = path.stem.removeprefix("ngram_srm_curves")  # "_mnist" for the MNIST curve set
    name = "ngram_srm_tables_quick.json" if args.quick else f"ngram_srm_tables{suffix}.json"
    from _common import results_dir, write_result

    write_result("ngram_srm_tables", out, quick=args.quick, path=results_dir() / name,
                 settings={"curves": path.name, "train": n_train, "splits": 3 if args.quick else args.splits},
                 seeds=list(range(3 if args.quick else args.splits)),
                 tuned_on="SRM and encoder settings of the ngram-srm plugin (chosen on ngram_srm_curves.json)")
    for key in ("table2", "table3"):
        for k, v in out[key].items():
            print(f"{key} {k:14s} R2 {v['r2_mean']:6.2f} +- {v['r2_std']:5.2f}  tau {v['kendall_tau_mean']:.3f}")


if __name__ == "__main__":
    main()
