"""Figures for the run report: the searched cells as graphs (as in Figs. 7-8 of the
paper) and the anytime accuracy-MFLOPs curves (as in Figs. 6, 9, 10).

matplotlib's object API only (no pyplot, no global backend), like the core report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure

_KIND_COLOR = {"input": "#9ecae1", "node": "#fdd0a2", "output": "#a1d99b"}


def _math(label: str) -> str:
    """``c_{k-1}`` as matplotlib mathtext."""
    return f"${label}$" if "_{" in label else label


def cell_positions(graph) -> dict:
    """Inputs on the left, intermediate nodes left to right, the output on the right."""
    nodes = sorted(graph.nodes)
    inner = [v for v in nodes if graph.nodes[v].get("kind") == "node"]
    pos = {}
    for v in nodes:
        kind = graph.nodes[v].get("kind")
        if kind == "input":
            pos[v] = (0.0, 1.0 - 2.0 * v)
        elif kind == "output":
            pos[v] = (len(inner) + 1.0, 0.0)
        else:
            i = inner.index(v)
            pos[v] = (i + 1.0, 0.6 if i % 2 == 0 else -0.6)
    return pos


def draw_cell(graph, ax, title: str = "") -> None:
    """Draw one cell graph (``DartsSpace.cell_graph``) on ``ax``: nodes labelled, every
    op edge labelled with its op; two edges between one pair of nodes are bent apart."""
    import networkx as nx

    pos = cell_positions(graph)
    colors = [_KIND_COLOR.get(graph.nodes[v].get("kind"), "#dddddd") for v in graph.nodes]
    labels = {v: _math(graph.nodes[v].get("label", str(v))) for v in graph.nodes}
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colors, node_size=900, edgecolors="#555555")
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=8)
    for u, v, key, data in graph.edges(keys=True, data=True):
        rad = 0.0 if graph.number_of_edges(u, v) == 1 else (0.25 if key == 0 else -0.25)
        style = f"arc3,rad={rad}"
        concat = data.get("op") == "concat"
        nx.draw_networkx_edges(graph, pos, edgelist=[(u, v, key)], ax=ax, connectionstyle=style,
                               arrows=True, arrowsize=12, node_size=900,
                               style="dashed" if concat else "solid", edge_color="#888888" if concat else "#333333")
        if not concat:
            nx.draw_networkx_edge_labels(graph, pos, edge_labels={(u, v, key): data.get("op")}, ax=ax,
                                         connectionstyle=style, font_size=7,
                                         bbox={"boxstyle": "round", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_title(title)
    ax.set_axis_off()


def plot_cells(space, arch, path) -> Path:
    """The normal and the reduction cell of ``arch`` side by side, saved as a PNG."""
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2)
    for ax, cell in zip(axes, ("normal", "reduce")):
        draw_cell(space.cell_graph(arch, cell), ax, title=f"{cell} cell")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_anytime(curves: Mapping[str, list[dict]], path, thresholds: Mapping[str, list[dict]] | None = None,
                 title: str = "Anytime prediction") -> Path:
    """Accuracy against cumulative MFLOPs per exit, one line per network; dashed lines
    for confidence-threshold exiting (mean MFLOPs per sample)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for name, rows in curves.items():
        line, = ax.plot([r["flops"] / 1e6 for r in rows], [r["accuracy"] for r in rows], marker="o", label=name)
        if thresholds and name in thresholds:
            pts = sorted(thresholds[name], key=lambda r: r["flops"])
            ax.plot([p["flops"] / 1e6 for p in pts], [p["accuracy"] for p in pts], linestyle="--",
                    color=line.get_color(), alpha=0.7, label=f"{name} (confidence exits)")
    ax.set_xlabel("MFLOPs (multiply-adds per sample)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_search_movement(epochs, stability: Mapping, path: Path) -> Path:
    """Per search epoch: max |softmax(alpha) - 1/K| and the mean normalised edge entropy
    (left), and the fraction of the derived cell's edges kept from the previous epoch
    (right) -- whether the search moved and whether its cell settled."""
    fig = Figure(figsize=(9, 3.2))
    ax, bx = fig.subplots(1, 2)
    xs = list(range(1, len(epochs) + 1))
    ax.plot(xs, [e["alpha"]["max_abs_dev"] for e in epochs], marker="o", label="max |softmax - 1/K|")
    ax.plot(xs, [e["alpha"]["entropy_mean"] for e in epochs], marker="s", label="edge entropy / log K (mean)")
    ax.set_xlabel("search epoch")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    unchanged = list(stability.get("unchanged", []))
    bx.plot(xs[1:], unchanged, marker="o")
    bx.set_xlabel("search epoch")
    bx.set_ylabel("edges kept from the previous epoch")
    bx.set_ylim(0, 1.05)
    bx.set_title(f"last quarter stable: {stability.get('last_quarter_stable')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
