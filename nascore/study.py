"""Studies: several arms x K seeds, paired by seed (``nascore study``).

An *arm* is a pipeline config (a TOML path or a dict) plus ``--set`` overrides; a study
runs every arm once per study seed. Each arm-seed pair is an ordinary run directory,
``OUT/<arm>/seed-<seed>/``, made by :func:`nascore.run`, so a study

* resumes after a kill: a run with ``result.json`` is read back, never re-run; a run
  with a store but no ``result.json`` is resumed (its finished evaluations are replayed
  from ``run.sqlite``, not recomputed); anything else starts afresh;
* runs on any executor: the arm's config (or ``--set executor.name=...``) picks it.

Seeds: the run of every arm on study seed ``s`` gets ``seed = s`` (applied after the
study's and the arm's overrides), so all arms of one study seed share the run seed --
common random numbers, which is what makes the comparison paired. ``seeds=K`` means the
study seeds ``seed0 .. seed0+K-1``. A task's own ``[task] seed`` (the data split) is left
as the config sets it: it is part of the problem, not of the search's randomness.

Output (``study.json`` and ``best_so_far.png`` in ``OUT``): per metric and arm
``{n, mean, se}`` over seeds; per arm other than the reference, the paired difference
against the reference, its standard error, z and the Wilcoxon p-value
(:mod:`nascore.evidence`); best-so-far curves (mean and standard-error band over seeds);
every run's metrics and directory; and the provenance of the study.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import evidence
from .errors import ConfigError, RunStoreError

#: metrics of one run that a study summarizes (see :func:`run_metrics`)
METRICS = ("valid_accuracy", "test_accuracy", "params", "flops", "final_test_accuracy", "final_params",
           "evaluations", "epochs_trained", "wall_seconds")
#: metrics compared against the reference arm (the rest are costs, summarized only)
COMPARED = ("valid_accuracy", "test_accuracy", "final_test_accuracy", "params", "final_params")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a config (TOML path or dict) and ``key=value`` overrides."""

    name: str
    config: object
    sets: tuple[str, ...] = field(default_factory=tuple)

    def spec(self) -> dict:
        cfg = str(Path(self.config).resolve()) if isinstance(self.config, (str, Path)) else self.config
        return {"name": self.name, "config": cfg, "sets": list(self.sets)}


def parse_arm(text: str, default_config=None) -> Arm:
    """An arm from the CLI: ``NAME=CONFIG.toml[,key=value,...]`` or, with a shared
    ``default_config``, ``NAME:key=value,key=value`` (``NAME`` alone: no overrides)."""
    if ":" in text.split("=", 1)[0] or ("=" not in text and ":" in text):
        name, _, rest = text.partition(":")
        if default_config is None:
            raise ConfigError(f"arm {text!r} gives overrides only; pass a CONFIG for it to apply to")
        sets = tuple(s for s in rest.split(",") if s)
        return Arm(name.strip(), default_config, sets)
    if "=" not in text:
        if default_config is None:
            raise ConfigError(f"arm {text!r}: expected NAME=CONFIG.toml[,key=value...] or NAME:key=value,...")
        return Arm(text.strip(), default_config, ())
    name, _, rest = text.partition("=")
    path, *sets = rest.split(",")
    if not path.endswith(".toml"):
        raise ConfigError(f"arm {text!r}: {path!r} is not a .toml config (for overrides of the shared "
                          f"config write NAME:key=value,...)")
    return Arm(name.strip(), path, tuple(s for s in sets if s))


def _arms(arms) -> list[Arm]:
    if isinstance(arms, Mapping):
        arms = [a if isinstance(a, Arm) else
                Arm(n, a[0], tuple(a[1])) if isinstance(a, tuple) else Arm(n, a) for n, a in arms.items()]
    out = [a if isinstance(a, Arm) else Arm(**a) for a in arms]
    if len(out) < 1:
        raise ConfigError("a study needs at least one arm")
    names = [a.name for a in out]
    for n in names:
        if not _NAME.match(n):
            raise ConfigError(f"arm name {n!r}: use letters, digits and _.=+- (it names a directory)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"arm names must be unique; repeated: {', '.join(dup)}")
    for a in out:
        if isinstance(a.config, (str, Path)) and not Path(a.config).is_file():
            raise ConfigError(f"arm {a.name!r}: config file {str(a.config)!r} not found")
    return out


def _seeds(seeds, seed0: int = 0) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"a study needs at least one seed, got {seeds}")
        return list(range(seed0, seed0 + seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"study seeds must be a non-empty list of distinct integers, got {out}")
    return out


def run_metrics(result: dict) -> dict:
    """The per-run numbers a study summarizes, from a run's result (``result.json``).

    ``valid_accuracy``/``test_accuracy``/``params``/``flops`` are the run's answer (its
    ``best``, which optimizers choose on validation); ``final_*`` are after the last
    compression stage, when there is one; the rest are costs."""
    evals = result.get("evaluations") or []
    ok = [e for e in evals if e.get("status") == "ok"]
    best = (result.get("best") or {}).get("metrics") or {}
    if not best and ok:  # no answer recorded: the best-valid evaluation
        best = max((e for e in ok if e["metrics"].get("valid_accuracy") is not None),
                   key=lambda e: e["metrics"]["valid_accuracy"], default={"metrics": {}})["metrics"]
    final = (result.get("final") or {}).get("after") or {}
    out = {k: best.get(k) for k in ("valid_accuracy", "test_accuracy", "params", "flops")}
    out["final_test_accuracy"] = final.get("test_accuracy")
    out["final_params"] = final.get("params")
    out["evaluations"] = len(evals)
    out["epochs_trained"] = sum(int((e.get("metrics") or {}).get("epochs") or 0) for e in evals)
    out["wall_seconds"] = result.get("wall_seconds")
    return out


def best_so_far(result: dict, metric: str = "valid_accuracy") -> list[float | None]:
    """Best ``metric`` among the successful evaluations after each evaluation."""
    out, best = [], -math.inf
    for e in result.get("evaluations") or []:
        v = (e.get("metrics") or {}).get(metric) if e.get("status") == "ok" else None
        if v is not None:
            best = max(best, float(v))
        out.append(best if best > -math.inf else None)
    return out


def _band(curves: list[list[float | None]]) -> dict:
    """Mean and standard error over runs at each evaluation index; a shorter run holds
    its last value; indices where any run has no value yet are ``None``."""
    length = max((len(c) for c in curves), default=0)
    mean, se = [], []
    for i in range(length):
        vals = [c[min(i, len(c) - 1)] if c else None for c in curves]
        if any(v is None for v in vals):
            mean.append(None)
            se.append(None)
            continue
        s = evidence.summarize(vals)
        mean.append(s["mean"])
        se.append(s["se"])
    return {"n": len(curves), "mean": mean, "se": se}


class Study:
    """A paired multi-seed study; :meth:`run` runs what is missing and writes the summary."""

    def __init__(self, arms, seeds, out, *, reference: str | None = None, sets: Sequence[str] = (),
                 seed0: int = 0, quiet: bool = True, command=None, tuned_on=None):
        self.arms = _arms(arms)
        self.seeds = _seeds(seeds, seed0)
        self.out = Path(out)
        self.reference = reference if reference is not None else self.arms[0].name
        if self.reference not in {a.name for a in self.arms}:
            raise ConfigError(f"reference arm {self.reference!r} is not one of "
                              f"{', '.join(a.name for a in self.arms)}")
        self.sets = tuple(sets)
        self.quiet = quiet
        self.command = command
        self.tuned_on = tuned_on

    def run_dir(self, arm: str, seed: int) -> Path:
        return self.out / arm / f"seed-{seed}"

    def _spec(self) -> dict:
        return {"arms": [a.spec() for a in self.arms], "sets": list(self.sets)}

    def _check_spec(self) -> None:
        path = self.out / "study-spec.json"
        spec = json.loads(json.dumps(self._spec(), default=str))
        if path.exists():
            old = json.loads(path.read_text())
            if {k: old.get(k) for k in spec} != spec:
                raise RunStoreError(f"{self.out} holds a study with other arms or overrides "
                                    f"(see {path}); choose another directory")
        self.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=1))

    def _load(self, d: Path) -> dict | None:
        try:
            return json.loads((d / "result.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def run_one(self, arm: Arm, seed: int) -> dict:
        """The result of one arm-seed run: read back, resumed, or run afresh."""
        import nascore

        d = self.run_dir(arm.name, seed)
        done = self._load(d)
        if done is not None:
            return done
        if (d / "run.sqlite").exists() and (d / "config.toml").exists():
            return nascore.run(None, out=d, resume=True, quiet=self.quiet)
        if d.exists():  # killed before the run's store and config were both written
            shutil.rmtree(d)
        sets = [*self.sets, *arm.sets, f"seed={seed}"]
        return nascore.run(arm.config, out=d, sets=sets, quiet=self.quiet)

    def run(self) -> dict:
        """Run every missing arm-seed pair (seed-major, so a partial study stays paired),
        then write and return the summary."""
        self._check_spec()
        for seed in self.seeds:
            for arm in self.arms:
                self.run_one(arm, seed)
        return self.summary()

    def summary(self, write: bool = True) -> dict:
        """Statistics over the finished runs of this study (seeds missing in any arm are
        left out of every arm, keeping the comparison paired)."""
        results = {a.name: {s: self._load(self.run_dir(a.name, s)) for s in self.seeds} for a in self.arms}
        seeds = [s for s in self.seeds if all(results[a.name][s] is not None for a in self.arms)]
        per_run = {a: {s: run_metrics(results[a][s]) for s in seeds} for a in results}
        metrics: dict[str, dict] = {}
        comparisons: list[dict] = []
        for m in METRICS:
            vals = {a: [per_run[a][s][m] for s in seeds] for a in per_run}
            if not seeds or any(v is None for vs in vals.values() for v in vs):
                continue
            metrics[m] = {a: evidence.summarize(v) for a, v in vals.items()}
            if m in COMPARED:
                comparisons += evidence.comparisons(vals, self.reference, m)
        curves = {a: _band([best_so_far(results[a][s]) for s in seeds]) for a in results}
        primary = "valid_accuracy" if "valid_accuracy" in metrics else next(iter(metrics), None)
        data = {
            "provenance": evidence.provenance(
                self.command, settings={"arms": [a.spec() for a in self.arms], "sets": list(self.sets),
                                        "reference": self.reference, "seed_rule": "run seed = study seed"},
                seeds=seeds, tuned_on=self.tuned_on),
            "reference": self.reference,
            "primary_metric": primary,
            "arms": metrics.get(primary, {}) if primary else {},
            "metrics": metrics,
            "comparisons": comparisons,
            "curves": curves,
            "runs": {a: {str(s): {"run_dir": str(self.run_dir(a, s)), **per_run[a][s]} for s in seeds}
                     for a in per_run},
            "missing": {a: [s for s in self.seeds if results[a][s] is None] for a in results},
        }
        if write:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "study.json").write_text(json.dumps(data, indent=1))
            if seeds:
                plot_bands(curves, self.out / "best_so_far.png")
        return data


def plot_bands(curves: dict, path: Path, ylabel: str = "best validation accuracy (%)") -> Path:
    """Best-so-far mean per arm with a +-1 standard-error band (matplotlib, no display)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, c in curves.items():
        pts = [(i + 1, m, s or 0.0) for i, (m, s) in enumerate(zip(c["mean"], c["se"])) if m is not None]
        if not pts:
            continue
        xs, ms, ss = zip(*pts)
        line, = ax.plot(xs, ms, label=f"{name} (n={c['n']})")
        ax.fill_between(xs, [m - s for m, s in zip(ms, ss)], [m + s for m, s in zip(ms, ss)],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set(xlabel="evaluation", ylabel=ylabel, title="Best so far (mean ± standard error over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.savefig(path)
    return Path(path)


def run_study(arms, seeds, out, *, reference: str | None = None, sets: Iterable[str] = (), seed0: int = 0,
              quiet: bool = True, command=None, tuned_on=None) -> dict:
    """Run (or resume) a study and return its summary (the content of ``study.json``).

    ``arms``: a list of :class:`Arm` (or dicts with ``name``, ``config``, ``sets``), or a
    mapping ``name -> config`` / ``name -> (config, sets)``. ``seeds``: a count ``K``
    (study seeds ``seed0 .. seed0+K-1``) or a list. ``reference``: the arm every other arm
    is compared against (default: the first). ``sets``: overrides applied to every arm.
    """
    return Study(arms, seeds, out, reference=reference, sets=tuple(sets), seed0=seed0, quiet=quiet,
                 command=command, tuned_on=tuned_on).run()
