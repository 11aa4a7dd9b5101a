"""Policies: masked distributions, permutation consistency of the GCN (Eq. 3), and the
policy gradient of Eq. 5 on a synthetic reward."""

import math

import numpy as np
import pytest
import torch

from nascore_nat import genotypes
from nascore_nat.cell import Cell, CellPair, Edge, category, transition_mask
from nascore_nat.policy import GCNPolicy, LSTMPolicy, Policy, RandomPolicy, normalized_adjacency
from nascore_nat.transformer import BASE_OPS, policy_gradient_step

ALLOWED_NEXT = {"O": {"O", "S", "N"}, "S": {"S", "N"}, "N": {"N", "S"}}


def random_cell(rng, nodes=4, reduction=False, ops=BASE_OPS):
    edges = [Edge(ops[rng.integers(len(ops))], int(rng.integers(j)), j) for j in range(2, nodes + 2) for _ in range(2)]
    return Cell(tuple(edges), tuple(range(2, nodes + 2)), reduction, "reduce" if reduction else "normal")


@pytest.mark.parametrize("kind", ["gcn", "lstm", "random"])
def test_masks_give_forbidden_transitions_probability_zero(kind):
    torch.manual_seed(0)
    policy = {"gcn": GCNPolicy(BASE_OPS), "lstm": LSTMPolicy(BASE_OPS), "random": RandomPolicy()}[kind]
    rng = np.random.default_rng(0)
    for _ in range(20):
        cell = random_cell(rng, nodes=int(rng.integers(2, 6)), reduction=bool(rng.integers(2)))
        mask = transition_mask(cell)
        probs = policy.distribution(cell, mask).detach().numpy()
        assert np.all(probs[~mask] == 0.0)
        assert np.all(probs[mask] > 0.0)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_random_policy_entropy_is_log_of_allowed_actions():
    cell = genotypes.published("VGG").normal  # edges: N, S, N, O, N, O, N, S
    lp = RandomPolicy().log_probs(cell)
    expected = sum(math.log(3 if c == "O" else 2) for c in cell.categories)
    assert float(Policy.entropy(lp)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", ["gcn", "lstm"])
def test_every_sampled_alpha_respects_fig_2c(kind):
    torch.manual_seed(1)
    policy = GCNPolicy(BASE_OPS) if kind == "gcn" else LSTMPolicy(BASE_OPS)
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        beta = random_cell(rng, nodes=int(rng.integers(2, 6)))
        alpha = beta.apply(Policy.sample(policy.log_probs(beta), gen))
        for b, a in zip(beta.edges, alpha.edges):
            assert category(a.op) in ALLOWED_NEXT[category(b.op)]
            assert category(a.op) != "O" or a.op == b.op  # an O edge keeps its op or becomes S/N


def _relabel(cell: Cell, perm: dict) -> Cell:
    """The same cell with intermediate nodes renamed by ``perm`` (edges re-sorted by target)."""
    m = {0: 0, 1: 1, **perm}
    edges = sorted((Edge(e.op, m[e.src], m[e.dst]) for e in cell.edges), key=lambda e: e.dst)
    return Cell(tuple(edges), tuple(sorted(m[c] for c in cell.concat)), cell.reduction, cell.name)


def test_gcn_is_permutation_consistent():
    torch.manual_seed(0)
    policy = GCNPolicy(BASE_OPS)
    # nodes 2 and 3 both read only the inputs, so swapping their labels is a relabeling
    cell = Cell.from_entries([["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 1, 3],
                              ["dil_conv_5x5", 0, 3], ["sep_conv_5x5", 2, 4], ["none", 3, 4],
                              ["avg_pool_3x3", 3, 5], ["skip_connect", 4, 5]], concat=[4, 5])
    swapped = _relabel(cell, {2: 3, 3: 2, 4: 4, 5: 5})
    p, q = policy.distribution(cell).detach(), policy.distribution(swapped).detach()
    swap = {2: 3, 3: 2}
    for i, e in enumerate(cell.edges):
        j = next(k for k, f in enumerate(swapped.edges)
                 if f.op == e.op and f.src == swap.get(e.src, e.src) and f.dst == swap.get(e.dst, e.dst))
        torch.testing.assert_close(p[i], q[j], atol=1e-6, rtol=0)
    # listing a node's two edges the other way round permutes the rows only
    flipped = Cell((cell.edges[1], cell.edges[0], *cell.edges[2:]), cell.concat)
    r = policy.distribution(flipped).detach()
    torch.testing.assert_close(r[[1, 0, *range(2, 8)]], p, atol=1e-6, rtol=0)


def test_gcn_adjacency_is_symmetric_normalized():
    cell = genotypes.published("ENAS").normal
    a = normalized_adjacency(cell)
    torch.testing.assert_close(a, a.T)
    # D^-1/2 (A+I) D^-1/2 has spectral radius 1 (its top eigenvector is D^1/2 1)
    assert float(torch.linalg.eigvalsh(a).max()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", ["gcn", "lstm"])
def test_policy_gradient_moves_probability_to_the_rewarded_transition(kind):
    """Synthetic reward: +1 when edge 7 of the normal cell (dil_conv_3x3 2->5) becomes a skip
    connection, -0.25 per other changed normal-cell edge; R(beta) = 0.  REINFORCE (Eq. 5)
    must make "skip" on edge 7 and "keep" on the other normal edges the likely actions."""
    torch.manual_seed(0)
    beta = genotypes.published("DARTS_V2")
    policy = GCNPolicy(BASE_OPS) if kind == "gcn" else LSTMPolicy(BASE_OPS)
    masks = (transition_mask(beta.normal), transition_mask(beta.reduce))

    def reward(pair: CellPair) -> float:
        changed = sum(a != b for i, (a, b) in enumerate(zip(pair.normal.ops, beta.normal.ops)) if i != 7)
        return float(pair.normal.ops[7] == "skip_connect") - 0.25 * changed

    with torch.no_grad():
        before = policy.distribution(beta.normal, masks[0])
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        policy_gradient_step(policy, opt, [beta], [masks], reward, n=2, entropy_weight=0.003, generator=gen)
    with torch.no_grad():
        after = policy.distribution(beta.normal, masks[0])
    assert float(before[7, 1]) == pytest.approx(1 / 3, abs=0.15)
    assert float(after[7, 1]) > 0.9
    others = [0, 1, 2, 3, 4, 5, 6]
    assert float(after[others, 0].mean()) > 0.8 > float(before[others, 0].mean())
