"""Drawings of cells before and after NAT, side by side (as NAT's Figs. 3 and 4).

Edges are coloured by category: O (computational op) blue, S (skip) green, N (null)
grey and dashed; an edge NAT changed is drawn thicker in red with its new op named.
"""

from __future__ import annotations

from pathlib import Path

from .cell import Cell, CellPair, category

COLOURS = {"O": "#1f5fa8", "S": "#2a9d3a", "N": "#9a9a9a"}


def _positions(cell: Cell) -> dict:
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for j in range(2, cell.num_nodes + 2):
        pos[j] = (float(j - 1), 0.7 if j % 2 else -0.7)
    pos["out"] = (float(cell.num_nodes + 1), 0.0)
    return pos


def _node(ax, xy, label, colour):
    ax.annotate(label, xy, ha="center", va="center", fontsize=8, zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "black", "lw": 0.6})


def _bezier(p0, p2, rad, trim: float = 0.2):
    """Points of the quadratic Bezier curve from ``p0`` to ``p2`` bending by ``rad`` (data
    coordinates), trimmed by ``trim`` data units at both ends so arrows stop at the boxes,
    and the curve's midpoint (where the op name goes)."""
    import numpy as np

    p0, p2 = np.asarray(p0), np.asarray(p2)
    d = p2 - p0
    ctrl = (p0 + p2) / 2 + rad * np.array([d[1], -d[0]])
    t0 = min(0.35, trim / max(np.hypot(*d), 1e-9))
    t = np.linspace(t0, 1 - t0, 24)[:, None]
    pts = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * ctrl + t ** 2 * p2
    mid = 0.25 * p0 + 0.5 * ctrl + 0.25 * p2
    return pts, mid


def _arrow(ax, pts, colour, lw, dashed):
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MplPath

    codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(pts) - 1)
    ax.add_patch(FancyArrowPatch(path=MplPath(pts, codes), arrowstyle="-|>", mutation_scale=9, lw=lw,
                                 color=colour, linestyle="--" if dashed else "-", zorder=1))


def draw_cell(ax, cell: Cell, title: str, reference: Cell | None = None) -> None:
    """Draw ``cell`` on matplotlib axes ``ax``; edges differing from ``reference`` in red."""
    pos = _positions(cell)
    seen: dict[tuple[int, int], int] = {}
    for i, e in enumerate(cell.edges):
        k = seen.get((e.src, e.dst), 0)
        seen[(e.src, e.dst)] = k + 1
        changed = reference is not None and reference.edges[i].op != e.op
        cat = category(e.op)
        rad = (0.18 if k == 0 else -0.18) * (1 + 0.5 * ((e.dst - e.src) > 2))
        pts, (mx, my) = _bezier(pos[e.src], pos[e.dst], rad)
        colour = "#d62728" if changed else COLOURS[cat]
        _arrow(ax, pts, colour, 2.2 if changed else 1.0, cat == "N")
        ax.text(mx, my, e.op, fontsize=6, ha="center", va="center", zorder=2, color=colour if changed else "black",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    for c in cell.concat:
        _arrow(ax, _bezier(pos[c], pos["out"], 0.0)[0], "#f0a030", 0.8, False)
    _node(ax, pos[0], "c_{k-2}", "#8fd18f")
    _node(ax, pos[1], "c_{k-1}", "#8fd18f")
    for j in range(2, cell.num_nodes + 2):
        _node(ax, pos[j], str(j), "#9cc3e6")
    _node(ax, pos["out"], "c_{k}", "#f6c57f")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-0.6, cell.num_nodes + 1.6)
    ax.set_ylim(-1.7, 1.7)
    ax.axis("off")


def draw_pairs(before: CellPair, after: CellPair, path, titles=("original", "NAT-optimized"),
               caption: str | None = None) -> Path:
    """Save a 2 x 2 figure (normal / reduction cell, before / after) to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    width = 3.2 + 1.5 * before.normal.num_nodes
    fig, axes = plt.subplots(2, 2, figsize=(2 * width, 6.4))
    for row, kind in enumerate(("normal", "reduce")):
        b, a = getattr(before, kind), getattr(after, kind)
        draw_cell(axes[row][0], b, f"{titles[0]}: {kind} cell")
        draw_cell(axes[row][1], a, f"{titles[1]}: {kind} cell", reference=b)
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
