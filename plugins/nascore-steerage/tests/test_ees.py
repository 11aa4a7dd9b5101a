"""Efficient evolutionary search (section 4.5, Algorithm 2)."""

import numpy as np

import nascore
from nascore.testing import SyntheticEvaluator, check_component, synthetic_context
from nascore_steerage.ees import EfficientEvolutionarySearch


def test_conformance():
    check_component("optimizer", "ees", population=20, iterations=20)


def _space():
    return nascore.create("search_space", "ffnn", features=64, neurons_low=16, neurons_high=256, neurons_step=16,
                          max_layers=3)


def test_algorithm2_finds_the_optimum_of_a_known_reward():
    """With the exact reward as 'predictor', Algorithm 2 reaches the global optimum of
    a separable function (each dimension's best value is known)."""
    space = _space()
    ctx = synthetic_context(space, budget=1)
    target = space.to_vector(space.make({"layers": 2, "n1": 128, "n2": 64, "n3": 16, "dr_method": "pca",
                                         "dr_ratio": 4.0, "quant_bits": 8}))

    def reward(archs):
        V = np.stack([space.to_vector(a) for a in archs])
        return -np.abs(V - target).sum(axis=1)

    ees = EfficientEvolutionarySearch(population=30, iterations=150, mutation_prob=0.8)
    best, value, count = ees.evolve(ctx, reward)
    assert value > -1e-9 and best.genome["n1"] == 128 and best.genome["dr_method"] == "pca"
    assert count < 30 * 151  # cached: each architecture is predicted once


def test_rewards_never_decrease_and_population_is_kept():
    """Parents survive (Children U Parents), so with the same seed more iterations never
    end with a worse best reward."""
    space = _space()
    weights = np.random.default_rng(0).random(space.num_dimensions)

    def reward(archs):
        return np.stack([space.to_vector(a) for a in archs]) @ weights

    values = [EfficientEvolutionarySearch(population=10, iterations=n).evolve(synthetic_context(space, budget=1),
                                                                               reward)[1] for n in (0, 5, 40)]
    assert values[0] <= values[1] <= values[2]


def test_full_run_spends_the_budget_and_trains_the_predicted_best():
    space = _space()
    sampler = nascore.create("sampler", "iterative-selection", pool_size=256, per_iteration=10, iterations=2)
    ctx = synthetic_context(space, sampler=sampler, budget=31, evaluator=SyntheticEvaluator(target=0.3))
    result = EfficientEvolutionarySearch(population=30, iterations=60).run(ctx)
    assert ctx.used <= 31
    assert result.info["samples_asked"] == 30 and result.info["trained_for_predictor"] == 30
    assert result.metrics["valid_accuracy"] >= np.median([e.metric("valid_accuracy") for e in ctx.history[:10]])
    assert result.best.key in {e.key for e in ctx.history}  # trained on the real task


def test_top_k_check_and_base_architecture_spend_distinct_evaluations():
    """Budget 35 = base (1) + Algorithm 1's 3 rounds of 10 + the top-4 check: every
    evaluation is a distinct architecture, the base comes first, the checked four are
    new, and the answer is the best of all 35 evaluated on the feedback metric."""
    space = _space()
    base = {"layers": 2, "n1": 128, "n2": 64, "n3": 16, "dr_method": "pca", "dr_ratio": 1.0, "quant_bits": 32}
    sampler = nascore.create("sampler", "iterative-selection", pool_size=256, per_iteration=10, iterations=2)
    ctx = synthetic_context(space, sampler=sampler, budget=35, evaluator=SyntheticEvaluator(target=0.3))
    result = EfficientEvolutionarySearch(population=30, iterations=60, top_k=4, base=base).run(ctx)
    keys = [e.key for e in ctx.history]
    assert ctx.used == 35 and len(keys) == 35 and len(set(keys)) == 35
    assert keys[0] == space.make(base).key
    checked = result.info["top_k_checked"]
    assert len(checked) == 4 and set(checked) == set(keys[31:])
    best = max(ctx.history, key=lambda e: e.metric("valid_accuracy"))
    assert result.best.key == best.key and result.metrics["valid_accuracy"] == best.metric("valid_accuracy")
    assert result.info["chosen_from"] == ("predicted top-k" if best.key in checked else
                                          "base architecture" if best.key == keys[0] else "predictor samples")
