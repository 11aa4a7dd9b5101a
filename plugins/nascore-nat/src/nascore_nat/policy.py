"""Transformation policies pi(alpha | beta; theta): per edge, a distribution over the actions
(keep, skip, none) masked to the transitions of Fig. 2c.

* :class:`GCNPolicy` -- NAT's policy (Section 3.3, Eq. 3): a two-layer graph convolution
  network over ``(A, X)`` -- ``A`` the cell's adjacency, ``X`` the attributes of each node
  together with its two input edges -- followed by a fully-connected layer:
  ``H = A_hat relu(A_hat X W0) W1``; each edge ``u -> v`` reads out
  ``softmax(mask(W_FC [h_v; h_u; x_uv]))`` where ``x_uv`` encodes the edge's own op.  The
  edge readout is how the node-level ``Z`` of Eq. 3 becomes one distribution per edge.
* :class:`LSTMPolicy` -- the baseline of Section 3.3 / 4.4 that treats the cell as a
  sequence of edge tokens.
* :class:`RandomPolicy` -- "Random Search" of Section 4.4: uniform over allowed actions.

All policies share :meth:`Policy.distribution`, :meth:`Policy.sample`,
:meth:`Policy.log_prob` and :meth:`Policy.entropy`; forbidden actions get probability
exactly zero (their logits are set to the most negative float before the softmax).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nascore.api import model_device

from .cell import Cell, category, transition_mask

CATEGORIES = ("O", "S", "N")


class OpVocabulary:
    """Op name -> index; ops outside the vocabulary share the last index ("other")."""

    def __init__(self, ops: Sequence[str]):
        self.ops = tuple(dict.fromkeys(ops))
        self._index = {o: i for i, o in enumerate(self.ops)}

    def __len__(self) -> int:
        return len(self.ops) + 1

    def index(self, op: str) -> int:
        return self._index.get(op, len(self.ops))


def normalized_adjacency(cell: Cell) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of the undirected cell graph (Kipf & Welling, Eq. 2),
    ``A_ij`` the number of edges between nodes i and j."""
    n = cell.num_nodes + 2
    a = torch.eye(n)
    for e in cell.edges:
        a[e.src, e.dst] += 1.0
        a[e.dst, e.src] += 1.0
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def edge_attributes(cell: Cell, vocab: OpVocabulary) -> torch.Tensor:
    """Per edge: one-hot op, one-hot category, and whether it is strided (reduction input)."""
    x = torch.zeros(len(cell.edges), len(vocab) + len(CATEGORIES) + 1)
    for i, e in enumerate(cell.edges):
        x[i, vocab.index(e.op)] = 1.0
        x[i, len(vocab) + CATEGORIES.index(category(e.op))] = 1.0
        x[i, -1] = float(cell.reduction and e.src < 2)
    return x


def node_attributes(cell: Cell, vocab: OpVocabulary) -> torch.Tensor:
    """``X`` of Eq. 3: per node its kind (input c_{k-2}, input c_{k-1}, intermediate), the
    cell kind, whether it feeds the output, and the summed attributes of its two input
    edges (summing keeps X independent of the order the two edges are listed in)."""
    n = cell.num_nodes + 2
    ex = edge_attributes(cell, vocab)
    x = torch.zeros(n, 5 + ex.shape[1])
    x[0, 0] = x[1, 1] = 1.0
    x[2:, 2] = 1.0
    x[:, 3] = float(cell.reduction)
    for c in cell.concat:
        x[c, 4] = 1.0
    for i, e in enumerate(cell.edges):
        x[e.dst, 5:] += ex[i]
    return x


class Policy(nn.Module):
    """Base class: subclasses implement ``logits(cell) -> E x 3`` (before masking)."""

    def logits(self, cell: Cell) -> torch.Tensor:
        raise NotImplementedError

    def log_probs(self, cell: Cell, mask: np.ndarray | None = None) -> torch.Tensor:
        """Masked log-probabilities ``E x 3``; forbidden actions are exactly ``-inf``-like."""
        mask = transition_mask(cell) if mask is None else mask
        m = torch.as_tensor(mask, dtype=torch.bool, device=model_device(self, "cpu"))
        z = self.logits(cell).masked_fill(~m, torch.finfo(torch.float32).min)
        return torch.log_softmax(z, dim=-1)

    def distribution(self, cell: Cell, mask=None) -> torch.Tensor:
        return self.log_probs(cell, mask).exp()

    @staticmethod
    def sample(log_probs: torch.Tensor, generator: torch.Generator | None = None) -> list[int]:
        probs = log_probs.detach().exp().cpu()
        return torch.multinomial(probs, 1, generator=generator).view(-1).tolist()

    @staticmethod
    def argmax(log_probs: torch.Tensor) -> list[int]:
        return log_probs.detach().argmax(-1).view(-1).tolist()

    @staticmethod
    def log_prob(log_probs: torch.Tensor, actions: Sequence[int]) -> torch.Tensor:
        """``log pi(alpha | beta)``: the sum over edges of the chosen actions' log-probabilities."""
        idx = torch.as_tensor(list(actions), dtype=torch.long, device=log_probs.device)
        return log_probs.gather(1, idx[:, None]).sum()

    @staticmethod
    def entropy(log_probs: torch.Tensor) -> torch.Tensor:
        """``H(pi(. | beta))``: the sum of the per-edge entropies (edges are independent).
        Forbidden actions (probability 0, log-probability down to ``-inf``) add nothing:
        their log-probabilities are clamped so that ``0 * log 0`` is 0, not NaN."""
        return -(log_probs.exp() * log_probs.clamp(min=-1e4)).sum()


class GraphConvolution(nn.Module):
    """One GCN layer ``A_hat X W`` (Kipf & Welling 2017, Eq. 2)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, adj):
        return adj @ self.weight(x)


class GCNPolicy(Policy):
    """NAT's two-layer GCN policy (Section 3.3, Eq. 3) with a per-edge FC readout."""

    def __init__(self, ops: Sequence[str], hidden: int = 64):
        super().__init__()
        self.vocab = OpVocabulary(ops)
        edge_dim = len(self.vocab) + len(CATEGORIES) + 1
        self.gc1 = GraphConvolution(5 + edge_dim, hidden)
        self.gc2 = GraphConvolution(hidden, hidden)
        self.fc = nn.Linear(2 * hidden + edge_dim, 3)

    def embed(self, cell: Cell) -> torch.Tensor:
        """Node embeddings ``H = A_hat relu(A_hat X W0) W1`` (Eq. 3 before W_FC)."""
        dev = model_device(self, "cpu")
        adj = normalized_adjacency(cell).to(dev)
        x = node_attributes(cell, self.vocab).to(dev)
        return self.gc2(torch.relu(self.gc1(x, adj)), adj)

    def logits(self, cell: Cell) -> torch.Tensor:
        h = self.embed(cell)
        src = torch.tensor([e.src for e in cell.edges], device=h.device)
        dst = torch.tensor([e.dst for e in cell.edges], device=h.device)
        ex = edge_attributes(cell, self.vocab).to(h.device)
        return self.fc(torch.cat([h[dst], h[src], ex], dim=1))


class LSTMPolicy(Policy):
    """LSTM baseline (Sections 3.3 and 4.4): the cell as a token sequence, one token per edge
    (its op, source node, target node, category and stride); an LSTM reads the sequence and
    a linear layer gives each edge's action logits."""

    def __init__(self, ops: Sequence[str], hidden: int = 64, max_nodes: int = 16):
        super().__init__()
        self.vocab = OpVocabulary(ops)
        self.max_nodes = max_nodes
        edge_dim = len(self.vocab) + len(CATEGORIES) + 1
        self.token = nn.Linear(edge_dim + 2 * max_nodes + 1, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 3)

    def tokens(self, cell: Cell) -> torch.Tensor:
        ex = edge_attributes(cell, self.vocab)
        pos = torch.zeros(len(cell.edges), 2 * self.max_nodes + 1)
        for i, e in enumerate(cell.edges):
            pos[i, min(e.src, self.max_nodes - 1)] = 1.0
            pos[i, self.max_nodes + min(e.dst, self.max_nodes - 1)] = 1.0
            pos[i, -1] = float(cell.reduction)
        return torch.cat([ex, pos], dim=1)

    def logits(self, cell: Cell) -> torch.Tensor:
        t = self.tokens(cell).to(model_device(self, "cpu"))
        out, _ = self.lstm(torch.tanh(self.token(t))[None])
        return self.fc(out[0])


class RandomPolicy(Policy):
    """Random transitions (Section 4.4 "Random Search"): uniform over the allowed actions."""

    def logits(self, cell: Cell) -> torch.Tensor:
        return torch.zeros(len(cell.edges), 3)


POLICIES = {"gcn": GCNPolicy, "lstm": LSTMPolicy, "random": RandomPolicy}


def make_policy(kind: str, ops: Sequence[str], hidden: int = 64) -> Policy:
    if kind == "random":
        return RandomPolicy()
    return POLICIES[kind](ops, hidden=hidden)
