"""The HTML report of a run: ``run_dir/report.html`` with PNG plots next to it.

:func:`write_report` reads the run store (``run.sqlite``, read-only, so it works while a
run is still going) and ``result.json`` when present, and draws with matplotlib's
object API (no pyplot, no global backend): best-so-far validation accuracy against the
number of evaluations, accuracy against params and against FLOPs with the Pareto front,
learning curves of the top candidates; then tables of the top evaluations and of the
failures, and every figure a plugin added (events of kind ``figure`` with ``path`` and
``title``, or ``result.json["figures"]``).
"""

from __future__ import annotations

import html
import json
import math
import shutil
from pathlib import Path
from urllib.parse import quote

import attrs

from .errors import NascoreError, RunStoreError
from .results import FAILED, OK, STOPPED, Evaluation

ACCURACY = "valid_accuracy"
TABLE_METRICS = ("valid_accuracy", "test_accuracy", "params", "flops", "latency_ms", "train_seconds", "epochs")
FIGURE_DIR = "report_figures"


# ------------------------------------------------------------------------------ data


def pareto_front(points) -> list[int]:
    """Indices of the non-dominated ``(accuracy, cost)`` points, by increasing cost.

    A point is dominated when another has accuracy >= and cost <= with one of them
    strict (accuracy is maximized, cost minimized).  Points with a missing or
    non-finite coordinate are ignored; identical non-dominated points are all kept.
    """
    valid = [(float(c), -float(a), i) for i, (a, c) in enumerate(points)
             if a is not None and c is not None and math.isfinite(a) and math.isfinite(c)]
    valid.sort()  # by cost, then by accuracy descending
    front, best, last = [], -math.inf, None
    for cost, neg_acc, i in valid:
        acc = -neg_acc
        if acc > best or (last is not None and (acc, cost) == last):
            front.append(i)
            best, last = acc, (acc, cost)
    return front


@attrs.define
class RunData:
    """What a report needs from a run directory."""

    run_dir: Path
    evaluations: list[Evaluation]
    figures: list[tuple[str, str]]  # (path as recorded, title)
    result: dict
    meta: dict

    @property
    def config(self) -> dict:
        """The resolved config: result.json's, else the store's, else config.toml."""
        config = self.result.get("config") or self.meta.get("config")
        if isinstance(config, str):  # stored as a JSON string
            config = json.loads(config)
        if not config and (self.run_dir / "config.toml").is_file():
            import tomllib

            config = tomllib.loads((self.run_dir / "config.toml").read_text())
        return config or {}


def _figure_entries(items) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        if isinstance(item, str):
            out.append((item, Path(item).stem))
        elif isinstance(item, dict) and item.get("path"):
            out.append((str(item["path"]), str(item.get("title") or Path(item["path"]).stem)))
    return out


def load_run(run_dir) -> RunData:
    """Evaluations, figures, ``result.json`` and store meta of a run directory."""
    run_dir = Path(run_dir)
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    figures: list[tuple[str, str]] = []
    if (run_dir / "run.sqlite").exists():
        from .store import RunStore

        with RunStore(run_dir, readonly=True) as store:
            evaluations, meta = store.evaluations(), store.meta()
            figures = _figure_entries(e.data for e in store.events("figure"))
    elif result:
        evaluations = [Evaluation.from_json(e) for e in result.get("evaluations", [])]
        meta = {}
    else:
        raise RunStoreError(f"{run_dir} has neither run.sqlite nor result.json; is it a run directory?")
    for entry in _figure_entries(result.get("figures")):
        if entry not in figures:
            figures.append(entry)
    return RunData(run_dir, evaluations, figures, result, meta)


def _acc(e: Evaluation):
    value = e.metric(ACCURACY)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def ranked(evaluations) -> list[Evaluation]:
    """Evaluations with a validation accuracy, best first (completed before stopped on ties)."""
    scored = [e for e in evaluations if e.status in (OK, STOPPED) and _acc(e) is not None]
    return sorted(scored, key=lambda e: (-_acc(e), e.status != OK, e.index or 0))


# ------------------------------------------------------------------------------ plots


def _figure(width=6.4, height=4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def evaluation_number(e: Evaluation, position: int) -> int:
    """The number of an evaluation everywhere (log, ``nascore show``, report): 1-based
    completion order, i.e. the store's index + 1 (``position`` when it has none)."""
    return (e.index if e.index is not None else position) + 1


def robust_lower_limit(values, quantile: float = 0.1) -> float | None:
    """A lower y-limit that keeps the bulk of ``values`` readable: a few chance-level
    outliers (10% on a run of 90%s) must not squeeze every other point into a sliver.
    A point more than 1.5 interquartile ranges (at least 1 point of accuracy) below the
    ``quantile`` is an outlier; None when there is none (or fewer than 5 values)."""
    import numpy as np

    v = np.sort(np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float))
    if len(v) < 5:
        return None
    q1, q3 = np.quantile(v, [0.25, 0.75])
    low = max(np.quantile(v, quantile) - 1.5 * max(q3 - q1, 1.0), 0.0)
    if v[0] >= low:
        return None
    return float(low)


def _clip_outliers(ax, xs, ys, low: float | None, label: str) -> tuple[list, list]:
    """Points of ``ys`` below ``low`` drawn as down-triangles on the lower edge (with a
    count in the legend); returns the points that stay."""
    if low is None:
        return list(xs), list(ys)
    keep = [(x, y) for x, y in zip(xs, ys) if y >= low]
    below = [(x, y) for x, y in zip(xs, ys) if y < low]
    span = max(max(y for _, y in keep) - low, 1e-9) if keep else 1.0
    if below:
        ax.scatter([x for x, _ in below], [low] * len(below), marker="v", s=22, color="tab:purple", clip_on=False,
                   zorder=3, label=f"{len(below)} {label} below {low:.1f} (e.g. {min(y for _, y in below):.1f})")
    ax.set_ylim(low - 0.02 * span, None)
    return [x for x, _ in keep], [y for _, y in keep]


def _baseline_value(result: dict | None):
    base = (result or {}).get("baseline") or {}
    value = (base.get("metrics") or {}).get(ACCURACY)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def plot_best_so_far(evaluations, path: Path, baseline: float | None = None) -> Path | None:
    """Validation accuracy of every evaluation and the best so far, by evaluation number;
    the baseline as a dashed line; chance-level outliers clipped to the lower edge."""
    points = [(evaluation_number(e, i), _acc(e), e.status) for i, e in enumerate(evaluations)]
    ok = [(n, a) for n, a, s in points if s == OK and a is not None]
    if not ok:
        return None
    fig, ax = _figure()
    stopped = [(n, a) for n, a, s in points if s == STOPPED and a is not None]
    best, xs, ys = -math.inf, [], []
    for n, a in sorted(ok):
        best = max(best, a)
        xs.append(n)
        ys.append(best)
    xs.append(max(n for n, _, _ in points))
    ys.append(best)
    low = robust_lower_limit([a for _, a in ok + stopped] + ([baseline] if baseline is not None else []))
    keep = _clip_outliers(ax, [n for n, _ in ok], [a for _, a in ok], low, "evaluations")
    ax.scatter(*keep, s=14, color="tab:blue", alpha=0.6, label="evaluation")
    if stopped:
        ax.scatter(*zip(*stopped), s=14, facecolors="none", edgecolors="tab:gray", label="stopped early")
    ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1, label=f"baseline ({baseline:.2f})")
    ax.set(xlabel="evaluation", ylabel="validation accuracy (%)", title="Best validation accuracy so far")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.savefig(path)
    return path


def plot_pareto(evaluations, cost: str, path: Path, baseline: dict | None = None) -> Path | None:
    """Accuracy against ``cost`` (``params`` or ``flops``), Pareto front highlighted, the
    baseline (``result.json["baseline"]``) as a star, chance-level outliers clipped."""
    pts = [(_acc(e), e.metric(cost)) for e in evaluations if e.status == OK]
    pts = [(a, float(c)) for a, c in pts if a is not None and isinstance(c, (int, float)) and c > 0]
    if not pts:
        return None
    front = [pts[i] for i in pareto_front(pts)]
    fig, ax = _figure()
    base_acc = _baseline_value({"baseline": baseline})
    base_cost = ((baseline or {}).get("metrics") or {}).get(cost)
    low = robust_lower_limit([a for a, _ in pts] + ([base_acc] if base_acc is not None else []))
    keep = _clip_outliers(ax, [c for _, c in pts], [a for a, _ in pts], low, "evaluations")
    ax.scatter(*keep, s=14, alpha=0.5, color="tab:blue", label="evaluation")
    ax.plot([c for _, c in front], [a for a, _ in front], "o-", color="tab:red", ms=5, label="Pareto front")
    if base_acc is not None and isinstance(base_cost, (int, float)) and base_cost > 0:
        ax.scatter([base_cost], [base_acc], marker="*", s=120, color="black", zorder=4,
                   label=f"baseline ({base_acc:.2f})")
    costs = [c for _, c in pts]
    if max(costs) / min(costs) > 30:
        ax.set_xscale("log")
    label = {"params": "parameters", "flops": "FLOPs (multiply-adds per sample)"}.get(cost, cost)
    ax.set(xlabel=label, ylabel="validation accuracy (%)", title=f"Accuracy vs {cost}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.savefig(path)
    return path


def plot_learning_curves(top, path: Path) -> Path | None:
    """Validation accuracy per epoch of the given (top) evaluations."""
    curves = [(e, [(p.get("epoch", i + 1), p.get(ACCURACY)) for i, p in enumerate(e.curve)]) for e in top]
    curves = [(e, [(x, y) for x, y in c if isinstance(y, (int, float))]) for e, c in curves]
    curves = [(e, c) for e, c in curves if c]
    if not curves:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure()
    for rank, (e, c) in enumerate(curves, 1):
        ax.plot(*zip(*c), marker=".", label=f"#{rank} {e.key[:8]} ({_acc(e):.2f}%)")
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title=f"Learning curves of the top {len(curves)}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path)
    return path


def plot_architecture(space, genome: dict, path: Path, title: str = "Best architecture") -> Path | None:
    """Draw ``space.graph(arch)``: feature maps as nodes laid out by depth (topological
    generations), edges labelled with their operation.  None when the space has no graph."""
    try:
        arch = space.make(genome)
        graph = space.graph(arch)
    except Exception:  # noqa: BLE001 - a drawing is a nicety; no graph view, no figure
        return None
    import networkx as nx

    if graph.number_of_nodes() == 0:
        return None
    layers = list(nx.topological_generations(graph)) if nx.is_directed_acyclic_graph(graph) else [list(graph)]
    pos = {}
    arc = len(layers) > 2  # nodes on an arc, so that an edge skipping nodes does not hide behind them
    for depth, layer in enumerate(layers):
        lift = math.sin(math.pi * depth / (len(layers) - 1)) if arc else 0.0
        for j, node in enumerate(sorted(layer, key=str)):
            pos[node] = (depth, 1.2 * lift + j - (len(layer) - 1) / 2)
    width = min(max(2.0 * len(layers), 4.0), 14.0)
    fig, ax = _figure(width, 3.2 if max(len(layer) for layer in layers) < 3 else 5.0)
    labels = {n: str(graph.nodes[n].get("label", n)) for n in graph}
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color="#dde8f6", edgecolors="#35608c", node_size=700)
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=8)
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=12, node_size=700,
                           connectionstyle="arc3,rad=0.12")
    ops = {(u, v): str(d.get("op", "")) for u, v, d in graph.edges(data=True)}
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=ops, ax=ax, font_size=7, label_pos=0.5,
                                 connectionstyle="arc3,rad=0.12", bbox={"alpha": 0.7, "color": "white"})
    ax.set_title(title)
    ax.set_axis_off()
    ax.margins(0.08, 0.15)
    fig.savefig(path)
    return path


# ------------------------------------------------------------------------------ HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5em 1em .5em 0}img{max-width:100%}code,pre{font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}.err{color:#a00;white-space:pre-wrap}
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _si(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def format_metric(name: str, value) -> str:
    """Human-readable metric value: accuracies with 2 decimals, params/FLOPs with k/M/G."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if name.endswith("accuracy"):
        return f"{value:.2f}"
    if name in ("params", "flops"):
        return _si(value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _tokens_by_key(data: RunData, evaluations) -> dict[str, list]:
    out = {}
    for e in data.result.get("evaluations") or []:
        if isinstance(e, dict) and e.get("key") and e.get("tokens"):
            out[e["key"]] = e["tokens"]
    best = data.result.get("best") or {}
    if best.get("key") and best.get("tokens"):
        out[best["key"]] = best["tokens"]
    for e in evaluations:
        if isinstance(e.metrics.get("tokens"), list):
            out.setdefault(e.key, e.metrics["tokens"])
    missing = [e for e in evaluations if e.key not in out]
    space = _space(data.config) if missing else None
    if space is not None:
        for e in missing:
            try:
                out[e.key] = space.tokens(space.make(e.genome))
            except NascoreError:  # a genome of another space or version: no tokens
                continue
    return out


def _space(config: dict):
    """The run's search space, built from its config, or None when it is not installed."""
    spec = dict(config.get("space") or {})
    name = spec.pop("name", None)
    if not name:
        return None
    from . import create

    try:
        return create("search_space", name, **spec)
    except NascoreError:
        return None


def _top_table(top, tokens: dict) -> str:
    names = [m for m in TABLE_METRICS if any(e.metric(m) is not None for e in top)]
    extra = sorted({k for e in top for k, v in e.metrics.items()
                    if k not in TABLE_METRICS and k != "tokens" and isinstance(v, (int, float))})
    has_tokens = any(tokens.get(e.key) for e in top)
    labels = ["rank", "#", "key", "status", *(["tokens"] if has_tokens else []), *names, *extra]
    head = "".join(f"<th>{_esc(n)}</th>" for n in labels)
    rows = []
    for rank, e in enumerate(top, 1):
        toks = " ".join(map(str, tokens.get(e.key, [])))
        short = toks if len(toks) <= 100 else toks[:97] + "..."
        cells = [f'<td class="num">{rank}</td>', f'<td class="num">{evaluation_number(e, 0)}</td>',
                 f"<td><code>{_esc(e.key)}</code></td>", f"<td>{_esc(e.status)}</td>"]
        if has_tokens:
            cells.append(f'<td title="{_esc(toks)}"><code>{_esc(short)}</code></td>')
        cells += [f'<td class="num">{_esc(format_metric(m, e.metric(m)))}</td>' for m in [*names, *extra]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _failure_table(failed) -> str:
    if not failed:
        return "<p>No failed evaluations.</p>"
    rows = []
    for e in failed:
        error = (e.error or "").strip()
        first = error.splitlines()[-1] if error else "(no error text)"
        body = (f"<details><summary class=err>{_esc(first)}</summary><pre>{_esc(error)}</pre></details>"
                if "\n" in error else f'<span class="err">{_esc(first)}</span>')
        rows.append(f"<tr><td class=num>{evaluation_number(e, 0)}</td><td><code>{_esc(e.key)}</code></td>"
                    f"<td>{_esc(e.worker or '')}</td><td>{body}</td></tr>")
    return ("<table><tr><th>#</th><th>key</th><th>worker</th><th>error</th></tr>"
            + "".join(rows) + "</table>")


def _img(run_dir: Path, path: Path, title: str) -> str:
    rel = path.relative_to(run_dir).as_posix()
    return (f'<figure><img src="{_esc(quote(rel))}" alt="{_esc(title)}">'
            f"<figcaption>{_esc(title)}</figcaption></figure>")


def _local_figure(run_dir: Path, recorded: str) -> Path | None:
    """The figure as a path inside ``run_dir`` (copied in when recorded elsewhere)."""
    path = Path(recorded)
    path = path if path.is_absolute() else run_dir / path
    if not path.is_file():
        return None
    root = run_dir.resolve()
    path = path.resolve()
    if path.is_relative_to(root):
        return run_dir / path.relative_to(root)
    target = run_dir / FIGURE_DIR / path.name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, target)
    return target


def _summary(data: RunData, evaluations, top) -> str:
    counts = {s: sum(e.status == s for e in evaluations) for s in (OK, STOPPED, FAILED)}
    cfg = data.config
    rows = [("evaluations", f"{len(evaluations)} ({counts[OK]} ok, {counts[STOPPED]} stopped early, "
                            f"{counts[FAILED]} failed)")]
    for label, value in (("seed", cfg.get("seed", data.meta.get("seed"))),
                         ("space", (cfg.get("space") or {}).get("name")),
                         ("optimizer", (cfg.get("optimizer") or {}).get("name")),
                         ("task", (cfg.get("task") or {}).get("dataset")),
                         ("wall time (s)", data.result.get("wall_seconds"))):
        if value is not None:
            rows.append((label, format_metric("wall_seconds", value) if isinstance(value, float) else value))
    best = data.result.get("best") or {}
    if best.get("key") or top:
        key = best.get("key") or top[0].key
        metrics = best.get("metrics") or (top[0].metrics if top else {})
        shown = ", ".join(f"{m} {format_metric(m, metrics[m])}" for m in TABLE_METRICS if m in metrics)
        rows.append(("best", f"{key}: {shown}"))
    base = data.result.get("baseline") or {}
    if base.get("key"):
        metrics = base.get("metrics") or {}
        shown = ", ".join(f"{m} {format_metric(m, metrics[m])}" for m in TABLE_METRICS if m in metrics)
        rows.append(("baseline", f"{base['key']}: {shown or base.get('status', '')}"))
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _best_section(data: RunData, top) -> str:
    best = data.result.get("best") or (top[0].to_json() if top else None)
    if not best:
        return ""
    parts = ["<h2>Best architecture</h2>"]
    if best.get("tokens"):
        parts.append(f"<p><code>{_esc(' '.join(map(str, best['tokens'])))}</code></p>")
    parts.append(f"<pre>{_esc(json.dumps(best.get('genome', {}), indent=1, sort_keys=True))}</pre>")
    for extra in ("baseline", "compressed"):
        if data.result.get(extra):
            parts.append(f"<h3>{extra}</h3><pre>{_esc(json.dumps(data.result[extra], indent=1))}</pre>")
    return "".join(parts)


def write_report(run_dir, *, top: int = 10, curves: int = 5) -> Path:
    """Write ``run_dir/report.html`` (and its PNG plots next to it); returns its path."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    evaluations = data.evaluations
    best_first = ranked(evaluations)
    baseline = data.result.get("baseline")
    best = data.result.get("best") or (best_first[0].to_json() if best_first else None)
    space = _space(data.config) if best and best.get("genome") is not None else None
    plots = [
        (plot_architecture(space, best["genome"], run_dir / "report_best_cell.png",
                           f"Best architecture {best.get('key', '')}") if space is not None else None,
         "Best architecture (the space's graph view)"),
        (plot_best_so_far(evaluations, run_dir / "report_best_so_far.png", _baseline_value(data.result)),
         "Best validation accuracy so far"),
        (plot_pareto(evaluations, "params", run_dir / "report_pareto_params.png", baseline), "Accuracy vs parameters"),
        (plot_pareto(evaluations, "flops", run_dir / "report_pareto_flops.png", baseline), "Accuracy vs FLOPs"),
        (plot_learning_curves(best_first[:curves], run_dir / "report_curves.png"), "Learning curves"),
    ]
    extra = [(_local_figure(run_dir, p), p, title) for p, title in data.figures]
    name = _esc(run_dir.resolve().name)
    parts = [f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
             f"<title>nascore run {name}</title><style>{_STYLE}</style></head><body>",
             f"<h1>nascore run <code>{name}</code></h1>", _summary(data, evaluations, best_first),
             _best_section(data, best_first), "<h2>Plots</h2>"]
    drawn = [_img(run_dir, p, t) for p, t in plots if p is not None]
    parts.append("".join(drawn) or "<p>No successful evaluations to plot yet.</p>")
    parts += [f"<h2>Top {min(top, len(best_first))} evaluations</h2>",
              _top_table(best_first[:top], _tokens_by_key(data, best_first[:top])) if best_first else "<p>None.</p>",
              "<h2>Failures</h2>", _failure_table([e for e in evaluations if e.status == FAILED])]
    if extra:
        parts.append("<h2>Plugin figures</h2>")
        parts += [_img(run_dir, p, t) if p is not None else f"<p>{_esc(t)}: missing file <code>{_esc(r)}</code></p>"
                  for p, r, t in extra]
    if data.config:
        parts.append("<h2>Configuration</h2><details><summary>resolved config</summary><pre>"
                     f"{_esc(json.dumps(data.config, indent=1, sort_keys=True))}</pre></details>")
    parts.append("</body></html>\n")
    out = run_dir / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
