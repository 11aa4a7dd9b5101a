"""The ``msranas`` optimizer: MS-RANAS's differentiable search followed by the training
and anytime evaluation of the final multi-exit network.

1. **Search** (Sections 3.1-3.3, 4.1): DARTS's bilevel optimization on a multi-scale
   supernet with early exits (:mod:`nascore_msranas.search`); the search network's
   scales, layers, exits and cutout are this component's parameters -- the switches of
   the paper's ablation (Figs. 4-5).
2. **Final training** (Section 4.2): the derived cells are evaluated with the run's
   evaluator, i.e. ``ctx.space.build(arch)`` trained by the core Trainer.  With the
   ``msranas`` space that network is the multi-scale, multi-exit network the ``[space]``
   table describes (Section 4.4: three scales, seven layers); with the plain ``darts``
   space it is a DARTS network.  These evaluations go through ``ctx.evaluate``: they are
   stored, count toward the budget and are replayed on resume.
3. **Selection**: with ``candidates > 1`` the genotypes of the last distinct search
   epochs are all trained and the best kept by last-exit validation accuracy or by the
   area under the validation accuracy-MFLOPs curve (Section 5's proposal).
4. **Anytime evaluation** (Sections 4.2-4.3): per-exit test accuracy, cumulative MFLOPs,
   parameters and CPU latency, confidence-threshold exiting, the area score; the cells
   and the anytime curve become report figures.

``run(ctx)`` returns a ``SearchResult`` whose ``best`` is a ``darts`` architecture,
whose ``metrics`` are the final training's plus the anytime headline numbers, and whose
``state_dict`` holds the trained final network (saved as ``best.pt``).
"""

from __future__ import annotations

import attrs

from nascore.api import ConfigError
from nascore.api import in_range, one_of, param
from nascore.api import SearchResult


def _exit_weights(inst, attribute, value):
    if value is not None and (not value or any(w < 0 for w in value)):
        raise ValueError(f"exit_weights must be a non-empty list of non-negative numbers, got {value!r}")


@attrs.define(kw_only=True)
class MSRANAS:
    """Multi-scale resource-aware NAS: DARTS search on a multi-scale early-exit network,
    then the final multi-exit network's training and anytime evaluation."""

    epochs: int = param(50, help="search epochs (50 in DARTS)", validator=in_range(1))
    batch_size: int = param(64, help="search mini-batch size (64 in DARTS)", validator=in_range(2))
    order: str = param("first", help="bilevel approximation: 'first' or 'second' order (DARTS Eq. 7-8)",
                       validator=one_of("first", "second"))
    w_lr: float = param(0.025, help="initial learning rate of the network weights (SGD, cosine)",
                        validator=in_range(0.0, low_open=True))
    w_lr_min: float = param(0.001, help="final learning rate of the cosine schedule", validator=in_range(0.0))
    w_momentum: float = param(0.9, help="SGD momentum of the weights", validator=in_range(0.0, 1.0, high_open=True))
    w_weight_decay: float = param(3e-4, help="weight decay of the weights", validator=in_range(0.0))
    alpha_lr: float = param(3e-4, help="learning rate of the architecture parameters (Adam)",
                            validator=in_range(0.0, low_open=True))
    alpha_weight_decay: float = param(1e-3, help="weight decay of the architecture parameters",
                                      validator=in_range(0.0))
    alpha_lr_scale: str = param("steps", help="'steps': alpha_lr x max(1, 19550 / architecture steps of this "
                                "search), DARTS's lr x steps budget at any scale; 'none': alpha_lr as given",
                                validator=one_of("steps", "none"))
    warmup_epochs: int = param(0, help="first search epochs that train the weights only (the DARTS-family "
                               "warm-up, e.g. 15 of 50 in PC-DARTS); the steps rule counts the steps after it",
                               validator=in_range(0))
    grad_clip: float | None = param(5.0, help="clip the weights' gradient norm; none disables",
                                    validator=in_range(0.0, low_open=True))
    search_scales: int = param(3, help="scales of the search network (Section 4.1: 3 beat 1)", validator=in_range(1))
    search_layers: int = param(5, help="layers of the search network (5 in Section 4.1)", validator=in_range(2))
    search_channels: int = param(16, help="cell channels of the search network's finest scale (16)",
                                 validator=in_range(1))
    search_growth: int = param(2, help="channel factor per coarser scale in the search network",
                               validator=in_range(1))
    search_exits: bool = param(True, help="early exits during search (Section 4.1)")
    search_cutout: int = param(0, help="cutout side in pixels during search, 0 disables (16 on CIFAR, Section 4.1)",
                               validator=in_range(0))
    exit_weights: list[float] | None = param(None, help="loss weight per exit of the search network (Eq. 3); "
                                                        "none: equal", validator=_exit_weights)
    candidates: int = param(1, help="derived genotypes of the last distinct epochs to train and compare",
                            validator=in_range(1))
    selection: str = param("accuracy", help="choose among candidates by last-exit 'accuracy' or anytime 'area'",
                           validator=one_of("accuracy", "area"))
    latency_repeats: int = param(10, help="timed passes per exit for the CPU latency (0 skips it)",
                                 validator=in_range(0))

    #: the conformance kit runs a one-epoch search on a digits subset with its synthetic evaluator
    conformance = {
        "params": {"epochs": 1, "batch_size": 64, "search_scales": 2, "search_layers": 3, "search_channels": 2,
                   "latency_repeats": 0},
        "space": {"name": "msranas", "nodes": 2, "C": 2, "layers": 3, "scales": 2},
        "task": {"dataset": "digits", "seed": 0, "subset": 128},
        "budget": 2,
    }

    def settings(self):
        from .search import SearchSettings

        return SearchSettings(
            epochs=self.epochs, batch_size=self.batch_size, order=self.order, w_lr=self.w_lr,
            w_lr_min=self.w_lr_min, w_momentum=self.w_momentum, w_weight_decay=self.w_weight_decay,
            alpha_lr=self.alpha_lr, alpha_weight_decay=self.alpha_weight_decay, grad_clip=self.grad_clip,
            alpha_lr_scale=self.alpha_lr_scale, warmup_epochs=self.warmup_epochs,
            cutout=self.search_cutout, exit_weights=self.exit_weights)

    def search_layout(self, input_shape):
        from .network import make_layout

        return make_layout(input_shape, scales=self.search_scales, layers=self.search_layers,
                           C=self.search_channels, growth=self.search_growth, exits=self.search_exits)

    # ---- checks ------------------------------------------------------------------
    def check(self, ctx):
        """Fail before searching on a wrong space, evaluator, task or exit weights."""
        from nascore.api import DartsSpace

        if not isinstance(ctx.space, DartsSpace):
            raise ConfigError(f"the msranas optimizer searches DARTS cells: use [space] name = 'msranas' or "
                              f"'darts', not {ctx.config.get('space', {}).get('name', ctx.space.name)!r}")
        task = ctx.task
        if task.kind != "image":
            raise ConfigError(f"msranas needs an image task; {task.name!r} is {task.kind}")
        if ctx.remaining < 1:
            raise ConfigError("msranas trains at least one final network: set budget >= 1")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be below epochs ({self.epochs}): "
                              "the architecture needs at least one epoch")
        layout = self.search_layout(task.input_shape)
        if self.exit_weights is not None and len(self.exit_weights) != layout.num_exits:
            raise ConfigError(f"exit_weights has {len(self.exit_weights)} entries but the search network has "
                              f"{layout.num_exits} exits (search_layers - 1, or 1 without search_exits)")
        self._check_final_exits(ctx, task)
        return layout

    def _check_final_exits(self, ctx, task) -> None:
        """Build one final network now, so a space the input cannot hold (too many
        scales) or exit weights of the wrong length fail before the search."""
        import numpy as np

        from .anytime import num_exits

        exits = num_exits(ctx.space.build(ctx.space.sample(np.random.default_rng(0)), task))
        weights = getattr(ctx.evaluator, "exit_weights", None)
        if weights is not None and len(weights) != exits:
            raise ConfigError(f"[evaluator] exit_weights has {len(weights)} entries but the final network has "
                              f"{exits} exits")

    # ---- run ---------------------------------------------------------------------
    def run(self, ctx) -> SearchResult:
        layout = self.check(ctx)
        record = self._search(ctx, layout)
        archs = self._candidates(ctx.space, record.genomes)
        evaluations, weights = self._train(ctx, archs)
        ok = [e for e in evaluations if e.ok]
        info = {"search": self._search_info(record, layout), "candidates": [e.key for e in evaluations]}
        if not ok:
            ctx.log(f"msranas: every final training failed: {evaluations[0].error if evaluations else 'no budget'}")
            return SearchResult(best=archs[0], info={**info, "final_error": [e.error for e in evaluations]})
        best, scores = self._select(ctx, ok)
        info["selection"] = {"by": self.selection, "scores": scores}
        model, state = self._final_model(ctx, best, weights)
        anytime = None if model is None else self._anytime(ctx, model)
        info.update(self._describe(ctx, best, record, anytime))
        self._figures(ctx, best, anytime, record)
        return SearchResult(best=ctx.space.make(best.genome), info=info, state_dict=state,
                            metrics=self._metrics(ctx, best, record, anytime))

    def _metrics(self, ctx, best, record, anytime) -> dict:
        """The final training's metrics plus the anytime headline numbers."""
        metrics = {**best.metrics, "search_seconds": record.seconds}
        if anytime is None:
            ctx.log("msranas: the evaluator returned no trained weights; no anytime evaluation")
            return metrics
        s = anytime["summary"]
        return {**metrics, "anytime_area": s["area"], "first_exit_accuracy": s["first_accuracy"],
                "first_exit_flops_share": s["first_flops_share"]}

    def _search(self, ctx, layout):
        import torch

        from .network import MultiScaleSupernet
        from .search import Searcher

        space, task = ctx.space, ctx.task
        ops = ("none",) + tuple(op for op in space.op_names if op != "none")
        device = ctx.trainer().resolve_device()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            net = MultiScaleSupernet(ops, task.input_shape, task.num_classes, layout, nodes=space.nodes)
            searcher = Searcher(net, space, task, self.settings(), seed=ctx.seed, device=device)
            ctx.log(f"msranas: searching {space.nodes}-node cells on {layout.scales} scale(s), "
                    f"{layout.layers} layers, {layout.num_exits} exit(s), {self.order} order")
            with ctx.progress(self.epochs, "msranas search") as advance:
                record = searcher.run(log=ctx.log, advance=advance)
            record.exit_accuracies = searcher.valid_accuracies()
        return record

    def _candidates(self, space, genomes):
        """The genomes of the last ``candidates`` distinct search epochs, latest first."""
        seen, out = set(), []
        for genome in reversed(genomes):
            arch = space.make(genome)
            if arch.key not in seen:
                seen.add(arch.key)
                out.append(arch)
            if len(out) == self.candidates:
                break
        return out

    def _train(self, ctx, archs):
        weights = {}

        def keep(ev, state_dict):
            if state_dict is not None:
                weights[ev.key] = state_dict

        ctx.on_result.append(keep)
        try:
            evaluations = ctx.evaluate(archs)
        finally:
            ctx.on_result.remove(keep)
        return evaluations, weights

    def _select(self, ctx, evaluations):
        """The chosen evaluation and every candidate's score."""
        if self.selection == "accuracy":
            scores = {e.key: e.metric("valid_accuracy") for e in evaluations}
        else:
            scores = self._area_scores(ctx, evaluations)
        best = max(evaluations, key=lambda e: (scores[e.key] is not None, scores[e.key] or 0.0))
        return best, scores

    def _area_scores(self, ctx, evaluations):
        """Area under each candidate's validation accuracy-MFLOPs curve, on a common
        budget range (the costliest candidate's last exit)."""
        from .anytime import anytime_area, exit_costs

        costs, accs = {}, {}
        for e in evaluations:
            model = ctx.space.build(e.arch, ctx.task)
            costs[e.key] = [r["flops"] for r in exit_costs(model, ctx.task.input_shape, latency_repeats=0)]
            last = e.curve[-1] if e.curve else {}
            accs[e.key] = last.get("valid_exit_accuracies") or [e.metric("valid_accuracy")]
        top = max(c[-1] for c in costs.values())
        return {k: anytime_area(accs[k], costs[k], top) for k in costs}

    def _final_model(self, ctx, best, weights):
        """The trained final network: weights captured from the evaluation, kept in the
        run directory, or (after a resume) retrained with the evaluation's seed; None
        when the evaluator trains nothing (a tabular or synthetic one)."""
        import torch

        from nascore.api import evaluation_seed

        state = weights.get(best.key) or ctx.weights_for(best.key)
        if state is None:
            outcome = ctx.evaluator.evaluate(best.arch, ctx.space, ctx.task, seed=evaluation_seed(ctx.seed, best.key))
            state = outcome.state_dict
        if state is None:
            return None, None
        with torch.random.fork_rng(devices=[]):
            model = ctx.space.build(best.arch, ctx.task)
        model.load_state_dict(state)
        return model.cpu().eval(), state

    def _anytime(self, ctx, model) -> dict:
        from .anytime import anytime_table, exit_probabilities, summarize

        task = ctx.task
        rows = anytime_table(model, task.test, task.input_shape, latency_repeats=self.latency_repeats)
        probs = exit_probabilities(model, task.test.X)
        return {"table": rows, "summary": summarize(rows, probs.numpy(), task.test.y.numpy())}

    def _search_info(self, record, layout) -> dict:
        return {"epochs": record.epochs, "seconds": record.seconds,
                "epoch_seconds": record.seconds / max(len(record.epochs), 1),
                "network": {"scales": layout.scales, "layers": layout.layers, "exits": layout.exits,
                            "C": layout.C, "growth": layout.growth, "reductions": list(layout.reduction_layers)},
                "valid_exit_accuracies": record.exit_accuracies,
                "softmax_alphas": record.weights,
                "alpha_lr": record.alpha_lr, "arch_steps": record.arch_steps, "alpha_lr_scale": self.alpha_lr_scale,
                "warmup_epochs": self.warmup_epochs,
                "alpha_movement": [row.get("alpha") for row in record.epochs],
                "cell_stability": record.stability}

    def _describe(self, ctx, best, record, anytime) -> dict:
        space = ctx.space
        arch = space.make(best.genome)
        epochs = best.metrics.get("epochs") or len(best.curve) or 1
        derived_epoch = (best.metrics.get("train_seconds") or 0.0) / epochs
        search_epoch = record.seconds / max(len(record.epochs), 1)
        return {
            "genotype": space.to_genotype(arch),
            "network": {"space": ctx.config.get("space", {}),
                        "exits": None if anytime is None else len(anytime["table"])},
            "anytime": anytime,
            "search_cost": {"search_seconds": record.seconds, "search_epoch_seconds": search_epoch,
                            "final_epoch_seconds": derived_epoch,
                            "ratio": search_epoch / derived_epoch if derived_epoch else None},
        }

    def _figures(self, ctx, best, anytime, record=None) -> None:
        if ctx.out is None:
            return
        from .plots import plot_anytime, plot_cells, plot_search_movement

        arch = ctx.space.make(best.genome)
        cells = plot_cells(ctx.space, arch, ctx.out / "msranas_cells.png")
        ctx.add_figure(cells, "MS-RANAS searched cells (normal, reduction)")
        if record is not None and record.epochs and "alpha" in record.epochs[0]:
            moved = plot_search_movement(record.epochs, record.stability, ctx.out / "msranas_search.png")
            ctx.add_figure(moved, "MS-RANAS search: alpha's movement from uniform and the derived cell's stability")
        if anytime is None:
            return
        curve = plot_anytime({"searched cell": anytime["table"]}, ctx.out / "msranas_anytime.png",
                             thresholds={"searched cell": anytime["summary"]["threshold_curve"]})
        ctx.add_figure(curve, "MS-RANAS anytime prediction: test accuracy vs MFLOPs per exit")
