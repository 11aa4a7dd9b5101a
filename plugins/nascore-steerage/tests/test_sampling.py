"""Sobol pool and iterative sample selection (section 4.4.2, Algorithm 1)."""

import numpy as np
import pytest

import nascore
from nascore.testing import SyntheticEvaluator, check_component, synthetic_context
from nascore_steerage.sampling import default_predictor, sobol_points, sobol_pool


@pytest.mark.parametrize("name", ["sobol", "iterative-selection"])
def test_conformance(name):
    check_component("sampler", name, **({"pool_size": 256, "per_iteration": 8} if name != "sobol" else {}))


def _space():
    return nascore.create("search_space", "ffnn", features=64, neurons_low=16, neurons_high=256, neurons_step=16,
                          max_layers=3)


def test_sobol_pool_is_more_uniform_than_random():
    """Centered L2 discrepancy of 256 points: scrambled Sobol below uniform random, for
    the raw points and for the decoded architectures' unit-cube vectors (a space without
    conditional dimensions; its one constant column dropped), over 5 seeds."""
    from scipy.stats import qmc

    space = nascore.create("search_space", "ffnn", features=64, neurons_low=16, neurons_high=256,
                           neurons_step=16, max_layers=1)
    d = space.num_dimensions
    for seed in range(5):
        sobol = sobol_points(d, 256, seed)
        rand = np.random.default_rng(seed).random((256, d))
        assert qmc.discrepancy(sobol) < qmc.discrepancy(rand) / 3
        arch_sobol = np.stack([space.to_vector(a) for a in sobol_pool(space, 256, seed)])[:, 1:]
        arch_rand = np.stack([space.to_vector(space.from_vector(u)) for u in rand])[:, 1:]
        assert qmc.discrepancy(arch_sobol) < qmc.discrepancy(arch_rand)


def test_sobol_sampler_hands_out_the_pool_in_order_and_extends_it():
    space = _space()
    sampler = nascore.create("sampler", "sobol", pool_size=16)
    ctx = synthetic_context(space, sampler=sampler, budget=10)
    first = sampler.ask(10)
    assert first == sampler.pool()[:10]
    more = sampler.ask(20)  # beyond the pool: more Sobol points are drawn
    assert len(more) == 20 and not {a.key for a in first} & {a.key for a in more}
    assert ctx.used == 0


def test_algorithm1_selects_better_candidates_after_the_random_batch():
    """Synthetic objective with a known optimum: the predicted-top batches of rounds
    1..I_max score clearly higher than the random first batch."""
    space = _space()
    sampler = nascore.create("sampler", "iterative-selection", pool_size=512, per_iteration=20, iterations=3)
    ctx = synthetic_context(space, sampler=sampler, budget=200, evaluator=SyntheticEvaluator(target=0.8))
    means = []
    while not sampler.exhausted:
        evals = ctx.evaluate(sampler.ask(20))
        sampler.tell(evals)
        means.append(np.mean([e.metric("valid_accuracy") for e in evals]))
    assert len(means) == 4 and ctx.used == 80  # random batch + I_max = 3 rounds
    assert min(means[1:]) > means[0] + 5.0
    # Algorithm 1's output: the run configures no predictor, so the fitted boosted-trees
    # default lives in steerage's state area of the context
    assert ctx.predictor is None and hasattr(default_predictor(ctx), "packed_")
    assert default_predictor(ctx) is ctx.state("steerage")["predictor"]
    keys = [e.key for e in ctx.history]
    assert len(set(keys)) == len(keys)  # never re-selects a trained architecture


class RecordingSampler:
    """Random architectures; records what it was asked for and told."""

    def setup(self, ctx):
        self.space, self.rng = ctx.space, np.random.default_rng(7)
        self.asked, self.told = [], []

    def ask(self, n):
        out = [self.space.sample(self.rng) for _ in range(n)]
        self.asked.extend(out)
        return out

    def tell(self, evaluations):
        self.told.extend(e.key for e in evaluations)


class RecordingPlugin:
    @nascore.hookimpl
    def register_samplers(self, register):
        register("recording", RecordingSampler)


def test_the_pool_can_come_from_another_sampler_that_learns_from_every_result():
    from nascore.plugins import register_plugin, unregister_plugin

    register_plugin(RecordingPlugin(), name="recording-plugin")
    try:
        space = _space()
        sampler = nascore.create("sampler", "iterative-selection", pool_size=64, per_iteration=8, iterations=2,
                                 pool_sampler={"name": "recording"}, pool_refresh=16)
        ctx = synthetic_context(space, sampler=sampler, budget=40, evaluator=SyntheticEvaluator(target=0.8))
        source = sampler._source
        assert len(source.asked) == 64 and [a.key for a in sampler._pool] == list(dict.fromkeys(
            a.key for a in source.asked))
        handed = []
        while not sampler.exhausted:
            evals = ctx.evaluate(sampler.ask(8))
            sampler.tell(evals)
            handed += [e.key for e in evals]
        assert len(handed) == 24
        assert source.told == handed  # every result reached the pool sampler, in order
        assert len(source.asked) == 64 + 2 * 16  # refreshed before each selection round
        assert set(handed) <= {a.key for a in source.asked}
    finally:
        unregister_plugin("recording-plugin")
    with pytest.raises(nascore.errors.ConfigError, match="pool_refresh needs a pool_sampler"):
        synthetic_context(_space(), sampler=nascore.create("sampler", "iterative-selection", pool_refresh=4))
    with pytest.raises(nascore.errors.ConfigError, match="pool_sampler needs a name"):
        synthetic_context(_space(), sampler=nascore.create("sampler", "iterative-selection",
                                                          pool_sampler={"bits": 8}))
