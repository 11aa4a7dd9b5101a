"""The STEERAGE benchmarks' quick modes (run by make test): they write the study shape
with provenance, and their statistics are those of their own rows."""

import json
import math
import statistics
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    monkeypatch.setenv("NASCORE_BENCH_RESULTS", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCH))
    return tmp_path


def test_paired_quick_mode_writes_paired_statistics_of_its_own_rows(bench):
    import steerage_paired

    steerage_paired.main(["--quick"])
    data = json.loads((bench / "steerage_paired_quick.json").read_text())
    prov = data["provenance"]
    assert {"commit", "dirty", "command", "settings", "seeds", "tuned_on"} <= set(prov)
    assert prov["seeds"] == [0, 1] and prov["settings"]["datasets"] == ["wine"]
    runs = data["units"]["wine"]
    assert [r["seed"] for r in runs] == [0, 1]
    # the baseline MLP 13-26-13-3: 13*26 + 26*13 + 13*3 weights + 26 + 13 + 3 biases
    assert all(r["baseline"]["params"] == 757 and r["baseline"]["hidden"] == [26, 13] for r in runs)
    for arm in ("baseline", "gs", "gs_ls"):
        values = [r[arm]["test_accuracy"] for r in runs]
        assert data["arms"][f"wine/{arm}"]["n"] == 2
        assert data["arms"][f"wine/{arm}"]["mean"] == pytest.approx(statistics.fmean(values))
        # 36 test rows: every accuracy is a multiple of 100/36
        assert all(abs(v * 36 / 100 - round(v * 36 / 100)) < 1e-6 for v in values)
    comp = next(c for c in data["comparisons"] if c["arm"] == "wine/gs_ls" and c["against"] == "wine/baseline"
                and c["metric"] == "test_accuracy")
    diffs = [r["gs_ls"]["test_accuracy"] - r["baseline"]["test_accuracy"] for r in runs]
    assert comp["n"] == 2 and comp["diff_mean"] == pytest.approx(statistics.fmean(diffs))
    if comp["diff_se"]:
        assert comp["diff_se"] == pytest.approx(statistics.stdev(diffs) / math.sqrt(2))
    assert comp["verdict"] == "tie"  # two seeds can never support a verdict (>= 5 needed)
    # the GS answer is an evaluated architecture chosen on the cross-validated score
    assert all(r["gs"]["cv_accuracy"] is not None for r in runs)
    assert {t["dataset"] for t in data["targets"]} == {"wine"}


def test_lenet5_quick_mode_regenerates_with_provenance(bench, mnist_root):
    import steerage_lenet5_mnist

    steerage_lenet5_mnist.main(["--quick"])
    data = json.loads((bench / "steerage_lenet5_mnist_quick.json").read_text())
    assert data["provenance"]["settings"]["fc_reading"] == "flatten"
    assert data["provenance"]["seeds"] == [0] and [r["seed"] for r in data["runs"]] == [0]
    row = data["runs"][0]["sizes"]["14"]
    # default reading: the classifier reads the flattened conv output (conv2 x s^2, no FC1 layer)
    tokens = row["gs"]["tokens"]
    assert sum(t.startswith("FC-") for t in tokens) == 2
    assert row["gs_ls"]["params"] <= 10_000 and row["target_met"] == (
        100 - row["gs_ls"]["test_accuracy"] <= 1.0 and row["gs_ls"]["params"] <= 10_000)
    # the mean over one seed is that seed's error; one seed (< 3) is never judged against the target
    err = data["arms"]["14/gs_ls/test_error"]
    assert err["n"] == 1 and err["mean"] == pytest.approx(100 - row["gs_ls"]["test_accuracy"])
    assert data["arms"]["14/gs_ls/params"]["mean"] == row["gs_ls"]["params"]
    assert [t["met"] for t in data["targets"]] == [None]


def test_ees_nb201_quick_mode_reports_the_best_evaluated_architecture(bench, nb201_table):
    """Issue 18: on NB-201 (tabular, 100 queries) the run's best is the evaluated
    maximum of the feedback and the budget buys 100 distinct architectures."""
    import steerage_ees_nb201

    out = steerage_ees_nb201.main(["--quick"])
    data = json.loads((bench / "steerage_ees_nb201_quick.json").read_text())
    assert data["provenance"]["seeds"] == [0, 1] and data["summary"] == out["summary"]
    runs = data["runs"]["cifar10"]
    assert len(runs) == 2
    for r in runs:
        assert r["best_is_evaluated_max"] and r["best_valid"] == r["evaluated_max_valid"]
        assert r["evaluations"] == r["distinct"] == r["budget_used"] == 100
        # the table's highest CIFAR-10 validation accuracy is 91.607%: no run reports more
        assert 85.0 < r["best_valid"] <= 91.606667
    assert all(t["met"] for t in data["targets"])


def test_paired_combine_recomputes_the_study_from_its_parts(bench):
    """--combine: each dataset from one part, the analysis recomputed from the units, every
    part's provenance kept; a dataset in two parts is refused."""
    import steerage_paired

    quick = json.loads((BENCH / "results" / "steerage_paired_quick.json").read_text())
    a, b = bench / "a.json", bench / "b.json"
    a.write_text(json.dumps({**quick, "quick": False}))
    b.write_text(json.dumps({**quick, "quick": False, "units": {"digits": quick["units"]["wine"]},
                             "provenance": {**quick["provenance"], "commit": "0" * 40}}))
    out = steerage_paired.main(["--name", "combined", "--combine", str(a), str(b)])
    data = json.loads((bench / "combined.json").read_text())
    assert list(data["units"]) == ["wine", "digits"] and not data["complete"]  # 2 of the 4 datasets
    assert data["arms"]["digits/gs_ls"] == pytest.approx(quick["arms"]["wine/gs_ls"])
    assert data["arms"]["wine/baseline"] == pytest.approx(quick["arms"]["wine/baseline"])
    assert [p["provenance"]["commit"] for p in data["parts"]] == [quick["provenance"]["commit"], "0" * 40]
    assert data["provenance"]["seeds"] == [0, 1] and out["target_summary"] == data["target_summary"]
    with pytest.raises(SystemExit, match="already in another part"):
        steerage_paired.main(["--name", "combined", "--combine", str(a), str(a)])
