"""Generate docs/benchmarks.md from benchmarks/results/*.json alone.

Every result file has a top-level ``provenance`` (commit, dirty flag, command, settings,
seeds, tuned_on; see ``_common.py``), rendered under the section's title.  Optional keys:

* ``title`` and ``description`` (what was measured, how, on which data and machine);
* ``arms`` (``{name: {n, mean, se}}``) and ``comparisons`` (paired, study shape): rendered
  as tables, each comparison with its verdict under the evidence standard (``EVIDENCE``);
* ``summary``: a list of flat dicts, rendered as a table (one row each);
* ``targets``: a list of ``{"name", "target", "measured", "met"}``.

Files without ``summary`` show their top-level scalar values.  Quick-mode files
(``*_quick.json``) are listed only when no full-budget file exists for the benchmark.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def _scalar(v) -> bool:
    return v is None or isinstance(v, (int, float, str, bool)) or (
        isinstance(v, list) and all(isinstance(x, (int, float, str, bool)) or x is None for x in v))


def block(value, depth: int = 0) -> list[str]:
    """Markdown for a summary value: a list of dicts is a table, a dict of scalars a
    two-column table, a dict of such values one titled block each."""
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return table(value) + [""]
    if isinstance(value, dict):
        if all(_scalar(v) for v in value.values()):
            return table([{"quantity": k, "value": v} for k, v in value.items()]) + [""]
        out = []
        for k, v in value.items():
            out += [f"**{k}**", ""] + (block(v, depth + 1) if depth < 3 else [_fmt(v), ""])
        return out
    return [_fmt(value), ""]


EVIDENCE = """## The evidence standard

Every figure in these docs names its file (`benchmarks/results/NAME.json`), its key in
that file, and the file's provenance commit; a file's `provenance` records the exact command,
settings, seeds and what any default in use was tuned on (`tuned_on`).

* **"A beats B"** needs a paired comparison (same seeds or orders for A and B) with
  z = mean paired difference / its standard error >= 2, over at least 5 seeds for trained
  networks and at least 30 for tabular searches and replays. The comparison entry
  (`comparisons` in the file: `arm`, `against`, `metric`, `n`, `diff_mean`, `diff_se`, `z`,
  and the Wilcoxon signed-rank `p_value`) is cited with the claim. Anything less is written
  **"tie"** or **"within noise"**, whatever the means say; "loses" is z <= -2. For a metric
  where lower is better (parameters, epochs trained, error, cost) the signs swap: "beats" is
  z <= -2.
* **Selection uses validation only.** Searches choose on `valid_accuracy`; `test_accuracy` is
  reported for the architecture validation chose, never used to choose. Where both are
  shown, the validation comparison comes first.
* **Tuning is disjoint from reporting.** Defaults are chosen on data, seeds or curves that
  are not the ones a figure is reported on; `tuned_on` names them.
* **Regeneration.** `make bench-check` reruns every script's `--quick` mode from the code
  and compares it with the committed `*_quick.json` (equal where deterministic, within the
  tolerances each script's `CHECK` declares where not). A file whose provenance says
  `"backfilled": true` was written before provenance existed: its commit is the one that
  committed the file, and its figures are not evidence until regenerated.
"""


#: metrics where a lower value is the better one (a comparison entry may also say so itself
#: with ``"lower_is_better": true``)
LOWER_IS_BETTER = frozenset({"params", "epochs_ratio", "error", "test_error", "valid_error", "madds", "flops",
                             "seconds", "cpu_seconds", "cost", "search_cost"})


def _verdict(c: dict, min_n: int) -> str:
    """The evidence-standard verdict of comparison ``c`` for its arm: "beats" when the arm is
    better with |z| >= 2 over at least ``min_n`` pairs, in the metric's own direction (a
    negative z beats for a lower-is-better metric), "loses" when worse, else a tie."""
    z, n = c.get("z"), c.get("n") or 0
    if z is None or n < min_n:
        return f"tie (n < {min_n})" if n < min_n else "tie"
    lower = c.get("lower_is_better", c.get("metric") in LOWER_IS_BETTER)
    better = -z if lower else z
    verdict = "beats" if better >= 2 else "loses" if better <= -2 else "tie"
    return f"{verdict} (lower is better)" if lower and verdict != "tie" else verdict


def _prov_line(p: dict) -> str:
    commit = (p.get("commit") or "unknown")[:10]
    dirty = " (dirty tree)" if p.get("dirty") else ""
    back = " · backfilled, not regenerated" if p.get("backfilled") else ""
    seeds = p.get("seeds")
    seeds_txt = ""
    if isinstance(seeds, list) and seeds and all(isinstance(x, int) for x in seeds):
        seeds_txt = f" · seeds {seeds[0]}..{seeds[-1]} ({len(seeds)})" if len(seeds) > 3 else f" · seeds {seeds}"
    elif seeds:
        seeds_txt = f" · seeds {_fmt(seeds)}"
    return f"commit `{commit}`{dirty}{back}{seeds_txt}"


def evidence_tables(data: dict, tabular: bool) -> list[str]:
    lines = []
    arms = data.get("arms")
    if isinstance(arms, dict) and arms and all(isinstance(v, dict) and "mean" in v for v in arms.values()):
        lines += ["**arms** (mean ± standard error over seeds)", ""]
        lines += table([{"arm": k, "n": v.get("n"), "mean": v.get("mean"), "se": v.get("se")}
                        for k, v in arms.items()]) + [""]
    comps = data.get("comparisons")
    if isinstance(comps, list) and comps and all(isinstance(c, dict) and "z" in c for c in comps):
        min_n = 30 if tabular else 5
        lines += [f"**comparisons** (paired; verdict: z >= 2 over >= {min_n} seeds, else tie)", ""]
        lines += table([{"arm": c.get("arm"), "against": c.get("against"), "metric": c.get("metric"),
                         "n": c.get("n"), "diff": c.get("diff_mean"), "se": c.get("diff_se"), "z": c.get("z"),
                         "wilcoxon p": c.get("p_value"), "verdict": _verdict(c, min_n)} for c in comps]) + [""]
    return lines


#: result files whose comparisons are tabular searches or curve replays (30 seeds needed)
TABULAR = ("tnas_nb201", "peers_nb201", "ngram_srm_acceleration", "compose_pipelines")


def section(name: str, data: dict) -> list[str]:
    lines = [f"## {data.get('title', name)}", "", f"Source: `benchmarks/results/{name}.json`"]
    prov = data.get("provenance")
    if isinstance(prov, dict):
        lines[-1] += " · " + _prov_line(prov)
        if prov.get("command"):
            lines.append(f"· reproduce: `{prov['command']}`")
        if prov.get("tuned_on"):
            lines += ["", f"Tuned on: {_fmt(prov['tuned_on'])}"]
    else:
        lines.append("· **no provenance** (not regenerated under the evidence standard)")
    if data.get("command"):
        lines.append(f"· command: `{data['command']}`")
    lines.append("")
    if data.get("description"):
        lines += [data["description"], ""]
    lines += evidence_tables(data, name.removesuffix("_quick") in TABULAR)
    targets = data.get("targets")
    if isinstance(targets, list) and targets and all(isinstance(t, dict) for t in targets):
        lines += ["**Targets**", ""] + table([{"target": t.get("name"), "wanted": t.get("target"),
                                               "measured": t.get("measured"), "met": t.get("met")}
                                              for t in targets]) + [""]
    elif targets:
        lines += ["**Targets**", ""] + block(targets)
    if data.get("summary") is not None:
        lines += block(data["summary"])
    else:
        skip = ("title", "description", "command", "notes", "targets", "provenance", "arms", "comparisons")
        scalars = {k: v for k, v in data.items() if _scalar(v) and k not in skip}
        if scalars:
            lines += table([{"quantity": k, "value": v} for k, v in scalars.items()]) + [""]
        for k, v in data.items():
            if k in skip or _scalar(v):
                continue
            if len(json.dumps(v, default=str)) <= 6000:  # per-run raw data stays in the JSON
                lines += [f"**{k}**", ""] + block(v)
            else:
                lines += [f"**{k}**: too large to show here, see the JSON file", ""]
    if data.get("notes"):
        lines += [str(data["notes"]), ""]
    return lines


def render(results: Path, out: Path) -> Path:
    files = sorted(results.glob("*.json"))
    full = {p.stem for p in files if not p.stem.endswith("_quick")}
    lines = ["# Benchmarks", "",
             "Generated by `benchmarks/run_all.py --render` from `benchmarks/results/*.json`; do not edit.",
             "Figures were measured on this project's 2-core CPU machines unless a section says GPU.",
             "`make bench` re-runs everything; `make bench-check` regenerates the quick modes and compares.", "",
             *EVIDENCE.splitlines(), ""]
    for p in files:
        if p.stem.endswith("_quick") and p.stem[: -len("_quick")] in full:
            continue
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            lines += [f"## {p.stem}", "", f"(unreadable: {exc})", ""]
            continue
        if isinstance(data, dict):
            lines += section(p.stem, data)
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    print(render(here / "results", here.parent / "docs" / "benchmarks.md"))
