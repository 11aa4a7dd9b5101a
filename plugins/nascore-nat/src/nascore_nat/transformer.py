"""The Neural Architecture Transformer: training by Algorithm 1 and inference (Section 3.4).

Training alternates, every epoch, (a) updating the shared weights ``w`` of the supernet on
architectures ``beta ~ p(.)`` (uniform over the cell space) with one slice of the training
data (40 %), and (b) updating the policy parameters ``theta`` by policy gradient on the
other slice (60 %), Eq. 5:

    grad J = 1/(mn) sum_i sum_j [ grad log pi(alpha_j | beta_i) (R(alpha_j, w) - R(beta_i, w))
                                  + lambda grad H(pi(. | beta_i)) ]

with ``R`` the accuracy on the current mini-batch under the shared weights, ``lambda`` =
0.003 and ``m = n = 1`` (Section 4.1).  Inference either samples ``K`` architectures from
the policy and keeps the one with the best validation accuracy under the shared weights
(sampling-GCN) or takes the most probable action on every edge (maximum-GCN).

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
from .policy import Policy, make_policy
from .supernet import CellSupernet

#: the supernet always offers DARTS's op set (core ``nascore.nn.ops.DARTS_OPS`` order)
BASE_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
            "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@attrs.define
class NeuralArchitectureTransformer:
    """NAT (Section 3): learns ``pi(alpha | beta; theta)`` with Algorithm 1, then transforms cells."""

    policy: str = param("gcn", help="policy network: gcn (NAT, Eq. 3), lstm or random",
                        validator=one_of("gcn", "lstm", "random"))
    epochs: int = param(10, help="training epochs of Algorithm 1 (100 in the paper)", validator=in_range(1))
    C: int = param(8, help="channels of the supernet's first cells", validator=in_range(2))
    layers: int = param(5, help="cells in the supernet (8 in the paper)", validator=in_range(3))
    batch_size: int = param(64, help="mini-batch size of both phases", validator=in_range(1))
    w_lr: float = param(0.05, help="SGD learning rate of the shared weights (cosine annealed)",
                        validator=in_range(0.0, low_open=True))
    w_momentum: float = param(0.9, help="SGD momentum of the shared weights", validator=in_range(0.0, 1.0))
    w_weight_decay: float = param(3e-4, help="weight decay of the shared weights", validator=in_range(0.0))
    theta_lr: float = param(3e-3, help="Adam learning rate of the policy", validator=in_range(0.0, low_open=True))
    entropy_weight: float = param(0.003, help="lambda of the entropy regularizer (Eq. 4)", validator=in_range(0.0))
    m: int = param(1, help="input architectures beta per policy step", validator=in_range(1))
    n: int = param(1, help="sampled architectures alpha per input per policy step", validator=in_range(1))
    w_fraction: float = param(0.4, help="fraction of the training split that trains w; the rest trains theta",
                              validator=in_range(0.0, 1.0, low_open=True, high_open=True))
    hidden: int = param(64, help="hidden units of the GCN / LSTM policy", validator=in_range(1))
    inputs: str = param("space", help="distribution p(.) of input cells beta: 'space' (uniform over the cell space, "
                        "the paper) or 'neighbourhood' (uniform over the input cell's transitions)",
                        validator=one_of("space", "neighbourhood"))
    warmup_epochs: int = param(0, help="epochs training w on the input cell alone before Algorithm 1 (a stand-in "
                               "for the well-learned w_beta of Section 3.2)", validator=in_range(0))
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
        self.costs_ = EdgeCosts(task.input_shape, C, layers)
        self._template_masks = self.masks(template)
        return self

    def masks(self, pair: CellPair) -> tuple[np.ndarray, np.ndarray]:
        """Allowed actions per edge: Fig. 2c, minus transitions that raise an edge's cost."""
        return tuple(transition_mask(c, self.costs_.cost_ok(c)) for c in pair.cells)

    def sample_input(self, rng: np.random.Generator) -> CellPair:
        """``beta ~ p(.)``.  ``inputs="space"``: every node picks two inputs and two non-null
        ops uniformly (Section 3.3: "we randomly sample architectures from the whole
        architecture space"; null edges arise from the transformations, as in NAT's code).
        ``inputs="neighbourhood"``: a cell of ``Omega_beta``, the input cell's transitions
        (Section 3.2): a change rate ``r ~ U(0, 1)`` per draw, each edge changed with
        probability ``r`` to a uniformly drawn other allowed action -- the input itself,
        near and far neighbours all occur, which concentrates the shared weights where NAT
        searches."""
        if self.inputs == "neighbourhood":
            rate = rng.random()
            return CellPair(*(self._random_transition(c, rng, rate) for c in self.template_.cells))
        return CellPair(*(self._random_cell(c, rng) for c in self.template_.cells))

    def _random_transition(self, cell: Cell, rng: np.random.Generator, rate: float) -> Cell:
        """Each edge changes with probability ``rate`` to a uniformly drawn other allowed action."""
        mask = self._template_masks[0 if not cell.reduction else 1]
        actions = []
        for row in mask:
            others = np.flatnonzero(row[1:]) + 1
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
                stats = {"mean_advantage": float(np.mean([a for s in record["arch"] for a in s["advantages"]])),
                         "entropy": float(np.mean([s["entropy"] for s in record["arch"]]))}
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

        def step(s) -> dict:
            xb, yb = s.batch
            betas = [self.sample_input(rng) for _ in range(self.m)]
            return policy_gradient_step(
                self.policy_, opt, betas, [self.masks(b) for b in betas],
                lambda pair: self.supernet_.accuracy(pair, xb, yb), n=self.n,
                entropy_weight=self.entropy_weight, generator=generator, grad_clip=self.grad_clip,
            )

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
                  seed: int = 0, cost_fn=None, policy: Policy | None = None) -> tuple[CellPair, dict]:
        """Optimize ``pair``: ``sampling`` keeps the best of ``samples`` draws by validation
        accuracy under the shared weights (needs ``task``), ``maximum`` takes the argmax.
        ``cost_fn(pair) -> {"params", "flops"}`` re-checks the cost of the result;
        ``policy`` replaces the learned one (e.g. :class:`RandomPolicy` for Section 4.4's
        random search over the same supernet)."""
        self._check_fitted()
        if mode not in ("sampling", "maximum"):
            raise ConfigError(f"inference mode must be 'sampling' or 'maximum', got {mode!r}")
        policy = self.policy_ if policy is None else policy
        with torch.no_grad():
            log_probs = [policy.log_probs(c, m) for c, m in zip(pair.cells, self.masks(pair))]
        info: dict = {"mode": mode}
        if mode == "maximum":
            alpha = pair.apply([Policy.argmax(lp) for lp in log_probs])
        else:
            alpha, info["candidates"] = self._best_of_samples(pair, log_probs, task, samples, seed)
        if cost_fn is not None:
            alpha = enforce_budget(pair, alpha, cost_fn)
        info["actions"] = pair.actions_to(alpha)
        info["probabilities"] = [lp.exp().cpu().numpy().round(4).tolist() for lp in log_probs]
        return alpha, info

    def _best_of_samples(self, pair, log_probs, task, samples, seed):
        if task is None:
            raise ConfigError("sampling inference needs the task (validation accuracy under shared weights)")
        gen = torch.Generator().manual_seed(seed)
        dev = next(self.supernet_.parameters()).device
        Xv, yv = task.valid.X.to(dev), task.valid.y.to(dev)
        seen, scored = set(), []
        for _ in range(max(1, samples)):
            alpha = pair.apply([Policy.sample(lp, gen) for lp in log_probs])
            key = (alpha.normal.ops, alpha.reduce.ops)
            if key in seen:
                continue
            seen.add(key)
            scored.append((self.supernet_.accuracy(alpha, Xv, yv), alpha))
        best = max(scored, key=lambda t: t[0])
        return best[1], [{"shared_valid_accuracy": 100.0 * a, "genotype": p.to_json()} for a, p in scored]

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
    objective, advantages, entropies = 0.0, [], []
    for beta, mask in zip(betas, masks):
        r_beta = reward(beta)
        log_probs = [policy.log_probs(c, mk) for c, mk in zip(beta.cells, mask)]
        entropy = sum(Policy.entropy(lp) for lp in log_probs)
        for _ in range(n):
            actions = [Policy.sample(lp, generator) for lp in log_probs]
            advantage = reward(beta.apply(actions)) - r_beta
            log_pi = sum(Policy.log_prob(lp, a) for lp, a in zip(log_probs, actions))
            objective = objective + log_pi * advantage + entropy_weight * entropy
            advantages.append(advantage)
        entropies.append(float(entropy.detach()))
    (-objective / (len(betas) * n)).backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
    opt.step()
    return {"advantages": advantages, "entropy": float(np.mean(entropies))}


def cost_function(task, C: int, layers: int):
    """``pair -> {"params", "flops"}`` of the DARTS network of ``pair`` for ``task``."""
    return lambda pair: network_cost(pair, task.input_shape, task.num_classes, C, layers)
