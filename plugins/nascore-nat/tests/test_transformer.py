"""Algorithm 1 end to end on a small digits task, and inference with the cost guarantee."""

import numpy as np
import pytest

from nascore_nat import genotypes
from nascore_nat.cell import category
from nascore_nat.transformer import NeuralArchitectureTransformer, cost_function

ALLOWED_NEXT = {"O": {"O", "S", "N"}, "S": {"S", "N"}, "N": {"N", "S"}}


@pytest.fixture(scope="module")
def fitted(small_digits):
    beta = genotypes.published("DARTS_V2")
    nat = NeuralArchitectureTransformer(epochs=2, C=4, layers=3, batch_size=64, inputs="neighbourhood", seed=0,
                                        warmup_epochs=1)
    return nat.fit(small_digits, beta, cost_network=(4, 3)), beta


def test_fit_records_both_phases(fitted):
    nat, _ = fitted
    assert [r["epoch"] for r in nat.history_] == [0, 1, 2] and nat.history_[0]["warmup"]
    for r in nat.history_[1:]:
        assert np.isfinite(r["w_loss"]) and 0 < r["entropy"] <= 16 * np.log(3) + 1e-6
        assert -1.0 <= r["mean_advantage"] <= 1.0


def test_space_inputs_cover_the_whole_cell_space(fitted):
    nat, beta = fitted
    nat_space = NeuralArchitectureTransformer(inputs="space")
    nat_space.template_, nat_space.ops_ = beta, nat.ops_
    rng = np.random.default_rng(0)
    samples = [nat_space.sample_input(rng) for _ in range(50)]
    srcs = {e.src for s in samples for e in s.normal.edges if e.dst == 5}
    assert srcs == {0, 1, 2, 3, 4}  # any earlier node, not only the input cell's topology
    assert all("none" not in s.normal.ops for s in samples)


def test_neighbourhood_inputs_keep_the_topology(fitted):
    nat, beta = fitted
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = nat.sample_input(rng)
        for x, y in zip(beta.cells, b.cells):
            assert [(e.src, e.dst) for e in x.edges] == [(e.src, e.dst) for e in y.edges]
            assert all(category(f.op) in ALLOWED_NEXT[category(e.op)] for e, f in zip(x.edges, y.edges))


@pytest.mark.parametrize("mode", ["sampling", "maximum"])
def test_inference_never_raises_params_or_madds(fitted, small_digits, mode):
    nat, beta = fitted
    cost = cost_function(small_digits, 4, 3)
    alpha, info = nat.transform(beta, small_digits, mode=mode, samples=4, seed=0, cost_fn=cost)
    assert cost(alpha)["params"] <= cost(beta)["params"] and cost(alpha)["flops"] <= cost(beta)["flops"]
    assert beta.apply(info["actions"]) == alpha
    if mode == "sampling":
        accs = [c["shared_valid_accuracy"] for c in info["candidates"]]
        assert 1 <= len(accs) <= 4 and all(0 <= a <= 100 for a in accs)
    else:
        probs = [np.array(p) for p in info["probabilities"]]
        assert [list(a) for a in info["actions"]] == [list(p.argmax(1)) for p in probs]


def test_distribution_respects_masks(fitted):
    nat, beta = fitted
    for cell, probs, mask in zip(beta.cells, nat.distribution(beta), nat.masks(beta)):
        assert np.all(probs[~mask] == 0) and np.allclose(probs.sum(1), 1, atol=1e-5)
