"""What every benchmark script shares: where results go and the result shape.

Every file in ``benchmarks/results/`` has a top-level ``provenance`` (commit, dirty flag,
exact command, settings, seeds, tuned_on; :func:`nascore.evidence.provenance`) and, where
it compares, ``arms: {name: {n, mean, se}}`` and ``comparisons: [{arm, against, metric, n,
diff_mean, diff_se, z, p_value}]``. A script writes one invocation's results: it never
merges rows from earlier invocations.

``NASCORE_BENCH_RESULTS`` redirects the results folder (``make bench-check`` writes the
quick reruns to a temporary folder this way).

Each script declares how ``bench_check.py`` compares its quick rerun with the committed
``*_quick.json`` in a module-level ``CHECK`` dict (see :data:`DEFAULT_CHECK`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: how bench_check compares a quick rerun with the committed file, unless a script says
#: otherwise: keys matching ``ignore`` (fnmatch on the dotted path) are not compared
#: (timings, machine load, paths); numbers match within ``atol``/``rtol`` (0: equal) unless
#: a ``bands`` pattern gives the path its own absolute band.
DEFAULT_CHECK = {
    "ignore": ["provenance.commit", "provenance.commit_at_end", "provenance.dirty", "provenance.dirty_files",
               "provenance.command",
               "*seconds*", "*_s", "*wall*", "*time*", "*_ms", "*per_s*", "*speed*", "*load*", "*.run_dir",
               "*throughput*", "*ratio*", "*overhead*", "*latency*", "*png*", "*path*", "machine*", "*.machine*"],
    "atol": 0.0,
    "rtol": 1e-9,
    "bands": {},
}


def _start() -> dict:
    from nascore.evidence import provenance

    return provenance("", root=HERE.parent)


#: the checkout's commit and dirty files when this script started
_START = _start()


def limit_threads() -> None:
    """One thread everywhere: the core's :func:`nascore.executors.limit_threads` (the
    BLAS/OpenMP variables for libraries loaded later -- scipy and scikit-learn load their
    own OpenBLAS/OpenMP on first use and would otherwise start one thread per core -- and
    torch's setting), then every already-loaded pool's limit."""
    from threadpoolctl import threadpool_limits

    from nascore.executors import limit_threads as core_limit_threads

    core_limit_threads(1, load_torch=True)
    threadpool_limits(1)


def results_dir() -> Path:
    d = Path(os.environ.get("NASCORE_BENCH_RESULTS") or HERE / "results")
    d.mkdir(parents=True, exist_ok=True)
    return d


def result_path(name: str, quick: bool = False) -> Path:
    """``results_dir()/<name>.json`` (``<name>_quick.json`` for ``--quick``)."""
    return results_dir() / f"{name}{'_quick' if quick else ''}.json"


def command() -> str:
    """The exact command of this process, relative to the repository root."""
    argv = list(sys.argv)
    try:
        argv[0] = str(Path(argv[0]).resolve().relative_to(HERE.parent))
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in ["python", *argv])


def write_result(name: str, data: dict, *, quick: bool, settings: dict, seeds, tuned_on=None,
                 path: Path | None = None) -> Path:
    """Write ``data`` with a ``provenance`` record in front; returns the path."""
    from nascore.evidence import provenance

    prov = provenance(command(), settings=settings, seeds=seeds, tuned_on=tuned_on, root=HERE.parent)
    # the code that ran is the checkout as it was when the script started: its commit and
    # dirty files then, not now (others may commit meanwhile, and a long run that rewrites
    # its own tracked result after every unit would otherwise call itself dirty); the
    # commit at the end is recorded too when it moved
    end_commit = prov["commit"]
    prov["commit"], prov["dirty"], prov["dirty_files"] = (_START["commit"], _START["dirty"],
                                                         _START["dirty_files"])
    if end_commit != _START["commit"]:
        prov["commit_at_end"] = end_commit
    out = {"provenance": prov}
    out.update({k: v for k, v in data.items() if k != "provenance"})
    path = path or result_path(name, quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=_jsonable) + "\n")
    print(f"wrote {path}")
    return path


def _jsonable(v):
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
    except ImportError:
        pass
    if isinstance(v, Path):
        return str(v)
    return str(v)


def work_dir(name: str) -> Path:
    """A scratch folder for run directories (never committed): ``$NASCORE_BENCH_WORK`` or
    /tmp/nascore-bench/<name>."""
    base = Path(os.environ.get("NASCORE_BENCH_WORK") or Path(os.environ.get("TMPDIR", "/tmp")) / "nascore-bench")
    d = base / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def checkpoint(name: str, settings: dict) -> Path:
    """A progress file for a long benchmark, keyed by the code commit (plus the dirty
    flag) and the settings, so a killed run resumes its finished units and a run of other
    code or settings never reuses them. Lives in :func:`work_dir`, never committed."""
    import hashlib

    from nascore.evidence import provenance

    p = provenance("", root=HERE.parent)
    key = json.dumps({"commit": p["commit"], "dirty": p["dirty_files"], "settings": settings},
                     sort_keys=True, default=str)
    return work_dir(name) / f"{(p['commit'] or 'nocommit')[:12]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def load_checkpoint(path: Path | None, default: dict) -> dict:
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    return default


def save_checkpoint(path: Path | None, data: dict) -> None:
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=_jsonable))
        tmp.replace(path)
