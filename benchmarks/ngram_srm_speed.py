"""Throughput of the ``ngram`` encoder and the ``srm`` predictor (architectures/s).

* encode: ``NGramEncoder(n=3).transform`` of 10,000 ``metaqnn`` architectures (tokens
  view included: "cold" with a fresh space, "warm" with its memoized tokens) and of
  10,000 ``nb201`` cells,
* predict: ``SequentialRegressionModels.predict`` (nu-SVR, TS+NG at tau = 5) of 10,000
  rows, and encode + predict together.

The SRM is fitted on the learning-curve set (``ngram_srm_curves.json``) when present,
else on synthetic curves.  Median of ``--repeats`` timings; target (DESIGN.md):
>= 10^4 architectures/s for predict.

    python benchmarks/ngram_srm_speed.py [--quick]

Writes ``benchmarks/results/ngram_srm_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET = 1e4


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def training_data(space, rng):
    path = RESULTS / "ngram_srm_curves.json"
    if path.is_file():
        rows = json.loads(path.read_text())["evaluations"]
        archs = [space.from_string(r["arch"]) for r in rows]
        return archs, np.array([r["curve"] for r in rows]), np.array([r["valid_accuracy"] for r in rows]), path.name
    archs = [space.sample(rng) for _ in range(200)]
    top = rng.uniform(60, 99, len(archs))
    curves = top[:, None] - 30 * np.exp(-0.3 * np.arange(1, 21))[None, :] + rng.normal(0, 0.5, (len(archs), 20))
    return archs, curves, curves[:, -1], "synthetic"


#: bench_check: throughputs and whether they meet the target depend on the machine
CHECK = {"ignore": ["met", "archs_per_second*"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 architectures, 2 repeats")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    import torch

    import nascore
    from nascore_ngram_srm.encoder import NGramEncoder
    from nascore_ngram_srm.srm import SequentialRegressionModels

    torch.set_num_threads(1)
    n, repeats = (2000, 2) if args.quick else (10_000, args.repeats)
    rng = np.random.default_rng(0)
    space = nascore.create("search_space", "metaqnn")
    archs, curves, y, source = training_data(space, rng)
    tau = max(1, round(0.25 * curves.shape[1]))
    enc = NGramEncoder(n=3).set_space(space).fit(archs)
    srm = SequentialRegressionModels(features="TS+NG", taus=[tau]).fit(enc.transform(archs), y, curves[:, :tau])
    pool = [space.sample(rng) for _ in range(n)]
    prefixes = curves[rng.integers(len(curves), size=n), :tau]
    X = enc.transform(pool)
    nb201 = nascore.create("search_space", "nb201")
    cells = [nb201.sample(rng) for _ in range(n)]
    enc201 = NGramEncoder(n=3).set_space(nb201).fit(cells[:1000])
    def cold():  # a fresh space: no memoized tokens, every genome read again
        enc.set_space(nascore.create("search_space", "metaqnn"))
        enc.transform(pool)

    secs = {
        "encode_metaqnn_cold": timed(cold, repeats),
        "encode_metaqnn_warm": timed(lambda: enc.transform(pool), repeats),
        "encode_nb201": timed(lambda: enc201.transform(cells), repeats),
        "predict": timed(lambda: srm.predict(X, prefixes), repeats),
        "encode_and_predict": timed(lambda: srm.predict(enc.transform(pool), prefixes), repeats),
    }
    rates = {k: n / v for k, v in secs.items()}
    out = {"benchmark": "ngram_srm_speed", "quick": args.quick, "architectures": n, "repeats": repeats,
           "fitted_on": source, "training_rows": len(y), "tau": tau, "features": int(X.shape[1]),
           "support_vectors": int(len(srm.models_[tau]["model"].support_)),
           "archs_per_second": rates, "target_predict": TARGET, "met": rates["predict"] >= TARGET}
    from _common import write_result

    write_result("ngram_srm_speed", out, quick=args.quick, settings={"architectures": n, "repeats": repeats},
                 seeds=[0], tuned_on=None)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
