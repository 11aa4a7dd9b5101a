"""The Neural Architecture Transformer: training by Algorithm 1 and inference (Section 3.4).

Training alternates, every epoch, (a) updating the shared weights ``w`` of the supernet on
input architectures ``beta ~ p(.)`` with one slice of the training data (40 %), and (b)
updating the policy parameters ``theta`` by policy gradient on the other slice (60 %), Eq. 5:

    grad J = 1/(mn) sum_i sum_j [ grad log pi(alpha_j | beta_i) (R(alpha_j, w) - R(beta_i, w))
                                  + lambda grad H(pi(. | beta_i)) ]

with ``R`` the accuracy on the current mini-batch under the shared weights, ``lambda`` =
0.003 and ``m = n = 1`` (Section 4.1).

What this module adds to the paper, because at CPU scale the paper's recipe gives a
biased reward and a collapsing policy (issue 17):

* ``p(.)`` (:meth:`NeuralArchitectureTransformer.sample_input`) is by default the input
  cell's neighbourhood *without null edges* (NAT's code keeps nulls out of its input
  cells), the input cell itself a quarter of the time, after ``warmup_epochs`` of
  training ``w`` on the input alone;
* :class:`EntropyGuard` raises the entropy coefficient above ``lambda`` while the policy's
  entropy is below a floor (a fraction of the uniform policy's);
* inference: ``sampling`` (the paper's sampling-GCN: best of ``K`` draws by validation
  accuracy under the shared weights), ``maximum`` (maximum-GCN: argmax per edge) and
  ``calibrated`` (the shared-weight shortlist trained for real, the input included:
  :func:`calibrated_choice`);
* ``max_cost_ratio`` > 1 admits transitions that raise the cost (a null edge becoming a
  skip, a strided skip out of a reduction cell), up to that multiple of the input's.

Both phases run in the core :class:`~nascore.api.WeightSharingTrainer`
(``alternate="epoch"``): the weight phase's path-sampling callback draws the ``m`` inputs
``beta``, the policy step is its architecture hook.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from nascore.api import WeightSharingTrainer, resolve_device
from nascore.api import ConfigError, InvalidGenomeError
from nascore.api import in_range, one_of, param

from .cell import Cell, CellPair, Edge, transition_mask
from .costs import EdgeCosts, enforce_budget, network_cost
from .defaults import DEFAULTS as D
from .policy import Policy, make_policy
from .supernet import CellSupernet

#: the supernet always offers DARTS's op set (core ``nascore.nn.ops.DARTS_OPS`` order)
BASE_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
            "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@attrs.define
class NeuralArchitectureTransformer:
    """NAT (Section 3): learns ``pi(alpha | beta; theta)`` with Algorithm 1, then transforms cells."""

    policy: str = param(D["policy"], help="policy network: gcn (NAT, Eq. 3), lstm or random",
                        validator=one_of("gcn", "lstm", "random"))
    epochs: int = param(D["epochs"], help="training epochs of Algorithm 1 (100 in the paper)", validator=in_range(1))
    C: int = param(D["C"], help="channels of the supernet's first cells", validator=in_range(2))
    layers: int = param(D["layers"], help="cells in the supernet (8 in the paper)", validator=in_range(3))
    batch_size: int = param(D["batch_size"], help="mini-batch size of both phases (64 in NAT's code)",
                            validator=in_range(1))
    w_lr: float = param(0.05, help="SGD learning rate of the shared weights (cosine annealed)",
                        validator=in_range(0.0, low_open=True))
    w_momentum: float = param(0.9, help="SGD momentum of the shared weights", validator=in_range(0.0, 1.0))
    w_weight_decay: float = param(3e-4, help="weight decay of the shared weights", validator=in_range(0.0))
    theta_lr: float = param(D["theta_lr"], help="Adam learning rate of the policy (3e-4 in the paper)",
                            validator=in_range(0.0, low_open=True))
    entropy_weight: float = param(D["entropy_weight"], help="lambda of the entropy regularizer (Eq. 4); the "
                                  "floor guard raises it while the policy is below entropy_floor",
                                  validator=in_range(0.0))
    entropy_floor: float = param(D["entropy_floor"], help="collapse guard: while the policy's entropy is below "
                                 "this fraction of the uniform policy's, the entropy coefficient doubles each "
                                 "policy step (and halves back to entropy_weight above it); 0 disables",
                                 validator=in_range(0.0, 1.0))
    m: int = param(D["m"], help="input architectures beta per policy step", validator=in_range(1))
    n: int = param(D["n"], help="sampled architectures alpha per input per policy step", validator=in_range(1))
    w_fraction: float = param(0.4, help="fraction of the training split that trains w; the rest trains theta",
                              validator=in_range(0.0, 1.0, low_open=True, high_open=True))
    hidden: int = param(64, help="hidden units of the GCN / LSTM policy", validator=in_range(1))
    inputs: str = param(D["inputs"], help="distribution p(.) of input cells beta: 'neighbourhood' (the input "
                        "cell's transitions, never to null) or 'space' (uniform over the cell space without nulls, "
                        "the paper's Section 3.3)", validator=one_of("space", "neighbourhood"))
    input_fraction: float = param(D["input_fraction"], help="share of the supernet's input draws that are the input "
                                  "cell itself (oversampled so its shared-weight score means something)",
                                  validator=in_range(0.0, 1.0))
    warmup_epochs: int = param(D["warmup_epochs"], help="epochs training w on the input cell alone before "
                               "Algorithm 1 (a stand-in for the well-learned w_beta of Section 3.2)",
                               validator=in_range(0))
    max_cost_ratio: float = param(D["max_cost_ratio"], help="allowed params and MAdds of the output network as a "
                                  "multiple of the input's; 1 (default): never more; e.g. 1.1 admits the paper's "
                                  "strided skips out of reduction cells", validator=in_range(1.0))
    grad_clip: float = param(5.0, help="gradient-norm clip of both phases", validator=in_range(0.0, low_open=True))
    device: str = param("cpu", help="cpu, cuda or auto")
    seed: int = param(0, help="seed of the data split, the sampled architectures and the initial weights")

    supernet_: CellSupernet | None = attrs.field(default=None, init=False, repr=False)
    policy_: Policy | None = attrs.field(default=None, init=False, repr=False)
    costs_: EdgeCosts | None = attrs.field(default=None, init=False, repr=False)
    template_: CellPair | None = attrs.field(default=None, init=False, repr=False)
    ops_: tuple[str, ...] = attrs.field(default=(), init=False)
    history_: list = attrs.field(factory=list, init=False, repr=False)
    fit_seconds_: float = attrs.field(default=0.0, init=False)
    cost_network_: tuple = attrs.field(default=(), init=False)
    _template_masks: tuple = attrs.field(default=(), init=False, repr=False)

    # ---- setup ----------------------------------------------------------------------
    def setup(self, task, template: CellPair, extra_ops: Sequence[str] = (),
              cost_network=None) -> "NeuralArchitectureTransformer":
        """Build the supernet and policy for cells shaped like ``template`` (node count and
        concat); ``cost_network = (C, layers)`` of the network whose cost must not rise."""
        if template.normal.num_nodes != template.reduce.num_nodes:
            raise InvalidGenomeError(
                f"normal cell has {template.normal.num_nodes} intermediate nodes but the reduction cell "
                f"{template.reduce.num_nodes}; NAT's supernet needs the same number in both"
            )
        self.ops_ = tuple(dict.fromkeys([*BASE_OPS, *sorted(template.ops() | set(extra_ops))]))
        dev = resolve_device(self.device)
        self.template_ = template
        concat = {"normal": template.normal.concat, "reduce": template.reduce.concat}
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
            torch.manual_seed(self.seed)
            self.supernet_ = CellSupernet(self.ops_, task.input_shape, task.num_classes, concat=concat,
                                          nodes=template.normal.num_nodes, C=self.C, layers=self.layers)
            self.policy_ = make_policy(self.policy, self.ops_, self.hidden)
        self.supernet_.to(dev).train()
        self.policy_.to(dev)
        C, layers = cost_network or (self.C, self.layers)
        self.cost_network_ = (C, layers)
        slack = (0.0, 0.0)
        if self.max_cost_ratio > 1.0:  # one edge may take up the whole allowed rise; enforce_budget checks the sum
            cost = network_cost(template, task.input_shape, task.num_classes, C, layers)
            slack = ((self.max_cost_ratio - 1.0) * cost["params"], (self.max_cost_ratio - 1.0) * cost["flops"])
        self.costs_ = EdgeCosts(task.input_shape, C, layers, slack=slack)
        self._template_masks = self.masks(template)
        return self

    def masks(self, pair: CellPair) -> tuple[np.ndarray, np.ndarray]:
        """Allowed actions per edge: Fig. 2c, minus transitions that raise an edge's cost."""
        return tuple(transition_mask(c, self.costs_.cost_ok(c)) for c in pair.cells)

    def sample_input(self, rng: np.random.Generator) -> CellPair:
        """``beta ~ p(.)``: with probability ``input_fraction`` the input cell itself (so
        the supernet learns the weights its score is compared against), otherwise
        ``inputs="neighbourhood"``: a cell of ``Omega_beta``, the input cell's transitions
        (Section 3.2): a change rate ``r ~ U(0, 1)`` per draw, each edge changed with
        probability ``r`` to skip (when allowed) -- never to null: as in NAT's code, the
        input cells carry no nulls, so every drawn cell has a path from the image to the
        classifier (nulls arise only in the policy's outputs ``alpha``);
        ``inputs="space"``: every node picks two inputs and two non-null ops uniformly
        (Section 3.3: "we randomly sample architectures from the whole architecture space")."""
        if self.input_fraction and rng.random() < self.input_fraction:
            return self.template_
        if self.inputs == "neighbourhood":
            rate = rng.random()
            return CellPair(*(self._random_transition(c, rng, rate) for c in self.template_.cells))
        return CellPair(*(self._random_cell(c, rng) for c in self.template_.cells))

    def _random_transition(self, cell: Cell, rng: np.random.Generator, rate: float) -> Cell:
        """Each edge changes with probability ``rate`` to skip where that is allowed (never to null)."""
        mask = self._template_masks[0 if not cell.reduction else 1]
        actions = []
        for row in mask:
            others = np.flatnonzero(row[1:2]) + 1  # the skip action only
            change = len(others) and rng.random() < rate
            actions.append(int(rng.choice(others)) if change else 0)
        return cell.apply(actions)

    def _random_cell(self, like: Cell, rng: np.random.Generator) -> Cell:
        ops = [o for o in self.ops_ if o != "none"]
        edges = []
        for j in range(2, like.num_nodes + 2):
            for _ in range(2):
                edges.append(Edge(ops[int(rng.integers(len(ops)))], int(rng.integers(j)), j))
        return Cell(tuple(edges), like.concat, like.reduction, like.name)

    # ---- Algorithm 1 ----------------------------------------------------------------
    def fit(self, task, template: CellPair, extra_ops: Sequence[str] = (), *, cost_network=None,
            progress: Callable[[dict], None] | None = None) -> "NeuralArchitectureTransformer":
        """Algorithm 1 on ``task.train`` (split 40 % for w, 60 % for theta)."""
        t0 = time.perf_counter()
        self.setup(task, template, extra_ops, cost_network)
        dev = next(self.supernet_.parameters()).device
        w_split, theta_split = self._split(task, dev)
        rng = np.random.default_rng(self.seed)
        trainer = self.weight_trainer(w_split, theta_split)
        params = list(self.policy_.parameters())
        t_opt = torch.optim.Adam(params, lr=self.theta_lr, betas=(0.5, 0.999)) if params else None
        theta_step = None if t_opt is None else self.theta_step(t_opt, rng, trainer.generator_)
        self.history_ = []
        for epoch in range(self.warmup_epochs):  # lr stays w_lr: the schedule starts with Algorithm 1
            record = trainer.train_epoch(0, sample_path=lambda: [self.template_] * self.m)
            self._log(progress, {"epoch": epoch - self.warmup_epochs + 1, "w_loss": self._mean_loss(record),
                                 "warmup": True, "seconds": record["seconds"]})
        for epoch in range(self.epochs):
            record = trainer.train_epoch(epoch, sample_path=self.input_sampler(rng), arch_step=theta_step)
            stats = {}
            if record["arch"]:
                arch = record["arch"]
                stats = {"mean_advantage": float(np.mean([a for s in arch for a in s["advantages"]])),
                         "entropy": float(np.mean([s["entropy"] for s in arch])),
                         "relative_entropy": float(np.mean([s["relative_entropy"] for s in arch])),
                         "entropy_coefficient": float(arch[-1]["entropy_coefficient"]),
                         "unchanged_fraction": float(np.mean([s["unchanged"] for s in arch]))}
            self._log(progress, {"epoch": epoch + 1, "w_loss": self._mean_loss(record), **stats,
                                 "seconds": record["seconds"]})
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def weight_trainer(self, w_split, theta_split=None, epochs: int | None = None) -> WeightSharingTrainer:
        """The core :class:`~nascore.weight_sharing.WeightSharingTrainer` set up for
        Algorithm 1: per epoch a weight phase over ``w_split`` (lines 3-7: SGD, cosine
        over ``epochs``, gradient clipping), then a policy phase over ``theta_split``
        (lines 8-14); every mini-batch kept, one generator seeded by ``seed`` for the
        batches and the policy's samples."""
        trainer = WeightSharingTrainer(batch_size=self.batch_size, lr=self.w_lr, momentum=self.w_momentum,
                                       weight_decay=self.w_weight_decay, grad_clip=self.grad_clip,
                                       alternate="epoch", drop_single=False, device=self.device, seed=self.seed)
        return trainer.setup(self.supernet_, w_split, theta_split, weights=self.supernet_.weight_parameters(),
                             horizon=epochs or self.epochs, loss=self._w_loss)

    def input_sampler(self, rng: np.random.Generator) -> Callable[[], list[CellPair]]:
        """The path-sampling callback of the weight phase: ``m`` inputs ``beta_i ~ p(.)``."""
        return lambda: [self.sample_input(rng) for _ in range(self.m)]

    def _w_loss(self, net, batch, betas) -> torch.Tensor:
        """Lines 3-7: ``1/m sum_i L(beta_i, w)`` on one mini-batch."""
        xb, yb = batch
        return sum(F.cross_entropy(net(xb, beta), yb) for beta in betas) / len(betas)

    def theta_step(self, opt, rng: np.random.Generator, generator: torch.Generator) -> Callable:
        """The architecture hook of the policy phase, lines 8-14: ascend Eq. 5 with the
        reward ``R(alpha, w) - R(beta, w)`` on each mini-batch of the policy split."""

        guard = EntropyGuard(self.entropy_weight, self.entropy_floor)

        def step(s) -> dict:
            xb, yb = s.batch
            betas = [self.sample_input(rng) for _ in range(self.m)]
            out = policy_gradient_step(
                self.policy_, opt, betas, [self.masks(b) for b in betas],
                lambda pair: self.supernet_.accuracy(pair, xb, yb), n=self.n,
                entropy_weight=guard.coefficient, generator=generator, grad_clip=self.grad_clip,
            )
            out["entropy_coefficient"] = guard.coefficient
            guard.update(out["relative_entropy"])
            return out

        return step

    @staticmethod
    def _mean_loss(record) -> float:
        losses = record["losses"].tolist()
        return sum(losses) / max(len(losses), 1)

    def _log(self, progress, record: dict) -> None:
        self.history_.append(record)
        if progress is not None:
            progress(record)

    def _split(self, task, dev):
        n = len(task.train.y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        k = max(1, min(n - 1, int(round(self.w_fraction * n))))
        X, y = task.train.X, task.train.y
        return ((X[perm[:k]].to(dev), y[perm[:k]].to(dev)), (X[perm[k:]].to(dev), y[perm[k:]].to(dev)))

    # ---- inference ------------------------------------------------------------------
    def _check_fitted(self):
        if self.policy_ is None:
            raise ConfigError("the transformer is not trained yet: call fit(task, template) first")

    def distribution(self, pair: CellPair) -> tuple[np.ndarray, np.ndarray]:
        """``pi(. | beta)`` per cell: an ``E x 3`` array of (keep, skip, none) probabilities."""
        self._check_fitted()
        with torch.no_grad():
            return tuple(self.policy_.distribution(c, m).cpu().numpy()
                         for c, m in zip(pair.cells, self.masks(pair)))

    def transform(self, pair: CellPair, task=None, *, mode: str = "sampling", samples: int = 10,
                  seed: int = 0, cost_fn=None, policy: Policy | None = None, score=None,
                  calibrate_top: int = D["calibrate_top"], calibrate_epochs: int = D["calibrate_epochs"],
                  calibrate_init: str = D["calibrate_init"], finetune_epochs: int = D["finetune_epochs"]
                  ) -> tuple[CellPair, dict]:
        """Optimize ``pair``.  ``sampling`` (the paper's sampling-GCN) keeps the best of
        ``samples`` draws by validation accuracy under the shared weights (needs ``task``);
        ``maximum`` takes the argmax; ``calibrated`` draws ``samples`` candidates, keeps the
        ``calibrate_top`` best by shared weights, trains each and the input for real with
        ``score(pair) -> valid accuracy`` and returns the best on validation -- the input
        when none beats it.  The default ``score`` trains the network ``cost_network``
        describes (:func:`network_scorer`): ``calibrate_init="scratch"`` each pair for
        ``calibrate_epochs`` from seeded weights; ``"inherit"`` the
        input for ``calibrate_epochs``, then each pair, the input included, for
        ``finetune_epochs`` from the input's trained weights.
        ``cost_fn(pair) -> {"params", "flops"}`` re-checks the cost of the result (at most
        ``max_cost_ratio`` times the input's); ``policy`` replaces the learned one (e.g.
        :class:`RandomPolicy` for Section 4.4's random search over the same supernet)."""
        self._check_fitted()
        if mode not in ("sampling", "maximum", "calibrated"):
            raise ConfigError(f"inference mode must be 'sampling', 'maximum' or 'calibrated', got {mode!r}")
        if calibrate_init not in ("scratch", "inherit"):
            raise ConfigError(f"calibrate_init must be 'scratch' or 'inherit', got {calibrate_init!r}")
        policy = self.policy_ if policy is None else policy
        with torch.no_grad():
            log_probs = [policy.log_probs(c, m) for c, m in zip(pair.cells, self.masks(pair))]
        info: dict = {"mode": mode}
        budget = (lambda a: a) if cost_fn is None else (
            lambda a: enforce_budget(pair, a, cost_fn, self.max_cost_ratio))
        if mode == "maximum":
            alpha = budget(pair.apply([Policy.argmax(lp) for lp in log_probs]))
        elif mode == "sampling":
            alpha, info["candidates"] = self._best_of_samples(pair, log_probs, task, samples, seed)
            alpha = budget(alpha)
        else:
            scored = self._shared_scores(pair, log_probs, task, samples, seed, budget)
            shortlist = [a for _, a in sorted(scored, key=lambda t: -t[0]) if a != pair][:max(1, calibrate_top)]
            if score is None:
                C, layers = self.cost_network_
                score = network_scorer(task, pair, C, layers, init=calibrate_init, epochs=calibrate_epochs,
                                       finetune_epochs=finetune_epochs, seed=seed, device=self.device)
            alpha, calibrated = calibrated_choice(pair, shortlist, score)
            shared = {json_key(a): acc for acc, a in scored}
            info["candidates"] = [{"valid_accuracy": acc, "genotype": a.to_json(), "is_input": a == pair,
                                   "shared_valid_accuracy": shared.get(json_key(a))} for a, acc in calibrated]
        info["actions"] = pair.actions_to(alpha)
        info["probabilities"] = [lp.exp().cpu().numpy().round(4).tolist() for lp in log_probs]
        return alpha, info

    def _draws(self, pair, log_probs, samples, seed) -> list[CellPair]:
        """Up to ``samples`` distinct draws ``alpha ~ pi(. | pair)`` (seeded)."""
        gen = torch.Generator().manual_seed(seed)
        seen, out = set(), []
        for _ in range(max(1, samples)):
            alpha = pair.apply([Policy.sample(lp, gen) for lp in log_probs])
            if json_key(alpha) not in seen:
                seen.add(json_key(alpha))
                out.append(alpha)
        return out

    def _shared_scores(self, pair, log_probs, task, samples, seed, budget=lambda a: a):
        if task is None:
            raise ConfigError("sampling inference needs the task (validation accuracy under shared weights)")
        dev = next(self.supernet_.parameters()).device
        Xv, yv = task.valid.X.to(dev), task.valid.y.to(dev)
        alphas = list({json_key(a): a for a in (budget(a) for a in self._draws(pair, log_probs, samples, seed))}
                      .values())
        return [(100.0 * self.supernet_.accuracy(a, Xv, yv), a) for a in alphas]

    def _best_of_samples(self, pair, log_probs, task, samples, seed):
        scored = self._shared_scores(pair, log_probs, task, samples, seed)
        best = max(scored, key=lambda t: t[0])
        return best[1], [{"shared_valid_accuracy": a, "genotype": p.to_json()} for a, p in scored]

    def shared_accuracy(self, pair: CellPair, split) -> float:
        """Accuracy in percent of ``pair`` on ``split`` under the shared weights."""
        self._check_fitted()
        dev = next(self.supernet_.parameters()).device
        return 100.0 * self.supernet_.accuracy(pair, split.X.to(dev), split.y.to(dev))


def policy_gradient_step(policy: Policy, opt, betas: Sequence[CellPair], masks, reward: Callable[[CellPair], float], *,
                         n: int = 1, entropy_weight: float = 0.003, generator=None, grad_clip: float = 5.0) -> dict:
    """One ascent step on Eq. 5 for the inputs ``betas`` (m of them), ``n`` sampled
    ``alpha ~ pi(. | beta)`` each, advantage ``reward(alpha) - reward(beta)``."""
    opt.zero_grad(set_to_none=True)
    objective, advantages, entropies, relative, unchanged = 0.0, [], [], [], 0
    for beta, mask in zip(betas, masks):
        r_beta = reward(beta)
        log_probs = [policy.log_probs(c, mk) for c, mk in zip(beta.cells, mask)]
        entropy = sum(Policy.entropy(lp) for lp in log_probs)
        h_max = max_entropy(mask)
        for _ in range(n):
            actions = [Policy.sample(lp, generator) for lp in log_probs]
            unchanged += all(a == 0 for acts in actions for a in acts)
            advantage = reward(beta.apply(actions)) - r_beta
            log_pi = sum(Policy.log_prob(lp, a) for lp, a in zip(log_probs, actions))
            objective = objective + log_pi * advantage + entropy_weight * entropy
            advantages.append(advantage)
        entropies.append(float(entropy.detach()))
        relative.append(entropies[-1] / h_max if h_max > 0 else 1.0)
    (-objective / (len(betas) * n)).backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
    opt.step()
    return {"advantages": advantages, "entropy": float(np.mean(entropies)),
            "relative_entropy": float(np.mean(relative)), "unchanged": unchanged / (len(betas) * n)}


def max_entropy(masks) -> float:
    """Entropy of the uniform policy over the allowed actions: ``sum_edges log(#allowed)``."""
    return float(sum(np.log(np.maximum(np.asarray(m).sum(1), 1)).sum() for m in masks))


@attrs.define
class EntropyGuard:
    """The collapse guard of Algorithm 1's policy steps: the entropy coefficient is the
    paper's ``lambda`` while the policy's entropy is at least ``floor`` times the uniform
    policy's; each step below the floor doubles it (up to ``cap``), each step above halves
    it back towards ``lambda``.  Advantages here are 0.1-0.6 (accuracy differences), which
    ``lambda = 0.003`` cannot balance; the doubling finds the coefficient that can."""

    weight: float
    floor: float
    cap: float = 10.0
    coefficient: float = attrs.field(init=False)

    def __attrs_post_init__(self):
        self.coefficient = self.weight

    def update(self, relative_entropy: float) -> float:
        if self.floor > 0 and relative_entropy < self.floor:
            self.coefficient = min(max(2.0 * self.coefficient, 1e-3), self.cap)
        else:
            self.coefficient = max(self.weight, 0.5 * self.coefficient)
        return self.coefficient


def cost_function(task, C: int, layers: int):
    """``pair -> {"params", "flops"}`` of the DARTS network of ``pair`` for ``task``."""
    return lambda pair: network_cost(pair, task.input_shape, task.num_classes, C, layers)


def json_key(pair: CellPair) -> tuple:
    return (pair.normal.ops, pair.reduce.ops)


def calibrated_choice(beta: CellPair, candidates: Sequence[CellPair], score: Callable[[CellPair], float]
                      ) -> tuple[CellPair, list[tuple[CellPair, float]]]:
    """The candidate with the best ``score`` (validation accuracy after real training),
    the input ``beta`` included and scored first; a candidate replaces ``beta`` only when
    it scores strictly higher, so the result is never worse on validation than the input.
    Returns the choice and every ``(pair, score)``."""
    scored = [(beta, float(score(beta)))]
    for alpha in candidates:
        if alpha != beta and all(alpha != p for p, _ in scored):
            scored.append((alpha, float(score(alpha))))
    best = scored[0]
    for pair, acc in scored[1:]:
        if acc > best[1]:
            best = (pair, acc)
    return best[0], scored


def inherit_weights(src: torch.nn.Module, dst: torch.nn.Module) -> int:
    """Copy into ``dst`` every parameter and buffer of ``src`` with the same name and shape;
    returns how many tensors were copied.  For a NAT candidate ``dst`` built like its input
    ``src`` this is exactly "a subgraph plus identities": the stem, preprocessing,
    classifier and every edge that keeps its op share names and shapes, while an edge
    turned into ``skip_connect`` (an identity, or a factorized reduction with its own
    parameter names) or ``none`` (no parameters) finds nothing to copy and keeps ``dst``'s
    own (seeded) weights."""
    source, target = src.state_dict(), dst.state_dict()
    copied = 0
    for name, tensor in target.items():
        if name in source and source[name].shape == tensor.shape:
            target[name] = source[name].detach().clone()
            copied += 1
    dst.load_state_dict(target)
    return copied


def finetune_scorer(beta: CellPair, build: Callable, train: Callable, evaluate: Callable, *, epochs: int,
                    finetune_epochs: int) -> Callable[[CellPair], float]:
    """``pair -> valid accuracy`` after fine-tuning from the input's trained weights: the
    input ``beta``'s network is trained once for ``epochs`` (``train(model, epochs)``,
    on first use), then each scored pair -- ``beta`` itself included, so the comparison is
    paired and equally long -- is built seeded (``build(pair)``), takes the input's
    weights (:func:`inherit_weights`) and is trained ``finetune_epochs`` more."""
    parent: list = []

    def score(pair: CellPair) -> float:
        if not parent:
            model = build(beta)
            train(model, epochs)
            parent.append(model)
        model = build(pair)
        inherit_weights(parent[0], model)
        train(model, finetune_epochs)
        return float(evaluate(model))

    return score


def calibration_scorer(init: str, beta: CellPair, build: Callable, train: Callable, evaluate: Callable, *,
                       epochs: int, finetune_epochs: int) -> Callable[[CellPair], float]:
    """``pair -> valid accuracy`` of calibrated inference for ``calibrate_init`` ``init``:
    ``"scratch"``, each pair built seeded (``build(pair)``), trained ``epochs``
    (``train(model, epochs)``) and evaluated (``evaluate(model)``); ``"inherit"``,
    :func:`finetune_scorer`.  Every pair gets the same seed: a paired comparison."""
    if init == "inherit":
        return finetune_scorer(beta, build, train, evaluate, epochs=epochs, finetune_epochs=finetune_epochs)
    if init != "scratch":
        raise ConfigError(f"calibrate_init must be 'scratch' or 'inherit', got {init!r}")

    def score(pair: CellPair) -> float:
        model = build(pair)
        train(model, epochs)
        return float(evaluate(model))

    return score


def network_scorer(task, beta: CellPair, C: int, layers: int, *, init: str = D["calibrate_init"], epochs: int,
                   finetune_epochs: int = D["finetune_epochs"], seed: int, device: str = "cpu",
                   batch_size: int = 64, lr: float = 0.05) -> Callable[[CellPair], float]:
    """:func:`calibration_scorer` for the DARTS network of ``C`` channels and ``layers``
    cells: weights seeded by ``seed``, SGD with cosine from ``lr`` in every phase."""
    from nascore.api import Trainer

    from .costs import build_network

    def build(pair):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_network(pair, task.input_shape, task.num_classes, C, layers)

    def train(model, n):
        Trainer(epochs=n, batch_size=batch_size, lr=lr, device=device).fit(model, task, seed=seed)

    def evaluate(model):
        return Trainer(batch_size=batch_size, device=device).accuracy(model, task.valid)

    return calibration_scorer(init, beta, build, train, evaluate, epochs=epochs, finetune_epochs=finetune_epochs)
