"""Regenerate every benchmark's ``--quick`` result from the code and compare it with the
committed ``benchmarks/results/<script>_quick.json`` (``make bench-check``).

Each script runs as ``python benchmarks/<script>.py --quick`` with its results redirected
to a temporary folder (``NASCORE_BENCH_RESULTS``), then every value of the new file is
compared with the committed one:

* values whose dotted path matches an ``ignore`` pattern are skipped: timings, machine
  load, paths, and the provenance's commit, dirty flag and command;
* strings, booleans, integers and key sets must be equal -- the settings and seeds in the
  provenance included;
* floats must agree within ``atol + rtol * |committed|`` (default: 1e-9 relative, i.e.
  deterministic), or within a ``bands`` entry's absolute tolerance for matching paths.

A script states its own tolerances in a module-level ``CHECK = {...}`` literal (merged
over ``_common.DEFAULT_CHECK``): a deterministic tabular study keeps the defaults, a
trained network declares a band on its accuracies. ``CHEAP`` lists the scripts whose
quick modes are cheap enough for ``make test`` (tests/test_bench_check.py).

    python benchmarks/bench_check.py                 # every script with a committed quick file
    python benchmarks/bench_check.py --cheap         # only CHEAP
    python benchmarks/bench_check.py --only tnas_nb201 quickstart
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from _common import DEFAULT_CHECK  # noqa: E402

#: not benchmarks, or owned elsewhere without a quick file
SKIP = {"run_all", "render", "bench_check"}
#: quick modes cheap enough for ``make test`` (measured in tests/test_bench_check.py's docstring)
CHEAP = ("tnas_nb201", "ngram_srm_speed", "ngram_srm_tables", "ngram_srm_acceleration")


def scripts() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_"))


def check_spec(script: str) -> dict:
    """The script's ``CHECK`` literal merged over the defaults (read without importing)."""
    spec = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in DEFAULT_CHECK.items()}
    tree = ast.parse((HERE / f"{script}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CHECK" for t in node.targets):
            own = ast.literal_eval(node.value)
            spec["ignore"] = spec["ignore"] + list(own.get("ignore", []))
            spec["bands"] = {**spec["bands"], **own.get("bands", {})}
            for k in ("atol", "rtol"):
                if k in own:
                    spec[k] = own[k]
    return spec


def _ignored(path: str, spec: dict) -> bool:
    return any(fnmatch.fnmatchcase(path, pat) for pat in spec["ignore"])


def _band(path: str, spec: dict) -> float | None:
    for pat, tol in spec["bands"].items():
        if fnmatch.fnmatchcase(path, pat):
            return float(tol)
    return None


def compare(old, new, spec: dict, path: str = "") -> list[str]:
    """Differences between a committed and a regenerated result, one line each."""
    if path and _ignored(path, spec):
        return []
    where = path or "<top>"
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            p = f"{path}.{k}" if path else str(k)
            if _ignored(p, spec):
                continue
            if k not in new:
                out.append(f"{p}: missing from the rerun")
            elif k not in old:
                out.append(f"{p}: new in the rerun (not in the committed file)")
            else:
                out += compare(old[k], new[k], spec, p)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: length {len(old)} committed, {len(new)} rerun"]
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += compare(a, b, spec, f"{path}.{i}" if path else str(i))
        return out
    if isinstance(old, bool) or isinstance(new, bool) or not (
            isinstance(old, (int, float)) and isinstance(new, (int, float))):
        return [] if old == new else [f"{where}: {old!r} committed, {new!r} rerun"]
    if isinstance(old, int) and isinstance(new, int) and _band(path, spec) is None:
        return [] if old == new else [f"{where}: {old} committed, {new} rerun"]
    a, b = float(old), float(new)
    if math.isnan(a) and math.isnan(b) or a == b:
        return []
    band = _band(path, spec)
    tol = band if band is not None else spec["atol"] + spec["rtol"] * abs(a)
    if abs(a - b) <= tol:
        return []
    return [f"{where}: {a!r} committed, {b!r} rerun (|diff| {abs(a - b):.3g} > {tol:.3g})"]


def check(script: str, tmp: Path, timeout: float | None = None) -> dict:
    """Rerun one script's quick mode into ``tmp`` and compare; a dict with the verdict."""
    committed = RESULTS / f"{script}_quick.json"
    if not committed.is_file():
        return {"script": script, "status": "no quick result committed", "differences": []}
    env = dict(os.environ, NASCORE_BENCH_RESULTS=str(tmp))
    t = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, str(HERE / f"{script}.py"), "--quick"], cwd=HERE.parent, env=env,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"script": script, "status": "timeout", "differences": [], "seconds": time.perf_counter() - t}
    seconds = time.perf_counter() - t
    fresh = tmp / committed.name
    if res.returncode or not fresh.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
        return {"script": script, "status": f"failed (exit {res.returncode})", "differences": tail,
                "seconds": seconds}
    diffs = compare(json.loads(committed.read_text()), json.loads(fresh.read_text()), check_spec(script))
    return {"script": script, "status": "ok" if not diffs else "differs", "differences": diffs, "seconds": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="script names (without .py)")
    ap.add_argument("--cheap", action="store_true", help="only the scripts make test runs")
    ap.add_argument("--timeout", type=float, help="seconds per script")
    args = ap.parse_args(argv)
    names = list(CHEAP) if args.cheap else (args.only or scripts())
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        for name in names:
            r = check(name, Path(tmp), args.timeout)
            print(f"{name:28s} {r['status']}" + (f" ({r['seconds']:.0f} s)" if "seconds" in r else ""), flush=True)
            for d in r["differences"][:20]:
                print(f"    {d}")
            if r["status"] not in ("ok", "no quick result committed"):
                failed.append(name)
    if failed:
        print("bench-check failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
