"""Evidence: the statistics and the provenance record every study and benchmark shares.

* :func:`summarize` — ``{n, mean, se}`` of one arm's values over seeds (``se`` is the
  sample standard deviation, ``ddof=1``, over ``sqrt(n)``);
* :func:`paired` — the paired comparison of two arms over the same seeds:
  ``{n, diff_mean, diff_se, z, p_value}`` with ``z = diff_mean / diff_se`` and the
  two-sided Wilcoxon signed-rank p-value of the differences (scipy);
* :func:`provenance` — ``{commit, dirty, dirty_files, command, settings, seeds, tuned_on}``.

The evidence standard (``docs/benchmarks.md``): "A beats B" needs ``z >= 2`` on a paired
comparison over at least 5 seeds (30 for tabular searches); anything less is a tie.
"""

from __future__ import annotations

import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from .errors import ConfigError

#: z a paired difference needs before a document may say "A beats B"
BEATS_Z = 2.0


def _floats(values, what: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be numbers: {exc}") from None
    if any(math.isnan(v) for v in out):
        raise ConfigError(f"{what} contain NaN; drop failed runs before summarizing")
    return out


def summarize(values: Sequence[float]) -> dict:
    """``{n, mean, se}``; ``se`` is ``None`` for fewer than two values."""
    xs = _floats(values, "values")
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "se": None}
    mean = math.fsum(xs) / n
    if n < 2:
        return {"n": 1, "mean": mean, "se": None}
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return {"n": n, "mean": mean, "se": math.sqrt(var / n)}


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """Paired comparison of ``a`` against ``b`` (same seeds, same order).

    ``diff_mean`` and ``diff_se`` summarize ``a - b``. When every difference is equal,
    ``diff_se`` is 0: ``z`` is then 0 for all-zero differences and +-inf otherwise.
    ``p_value`` is the two-sided Wilcoxon signed-rank test (zero differences dropped,
    scipy's default); 1.0 when every difference is zero.
    """
    xa, xb = _floats(a, "first arm's values"), _floats(b, "second arm's values")
    if len(xa) != len(xb):
        raise ConfigError(f"paired comparison needs equal lengths, got {len(xa)} and {len(xb)}")
    d = [x - y for x, y in zip(xa, xb)]
    s = summarize(d)
    n, mean, se = s["n"], s["mean"], s["se"]
    if n == 0:
        return {"n": 0, "diff_mean": None, "diff_se": None, "z": None, "p_value": None}
    if se is None:
        z = None
    elif se > 0:
        z = mean / se
    else:
        z = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    if all(x == 0 for x in d):
        p = 1.0
    else:
        from scipy.stats import wilcoxon

        p = float(wilcoxon(d).pvalue)
    return {"n": n, "diff_mean": mean, "diff_se": se, "z": z, "p_value": p}


def beats(comparison: dict, min_n: int = 5) -> bool:
    """True when a comparison entry supports "arm beats against" under the standard."""
    z = comparison.get("z")
    return comparison.get("n", 0) >= min_n and z is not None and z >= BEATS_Z


def verdict(comparison: dict, min_n: int = 5) -> str:
    """'beats', 'loses' or 'tie' for a comparison entry (``min_n``: 5 trained, 30 tabular)."""
    if beats(comparison, min_n):
        return "beats"
    z = comparison.get("z")
    if comparison.get("n", 0) >= min_n and z is not None and z <= -BEATS_Z:
        return "loses"
    return "tie"


def comparisons(per_arm: dict[str, Sequence[float]], reference: str, metric: str) -> list[dict]:
    """One comparison entry per arm other than ``reference``, in the study shape."""
    if reference not in per_arm:
        raise ConfigError(f"reference arm {reference!r} is not one of {sorted(per_arm)}")
    out = []
    for name, values in per_arm.items():
        if name == reference:
            continue
        out.append({"arm": name, "against": reference, "metric": metric,
                    **paired(values, per_arm[reference])})
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def repo_root() -> Path:
    """The checkout this nascore is installed from (editable installs), else the cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / ".git").exists() else Path.cwd()


def provenance(command=None, settings: dict | None = None, seeds=None, tuned_on=None,
               root: Path | None = None) -> dict:
    """Where a result came from: git commit and dirty flag of ``root`` (default: this
    checkout), the exact command (default: this process's argv), settings, seeds and
    what any default in use was tuned on (``None``: nothing tuned)."""
    root = Path(root) if root is not None else repo_root()
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    dirty_files = sorted(line[3:] for line in status.splitlines() if line.strip()) if status is not None else None
    if command is None:
        command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    elif not isinstance(command, str):
        command = " ".join(shlex.quote(str(a)) for a in command)
    return {"commit": commit.strip() if commit else None,
            "dirty": bool(dirty_files) if dirty_files is not None else None,
            "dirty_files": dirty_files,
            "command": command, "settings": settings or {}, "seeds": (dict(seeds) if isinstance(seeds, dict) else list(seeds)) if seeds is not None else [],
            "tuned_on": tuned_on}
