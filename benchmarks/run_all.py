"""Run every benchmark script in this folder, then regenerate docs/benchmarks.md.

    python benchmarks/run_all.py            # real budgets
    python benchmarks/run_all.py --quick    # each script's --quick mode
    python benchmarks/run_all.py --only trainer_overhead executor_speedup
    python benchmarks/run_all.py --render   # only regenerate docs/benchmarks.md from the JSON

Each script writes its JSON into benchmarks/results/; docs/benchmarks.md is generated
from those files alone (see render.py), so every number in the docs has a source file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all.py", "render.py", "bench_check.py"}
#: further invocations after a script's plain run (real budgets only): studies whose other
#: datasets run at their own scale and write their own file
EXTRA_RUNS = {"nat_paired": [["--mnist"]]}


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in SKIP and not p.name.startswith("_"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="run each script in its --quick mode")
    ap.add_argument("--only", nargs="*", help="script names (without .py) to run")
    ap.add_argument("--render", action="store_true", help="only regenerate docs/benchmarks.md")
    args = ap.parse_args(argv)
    failed = []
    if not args.render:
        for script in scripts():
            if args.only and script.stem not in args.only:
                continue
            runs = [["--quick"]] if args.quick else [[]] + EXTRA_RUNS.get(script.stem, [])
            for extra in runs:
                label = " ".join([script.name] + extra)
                print(f"== {label}", flush=True)
                t = time.time()
                res = subprocess.run([sys.executable, str(script)] + extra, cwd=HERE.parent, env=dict(os.environ))
                print(f"== {label}: exit {res.returncode} in {time.time() - t:.0f}s", flush=True)
                if res.returncode:
                    failed.append(label)
    from render import render  # noqa: E402 - sibling module

    path = render(HERE / "results", HERE.parent / "docs" / "benchmarks.md")
    print(f"wrote {path}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
