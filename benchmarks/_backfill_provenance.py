"""Give every result file written before provenance existed a ``provenance`` record.

The commit is the one that last committed the file (``git log -1 -- FILE``), the command
the file's own ``command`` or its script's default invocation, the settings and seeds what
the file itself records; ``backfilled: true`` marks it, and ``docs/benchmarks.md`` says
such a file's figures are not evidence until its script regenerates it.  Files that have
a provenance are left alone; files with uncommitted changes are skipped.

    python benchmarks/_backfill_provenance.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPT_OF = {"ngram_srm_curves_mnist": "ngram_srm_curves --dataset mnist",
             "ngram_srm_tables_mnist": "ngram_srm_tables --curves benchmarks/results/ngram_srm_curves_mnist.json"}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _seeds(data: dict):
    for holder in (data.get("settings"), data.get("protocol"), data):
        if isinstance(holder, dict):
            for k in ("seeds", "seed"):
                v = holder.get(k)
                if isinstance(v, list):
                    return v
                if isinstance(v, int) and not isinstance(v, bool):
                    return list(range(v)) if k == "seeds" else [v]
    return []


def backfill(path: Path) -> bool:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "provenance" in data:
        return False
    rel = str(path.relative_to(ROOT))
    if _git("status", "--porcelain", "--", rel):
        print(f"skip {rel}: uncommitted changes")
        return False
    commit = _git("log", "-1", "--format=%H", "--", rel)
    stem = path.stem.removesuffix("_quick")
    script = SCRIPT_OF.get(stem, stem)
    command = data.get("command") or f"python benchmarks/{script}.py" + (" --quick" if path.stem.endswith("_quick") else "")
    settings = next((v for v in (data.get("settings"), data.get("protocol")) if isinstance(v, dict)), {})
    prov = {"commit": commit or None, "dirty": None, "dirty_files": None, "command": command,
            "settings": settings, "seeds": _seeds(data),
            "tuned_on": "not recorded (written before provenance existed)", "backfilled": True,
            "note": "commit = the commit that committed this file; not regenerated under the evidence standard"}
    path.write_text(json.dumps({"provenance": prov, **data}, indent=1) + "\n")
    print(f"backfilled {rel} (commit {commit[:10]})")
    return True


if __name__ == "__main__":
    for p in sorted((HERE / "results").glob("*.json")):
        backfill(p)
