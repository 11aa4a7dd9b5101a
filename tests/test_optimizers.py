"""Built-in optimizers on a synthetic objective whose optimum is known."""

import numpy as np
import pytest

import nascore
from nascore.testing import synthetic_context


def best_found(space, optimizer, seed, budget=40, sampler="random"):
    ctx = synthetic_context(space, budget=budget, seed=seed, sampler=nascore.create("sampler", sampler))
    result = optimizer.run(ctx)
    assert ctx.used == budget  # spends exactly its budget
    assert result.best.key == ctx.best().key
    return ctx.best().metric("valid_accuracy")


@pytest.mark.parametrize("name,params", [
    ("random-search", {}), ("regularized-evolution", {"population": 8, "sample_size": 3}), ("local-search", {"initial": 5}),
])
def test_optimizers_respect_budget_and_are_deterministic(toy_space, name, params):
    opt = nascore.create("optimizer", name, **params)
    a = best_found(toy_space, opt, seed=3)
    b = best_found(toy_space, nascore.create("optimizer", name, **params), seed=3)
    assert a == b


def test_evolution_and_local_search_beat_random_on_average(toy_space):
    seeds = range(8)
    rand = np.mean([best_found(toy_space, nascore.create("optimizer", "random-search"), s) for s in seeds])
    evo = np.mean([best_found(toy_space, nascore.create("optimizer", "regularized-evolution", population=8,
                                                        sample_size=4), s) for s in seeds])
    local = np.mean([best_found(toy_space, nascore.create("optimizer", "local-search", initial=5), s) for s in seeds])
    assert evo > rand and local > rand


def test_duplicates_are_served_from_cache_without_budget(toy_space):
    ctx = synthetic_context(toy_space, budget=5)
    a = toy_space.sample(ctx.rng)
    first = ctx.evaluate([a, a])
    assert first[0] is first[1] and ctx.used == 1
    more = ctx.evaluate([toy_space.sample(ctx.rng) for _ in range(10)])
    assert ctx.used == 5 and len(more) <= 10 and ctx.remaining == 0
    assert ctx.evaluate([a]) == [first[0]]  # known: still served at zero budget


def test_fitted_predictors_survive_pickling():
    """Predictors travel to worker processes; their fitted state must go with them."""
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.random(40)
    for name in ("random-forest", "gradient-boosting"):
        p = nascore.create("predictor", name).fit(X, y)
        q = pickle.loads(pickle.dumps(p))
        assert np.allclose(q.predict(X), p.predict(X))
