"""Issue 17: unbiased supernet inputs, the entropy guard, the calibrated choice, the
opt-in cost tolerance and one set of defaults."""

import attrs
import numpy as np
import pytest
import torch

from nascore_nat import genotypes
from nascore_nat.cell import CellPair, transition_mask
from nascore_nat.compressor import NATCompressor
from nascore_nat.defaults import DEFAULTS, SHARED
from nascore_nat.policy import GCNPolicy
from nascore_nat.transformer import (BASE_OPS, EntropyGuard, NeuralArchitectureTransformer, calibrated_choice,
                                     cost_function, max_entropy, policy_gradient_step)


def test_defaults_identical_across_api_compressor_and_cli():
    from nascore_nat.cli import make_group

    api = {f.name: f.default for f in attrs.fields(NeuralArchitectureTransformer)}
    comp = {f.name: f.default for f in attrs.fields(NATCompressor)}
    cli = {p.name: p.default for p in make_group().commands["optimize"].params}
    for name in SHARED:
        assert api[name] == comp[name] == cli[name] == DEFAULTS[name], name
    for name in ("samples", "inference", "calibrate_top", "calibrate_epochs", "calibrate_init", "finetune_epochs"):
        assert comp[name] == cli[name] == DEFAULTS[name], name
    assert DEFAULTS["theta_lr"] == 3e-4 and DEFAULTS["entropy_weight"] == 0.003  # the paper's
    assert DEFAULTS["max_cost_ratio"] == 1.0


@pytest.mark.parametrize("name", ["DARTS_V2", "MobileNetV2", "VGG"])
def test_supernet_inputs_never_gain_nulls_and_oversample_the_input(small_digits, name):
    beta = genotypes.published(name)
    nat = NeuralArchitectureTransformer(C=4, layers=3, seed=0).setup(small_digits, beta, cost_network=(4, 3))
    rng = np.random.default_rng(1)
    draws = [nat.sample_input(rng) for _ in range(400)]
    for b in draws:
        for x, y in zip(beta.cells, b.cells):  # a null only where the input already has one
            assert all(f.op != "none" or e.op == "none" for e, f in zip(x.edges, y.edges))
    same = np.mean([b == beta for b in draws])
    # P(input) >= input_fraction = 0.25; 400 draws: 3 standard errors of a 0.25 rate is 0.065
    assert same >= 0.25 - 0.065
    assert same < 0.9  # and neighbours occur too


def test_entropy_guard_doubles_below_the_floor_and_returns_to_lambda():
    g = EntropyGuard(0.003, 0.5)
    assert g.coefficient == 0.003
    assert g.update(0.4) == pytest.approx(0.006) and g.update(0.4) == pytest.approx(0.012)
    for _ in range(20):
        g.update(0.9)
    assert g.coefficient == 0.003
    off = EntropyGuard(0.003, 0.0)
    assert off.update(0.0) == 0.003


def _run_policy(guarded: bool, steps: int = 120):
    """A reward that only ever pays for keeping edges: an unguarded policy collapses."""
    torch.manual_seed(0)
    beta = genotypes.published("DARTS_V2")
    policy = GCNPolicy(BASE_OPS, hidden=16)
    opt = torch.optim.Adam(policy.parameters(), lr=0.02)
    masks = tuple(transition_mask(c) for c in beta.cells)
    gen = torch.Generator().manual_seed(0)
    guard = EntropyGuard(0.003, 0.5 if guarded else 0.0)
    rel = []
    for _ in range(steps):
        out = policy_gradient_step(policy, opt, [beta], [masks],
                                   lambda p: -sum(a != b for a, b in zip(p.normal.ops + p.reduce.ops,
                                                                          beta.normal.ops + beta.reduce.ops)) / 16,
                                   entropy_weight=guard.coefficient, generator=gen)
        guard.update(out["relative_entropy"])
        rel.append(out["relative_entropy"])
    return np.array(rel)


def test_entropy_guard_prevents_collapse():
    free, guarded = _run_policy(False), _run_policy(True)
    assert free[-20:].mean() < 0.1  # without the guard the policy collapses onto "keep"
    # the guard lets it dip below the 0.5 floor for a few steps, then pushes it back up
    assert guarded[-60:].min() > 0.3 and guarded[-20:].mean() > 0.45


def test_max_entropy_is_the_uniform_policys():
    masks = [np.array([[1, 1, 1], [1, 0, 1]], bool)]
    assert max_entropy(masks) == pytest.approx(np.log(3) + np.log(2))


def test_calibrated_choice_is_never_worse_than_the_input():
    beta = genotypes.published("DARTS_V2")
    rng = np.random.default_rng(0)
    masks = [transition_mask(c) for c in beta.cells]
    for trial in range(50):
        cands = [beta.apply([[int(rng.choice(np.flatnonzero(r))) for r in m] for m in masks]) for _ in range(4)]
        scores = {c: float(rng.normal(90, 3)) for c in [beta, *cands]}
        choice, scored = calibrated_choice(beta, cands, scores.__getitem__)
        assert scores[choice] >= scores[beta]
        assert scored[0] == (beta, scores[beta])
        best_other = max(scores[c] for c in cands if c != beta)
        assert (choice == beta) == (best_other <= scores[beta])
        if choice != beta:
            assert scores[choice] == best_other


def test_calibrated_inference_end_to_end(small_digits):
    beta = genotypes.published("ResBlock")
    nat = NeuralArchitectureTransformer(epochs=1, C=4, layers=3, warmup_epochs=0, seed=0)
    nat.fit(small_digits, beta, cost_network=(4, 3))
    calls = []

    def score(p):
        calls.append(p)
        return 50.0 if p == beta else 40.0  # nothing beats the input

    cost = cost_function(small_digits, 4, 3)
    alpha, info = nat.transform(beta, small_digits, mode="calibrated", samples=6, seed=0, cost_fn=cost,
                                score=score, calibrate_top=2)
    assert alpha == beta and calls[0] == beta and 2 <= len(calls) <= 3
    assert info["candidates"][0]["is_input"] and info["candidates"][0]["valid_accuracy"] == 50.0


def test_max_cost_ratio_is_opt_in(small_digits):
    beta = genotypes.published("VGG")
    strict = NeuralArchitectureTransformer(C=4, layers=3).setup(small_digits, beta, cost_network=(4, 3))
    loose = NeuralArchitectureTransformer(C=4, layers=3, max_cost_ratio=1.5).setup(small_digits, beta,
                                                                                  cost_network=(4, 3))
    red = [i for i, e in enumerate(beta.reduce.edges) if e.op == "none" and e.src == 0]
    # none -> skip out of a reduction cell's input is a factorized reduction: forbidden by default
    assert not strict.masks(beta)[1][red, 1].any() and loose.masks(beta)[1][red, 1].all()
    cost = cost_function(small_digits, 4, 3)
    skips = CellPair(beta.normal, beta.reduce.with_ops(["skip_connect" if i in red else op
                                                        for i, op in enumerate(beta.reduce.ops)]))
    c0, c1 = cost(beta), cost(skips)
    assert c1["params"] > c0["params"]
    from nascore_nat.costs import enforce_budget

    assert enforce_budget(beta, skips, cost) == beta
    kept = enforce_budget(beta, skips, cost, ratio=1.5)
    assert cost(kept)["params"] <= 1.5 * c0["params"] and cost(kept)["flops"] <= 1.5 * c0["flops"]
    assert kept != beta
