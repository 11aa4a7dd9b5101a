"""nascore.evidence: statistics checked against values worked out by hand, and provenance."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
from scipy.stats import wilcoxon

from nascore.errors import ConfigError
from nascore.evidence import comparisons, paired, provenance, summarize, verdict

ROOT = Path(__file__).resolve().parents[1]


def test_summarize_by_hand():
    # mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32; sample variance 32/7; se = sqrt(32/7/8)
    s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert s["n"] == 8
    assert s["mean"] == pytest.approx(5.0, abs=1e-12)
    assert s["se"] == pytest.approx(math.sqrt(4 / 7), abs=1e-12)
    assert summarize([3.5]) == {"n": 1, "mean": 3.5, "se": None}
    assert summarize([]) == {"n": 0, "mean": None, "se": None}


def test_paired_by_hand():
    a = [1.0, 2.0, 4.0, 7.0, 11.0]
    b = [0.5, 2.5, 3.0, 5.0, 8.0]
    # d = [0.5, -0.5, 1, 2, 3]: mean 1.2; squared deviations .49+2.89+.04+.64+3.24 = 7.3
    # sample variance 7.3/4 = 1.825; se = sqrt(1.825/5) = sqrt(0.365)
    c = paired(a, b)
    assert c["n"] == 5
    assert c["diff_mean"] == pytest.approx(1.2, abs=1e-12)
    assert c["diff_se"] == pytest.approx(math.sqrt(0.365), abs=1e-12)
    assert c["z"] == pytest.approx(1.2 / math.sqrt(0.365), abs=1e-9)  # 1.986: not a "beat"
    assert c["p_value"] == pytest.approx(wilcoxon([0.5, -0.5, 1, 2, 3]).pvalue, abs=1e-12)
    assert verdict(c) == "tie"


def test_wilcoxon_exact_by_hand():
    # five positive differences without ties: the signed-rank statistic's null
    # distribution is uniform over 2^5 sign patterns; only "all positive" reaches
    # W+ = 15, so the two-sided exact p is 2/32
    c = paired([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
    assert c["p_value"] == pytest.approx(2 / 32, abs=1e-12)
    # d = 1..5: mean 3, sample sd sqrt(2.5), se sqrt(0.5), z = 3/sqrt(0.5) = 4.24: beats
    assert c["z"] == pytest.approx(3 / math.sqrt(0.5), abs=1e-12)
    assert verdict(c) == "beats"
    assert verdict(c, min_n=30) == "tie"  # tabular searches need 30 seeds
    assert verdict(paired([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])) == "loses"


def test_paired_degenerate_differences():
    zero = paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert zero == {"n": 3, "diff_mean": 0.0, "diff_se": 0.0, "z": 0.0, "p_value": 1.0}
    const = paired([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert const["diff_se"] == 0.0 and const["z"] == math.inf
    assert const["p_value"] == pytest.approx(wilcoxon([1.0] * 5).pvalue, abs=1e-12)
    with pytest.raises(ConfigError, match="equal lengths"):
        paired([1, 2], [1])
    with pytest.raises(ConfigError, match="NaN"):
        summarize([1.0, float("nan")])


def test_comparisons_against_reference():
    per_arm = {"ref": [1.0, 2.0, 3.0], "x": [2.0, 2.0, 5.0], "y": [1.0, 2.0, 3.0]}
    out = comparisons(per_arm, "ref", "valid_accuracy")
    assert [(c["arm"], c["against"], c["metric"]) for c in out] == [("x", "ref", "valid_accuracy"),
                                                                   ("y", "ref", "valid_accuracy")]
    assert out[0]["diff_mean"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="reference arm 'nope'"):
        comparisons(per_arm, "nope", "valid_accuracy")


def test_provenance_names_this_checkout():
    p = provenance(["python", "x.py", "--quick"], settings={"k": 1}, seeds=range(3), tuned_on="nothing")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert p["commit"] == head.stdout.strip()
        assert isinstance(p["dirty"], bool) and p["dirty"] == bool(p["dirty_files"])
    assert p["command"] == "python x.py --quick"
    assert p["settings"] == {"k": 1} and p["seeds"] == [0, 1, 2] and p["tuned_on"] == "nothing"
