"""The ``metaqnn`` and ``resnet-chain`` spaces: validity rules, tokens, networks, cost."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import nascore
from nascore.errors import ConfigError, InvalidGenomeError
from nascore.metrics import count_flops, count_params
from nascore.testing import check_component

DIGITS = types.SimpleNamespace(name="digits", input_shape=(1, 8, 8), num_classes=10)
CIFAR = types.SimpleNamespace(name="cifar", input_shape=(3, 32, 32), num_classes=10)


@pytest.fixture(scope="module")
def metaqnn():
    return nascore.create("search_space", "metaqnn", width=0.0625)


@pytest.fixture(scope="module")
def resnet():
    return nascore.create("search_space", "resnet-chain", max_blocks=6)


@pytest.mark.parametrize("name", ["metaqnn", "resnet-chain"])
def test_conformance(name):
    check_component("search_space", name)


def test_metaqnn_samples_obey_metaqnn_rules(metaqnn):
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = metaqnn.sample(rng)
        types_ = metaqnn.layer_types(a.genome)
        assert types_.count("fc") <= 2
        if "fc" in types_:
            assert set(types_[types_.index("fc"):]) == {"fc"}
        assert "gap" not in types_[:-1]
        assert all(not (x == y == "pool") for x, y in zip(types_, types_[1:]))
        assert len(metaqnn.tokens(a)) == a.genome["depth"]


@pytest.mark.parametrize("text, rule", [
    ("C3-64 FC-128 C3-64", "fully connected layers must come last"),
    ("C3-64 FC-128 FC-128 FC-256", "at most 2"),
    ("C3-64 P2 P2", "pooling layer right after a pooling layer"),
    ("C3-64 GAP C3-64", "no layers after it"),
    ("C3-64 FC-128 GAP", "must come last"),
])
def test_metaqnn_rejects_invalid_chains(metaqnn, text, rule):
    with pytest.raises(InvalidGenomeError, match=rule):
        metaqnn.from_string(text)


def test_metaqnn_repair_turns_offending_layers_into_convolutions(metaqnn):
    g = metaqnn.from_string("C3-64 P2 C1-128").genome
    g.update({"depth": 6, "l3_type": "pool", "l4_type": "fc", "l5_type": "gap", "l6_type": "fc"})
    fixed = metaqnn.repair(g)
    assert metaqnn.check(fixed) is None
    assert metaqnn.layer_types(fixed) == ["conv", "pool", "conv", "conv", "conv", "fc"]


def test_metaqnn_tokens_round_trip(metaqnn):
    a = metaqnn.from_string("C3-64 P2 C5-128 P3s2 C1-256 P5s3 FC-256 FC-128")
    assert metaqnn.tokens(a) == ["C3-64", "P2", "C5-128", "P3s2", "C1-256", "P5s3", "FC-256", "FC-128"]
    assert metaqnn.from_string(metaqnn.to_string(a)) == a
    assert metaqnn.num_layers(a) == 9
    with pytest.raises(InvalidGenomeError, match="cannot parse"):
        metaqnn.from_string("C3-64 X9")


@pytest.mark.parametrize("text", ["C3-64 P2 C5-128 P3s2 FC-256 FC-128", "C1-512 P5s3 C3-64 P2 C5-64 GAP",
                                  "FC-512", "P3s2 C3-64 P2 C1-64 P2 C3-64 P2"])
def test_metaqnn_build_matches_analytic_cost(metaqnn, text):
    a = metaqnn.from_string(text)
    model = metaqnn.build(a, DIGITS)
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    cost = metaqnn.cost(a, DIGITS)
    assert cost["params"] == count_params(model)
    assert cost["flops"] == count_flops(model, DIGITS.input_shape)


def test_metaqnn_width_scales_filters_and_units():
    space = nascore.create("search_space", "metaqnn", width=0.25, batch_norm=False)
    a = space.from_string("C3-64 FC-128")
    # conv 1->16 (3x3, bias) on 8x8, FC 16*64 -> 32, classifier 32 -> 10
    params = (9 * 16 + 16) + (16 * 64 * 32 + 32) + (32 * 10 + 10)
    flops = 9 * 16 * 64 + 16 * 64 * 32 + 32 * 10
    assert space.cost(a, DIGITS) == {"params": params, "flops": flops}
    assert count_params(space.build(a, DIGITS)) == params


def test_metaqnn_refuses_tabular_tasks(metaqnn):
    tab = types.SimpleNamespace(name="iris", input_shape=(4,), num_classes=3)
    with pytest.raises(ConfigError, match="image networks"):
        metaqnn.build(metaqnn.from_string("FC-128"), tab)


def test_metaqnn_bad_parameters():
    with pytest.raises(ConfigError, match="max_layers"):
        nascore.create("search_space", "metaqnn", max_layers=0)
    with pytest.raises(ConfigError, match="size/stride"):
        nascore.create("search_space", "metaqnn", pools=["3x2"])


def test_resnet_chain_stages_tokens_and_graph(resnet):
    a = resnet.from_string("R3-8 R5-16 R7-16/2 R3-22/2")
    assert resnet.strides(4) == [1, 1, 2, 2] and resnet.strides(6) == [1, 1, 2, 1, 2, 1]
    assert resnet.tokens(a) == ["R3-8", "R5-16", "R7-16/2", "R3-22/2"]
    assert resnet.num_layers(a) == 3 * 4 + 2
    g = resnet.graph(a)
    ops = [d["op"] for *_, d in g.edges(data=True)]
    assert ops.count("skip") == 1 and ops.count("proj") == 3  # only R3-8 keeps the stem's width and resolution
    assert sum(op.startswith("conv") for op in ops) == 1 + 3 * 4  # stem + three per block
    with pytest.raises(InvalidGenomeError, match="must downsample"):
        resnet.from_string("R3-8 R5-16 R7-16 R3-22/2")
    with pytest.raises(InvalidGenomeError, match="cannot downsample"):
        resnet.from_string("R3-8 R5-16/2 R7-16/2 R3-22/2")


@pytest.mark.parametrize("text", ["R3-8 R5-16 R7-16/2 R3-22/2", "R7-2 R3-2/2", "R5-4 R5-4/2 R5-4/2"])
def test_resnet_chain_build_matches_analytic_cost(resnet, text):
    a = resnet.from_string(text)
    model = resnet.build(a, CIFAR)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    cost = resnet.cost(a, CIFAR)
    assert cost["params"] == count_params(model)
    assert cost["flops"] == count_flops(model, CIFAR.input_shape)


def test_resnet_chain_bad_ranges():
    with pytest.raises(ConfigError, match="min_blocks"):
        nascore.create("search_space", "resnet-chain", min_blocks=5, max_blocks=3)
    with pytest.raises(ConfigError, match="odd"):
        nascore.create("search_space", "resnet-chain", kernels=[2, 3])


def test_token_cache_is_not_pickled(metaqnn):
    import pickle

    a = metaqnn.from_string("C3-64 P2 FC-128")
    assert metaqnn.tokens(a) == ["C3-64", "P2", "FC-128"]
    assert "_tokens_cache" in metaqnn.__dict__
    again = pickle.loads(pickle.dumps(metaqnn))
    assert "_tokens_cache" not in again.__dict__ and again.tokens(a) == ["C3-64", "P2", "FC-128"]
    assert again.max_layers == metaqnn.max_layers and again.width == metaqnn.width
