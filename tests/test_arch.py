import json

import numpy as np
import pytest

from nascore.arch import Architecture, Choice, Float, Int
from nascore.errors import InvalidGenomeError


def test_int_dimension_grid_and_unit_cube():
    d = Int("n", 50, 600, 25)
    assert d.size == 23
    assert [d.from_unit((i + 0.5) / d.size) for i in range(d.size)] == d.values()
    assert all(d.from_unit(d.to_unit(v)) == v for v in d.values())
    assert d.from_unit(1.0) == 600 and d.from_unit(0.0) == 50


def test_bad_dimensions_are_refused():
    with pytest.raises(ValueError, match="low 5 > high 1"):
        Int("x", 5, 1)
    with pytest.raises(ValueError, match="does not divide"):
        Int("x", 0, 10, 3)
    with pytest.raises(ValueError, match="does not divide"):
        Float("r", 1.0, 20.0, 0.3)
    with pytest.raises(ValueError, match="duplicate"):
        Choice("c", ["a", "a"])


def test_float_steps_snap():
    d = Float("ratio", 1.0, 20.0, 0.1)
    assert d.size == 191
    assert d.contains(3.7) and not d.contains(3.75)
    assert abs(d.from_unit(d.to_unit(3.7)) - 3.7) < 1e-9


def test_architecture_is_an_immutable_value():
    a = Architecture("s", {"b": 2, "a": [1, 2]})
    b = Architecture("s", {"a": [1, 2], "b": 2})
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert len(a.key) == 16
    assert Architecture.from_json(json.dumps(a.to_json())) == a
    g = a.genome
    g["b"] = 3
    assert a["b"] == 2
    assert Architecture("t", {"b": 2, "a": [1, 2]}).key != a.key


def test_inactive_dimensions_are_canonical(toy_space):
    g = {"depth": 1, "act": "relu", "lr": 0.5, "width_0": 16, "width_1": 32, "width_2": 64, "width_3": 8}
    a = toy_space.make(g)
    assert a.genome["width_1"] == 8 and a.genome["width_2"] == 8
    g2 = dict(g, width_1=56)
    assert toy_space.make(g2).key == a.key


def test_validate_names_the_problem(toy_space):
    g = toy_space.sample(np.random.default_rng(0)).genome
    with pytest.raises(InvalidGenomeError, match="unknown dimension 'colour'"):
        toy_space.validate({**g, "colour": 1})
    with pytest.raises(InvalidGenomeError, match="'depth' = 9 is not allowed"):
        toy_space.validate({**g, "depth": 9})
    g.pop("act")
    with pytest.raises(InvalidGenomeError, match="lacks dimension 'act'"):
        toy_space.validate(g)


def test_operators_stay_valid(toy_space, rng):
    archs = [toy_space.sample(rng) for _ in range(200)]
    depths = [a["depth"] for a in archs]
    assert set(depths) == {1, 2, 3, 4}  # uniform over 4 values: all appear in 200 draws
    for a, b in zip(archs, archs[1:]):
        m = toy_space.mutate(a, rng)
        assert m != a
        toy_space.validate(m.genome)
        toy_space.validate(toy_space.crossover(a, b, rng).genome)
        assert toy_space.from_vector(toy_space.to_vector(a)) == a


def test_neighbors_differ_in_one_active_dimension(toy_space, rng):
    a = toy_space.sample(rng)
    nbrs = toy_space.neighbors(a)
    assert nbrs and len({n.key for n in nbrs}) == len(nbrs)
    for n in nbrs:
        diff = [k for k in a.genome if a.genome[k] != n.genome[k] and toy_space.is_active(n.genome, k)]
        assert len(diff) == 1 or "depth" in diff


def test_mutation_rate_one_changes_everything_active(toy_space, rng):
    a = toy_space.make({"depth": 4, "act": "relu", "lr": 0.5, "width_0": 32, "width_1": 32, "width_2": 32, "width_3": 32})
    m = toy_space.mutate(a, rng, rate=1.0)
    assert sum(a.genome[k] != m.genome[k] for k in a.genome) >= 5
