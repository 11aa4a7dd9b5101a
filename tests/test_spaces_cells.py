"""The built-in cell spaces: NAS-Bench-201 and DARTS (genomes, views, strings, networks)."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import attrs
import networkx as nx
import numpy as np
import pytest
import torch
from nascore.testing import require_data
from torch import nn

import nascore
from nascore.errors import ConfigError, InvalidGenomeError
from nascore.spaces import NB201_OPS, DartsSpace, NB201Space

torch.set_num_threads(1)

DIGITS = SimpleNamespace(name="digits", input_shape=(1, 8, 8), num_classes=10)
MNIST = SimpleNamespace(name="mnist", input_shape=(1, 28, 28), num_classes=10)
CIFAR = SimpleNamespace(name="cifar10", input_shape=(3, 32, 32), num_classes=10)
ODD = SimpleNamespace(name="odd", input_shape=(3, 15, 15), num_classes=4)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

SPACES = [
    NB201Space(),
    DartsSpace(),
    DartsSpace(nodes=2, include_none=True),
    DartsSpace(distinct_inputs=False, concat="loose", ops=("skip_connect", "conv_3x3", "none")),
]


def nb201_rows():
    with open(require_data("nb201/nb201.csv"), newline="") as f:
        return list(csv.DictReader(f))


def published():
    return json.loads(require_data("genotypes/published.json").read_text())["genotypes"]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def conv_linear_macs(model, shape):
    """Multiply-adds of conv and linear layers plus the classifier's bias additions,
    the convention of the NAS-Bench-201 table's ``flops`` columns."""
    total = 0

    def hook(m, _, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features + m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


# --------------------------------------------------------------------------- generic operators


@pytest.mark.parametrize("space", SPACES, ids=lambda s: repr(s)[:40])
def test_sample_mutate_crossover_stay_valid(space, rng):
    archs = [space.sample(rng) for _ in range(40)]
    for a, b in zip(archs, archs[1:]):
        assert space.make(a.genome) == a  # sampled genomes are canonical and valid
        m = space.mutate(a, rng)
        assert m != a and space.make(m.genome) == m
        c = space.crossover(a, b, rng)
        assert space.make(c.genome) == c
        if isinstance(space, NB201Space):  # every edge's op comes from one of the parents
            assert all(c[n] in (a[n], b[n]) for n in c.genome)


@pytest.mark.parametrize("space", SPACES, ids=lambda s: repr(s)[:40])
def test_vector_and_string_round_trips(space, rng):
    for _ in range(30):
        a = space.sample(rng)
        assert space.from_vector(space.to_vector(a)) == a
        assert space.from_string(space.to_string(a)) == a
        assert space.from_path(space.to_path(a)) == a
    u = rng.random((50, space.num_dimensions))
    for row in u:  # any point of the unit cube decodes to a valid architecture
        a = space.from_vector(row)
        assert space.make(a.genome) == a


@pytest.mark.parametrize("space", SPACES, ids=lambda s: repr(s)[:40])
@pytest.mark.parametrize("task", [DIGITS, MNIST, ODD], ids=lambda t: t.name)
def test_sampled_architectures_build_and_run(space, task, rng):
    small = attrs.evolve(space, C=4, N=1) if isinstance(space, NB201Space) else attrs.evolve(space, C=4, layers=3)
    net = small.build(small.sample(rng), task)
    assert net(torch.randn(2, *task.input_shape)).shape == (2, task.num_classes)


def test_cell_spaces_refuse_tabular_tasks():
    iris = SimpleNamespace(name="iris", input_shape=(4,), num_classes=3)
    for space in SPACES[:2]:
        with pytest.raises(ConfigError, match="image inputs"):
            space.build(space.sample(np.random.default_rng(0)), iris)


def test_registered_through_the_builtin_plugin():
    nb = nascore.create("search_space", "nb201", N=2)
    assert isinstance(nb, NB201Space) and nb.N == 2
    darts = nascore.create("search_space", "darts", nodes=2, ops=["skip_connect", "conv_3x3", "null"])
    assert darts.op_names == ("skip_connect", "conv_3x3", "none")
    with pytest.raises(ConfigError):
        nascore.create("search_space", "darts", ops=["sep_conv_3x33"])


# --------------------------------------------------------------------------- NAS-Bench-201


def test_nb201_dimensions_follow_the_benchmark_edge_order():
    space = NB201Space()
    assert [d.name for d in space.dimensions()] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert space.cardinality() == 5**6
    a = space.from_string(BEST)
    assert space.tokens(a) == ["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect",
                               "nor_conv_3x3", "nor_conv_3x3"]
    g = space.graph(a)
    assert isinstance(g, nx.DiGraph) and sorted(g.nodes) == [0, 1, 2, 3]
    assert g.edges[0, 3]["op"] == "skip_connect" and g.number_of_edges() == 6
    assert space.to_path(a) == [3, 3, 3, 1, 3, 3]


def test_nb201_every_benchmark_string_round_trips():
    rows = nb201_rows()
    space = NB201Space()
    archs = [space.from_string(r["arch_str"]) for r in rows]
    assert len(archs) == 15625 and len({a.key for a in archs}) == 15625
    assert all(space.to_string(a) == r["arch_str"] for a, r in zip(archs, rows))


def test_nb201_networks_match_the_benchmark_params_and_flops():
    rows = nb201_rows()
    space = NB201Space()
    for i in range(0, 15625, 1301):  # 13 architectures across the table
        r = rows[i]
        net = space.build(space.from_string(r["arch_str"]), CIFAR)
        # the table rounds to 1e-6 M params and 1e-5 M multiply-adds
        assert abs(n_params(net) - float(r["params_mb_cifar10"]) * 1e6) < 0.51, r["arch_str"]
        assert abs(conv_linear_macs(net, (3, 32, 32)) - float(r["flops_m_cifar10"]) * 1e6) < 5.1, r["arch_str"]
    # SearchSpace.cost (torch's flop counter) leaves out the classifier's 10 bias additions
    cost = space.cost(space.from_string(r["arch_str"]), CIFAR)
    assert cost["params"] == round(float(r["params_mb_cifar10"]) * 1e6)
    assert abs(cost["flops"] + 10 - float(r["flops_m_cifar10"]) * 1e6) < 5.1


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "3 nodes"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 .* needs 2 edges"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "enclosed in '|'"),
])
def test_nb201_malformed_strings_are_explained(text, message):
    with pytest.raises(InvalidGenomeError, match=message):
        NB201Space().from_string(text)


def test_nb201_sampling_is_uniform_per_edge(rng):
    space = NB201Space()
    ops = np.array([space.to_path(space.sample(rng)) for _ in range(4000)])
    freq = np.stack([(ops == k).mean(axis=0) for k in range(5)])
    # binomial sd sqrt(.2 * .8 / 4000) = 0.0063; 5 sd
    assert np.abs(freq - 0.2).max() < 0.032


def test_nb201_from_weights_takes_the_argmax_per_edge():
    space = NB201Space()
    w = torch.zeros(6, 5)
    w[torch.arange(6), torch.tensor([4, 0, 1, 2, 3, 4])] = 1.0
    assert space.tokens(space.from_weights(w)) == [NB201_OPS[i] for i in (4, 0, 1, 2, 3, 4)]
    with pytest.raises(InvalidGenomeError, match="6 x 5"):
        space.from_weights(torch.zeros(5, 5))


def test_nb201_supernet_runs_any_architecture(rng):
    space = NB201Space(C=4, N=1)
    net = space.supernet(DIGITS)
    for _ in range(3):
        assert net(torch.randn(2, 1, 8, 8), path=space.to_path(space.sample(rng))).shape == (2, 10)
    assert space.from_weights(net.alpha) == space.from_path(net.alpha.argmax(-1).tolist())


# --------------------------------------------------------------------------- DARTS


def test_darts_genome_layout_and_canonical_edge_order():
    space = DartsSpace()
    assert space.num_dimensions == 2 * 4 * 2 * 2
    assert space.dimension("normal_node4_in1").options == (0, 1, 2, 3)
    a = space.sample(np.random.default_rng(1))
    g = a.genome
    swapped = dict(g)
    for k in ("in", "op"):
        swapped[f"normal_node3_{k}0"], swapped[f"normal_node3_{k}1"] = g[f"normal_node3_{k}1"], g[f"normal_node3_{k}0"]
    assert space.make(swapped).key == a.key
    assert len(space.tokens(a)) == 16 and space.tokens(a)[:2] == [g["normal_node2_op0"], g["normal_node2_op1"]]


def test_darts_validation_names_the_edge():
    space = DartsSpace()
    g = space.sample(np.random.default_rng(0)).genome
    with pytest.raises(InvalidGenomeError, match="reduce cell, node 3, edge 1: input 3 is not an earlier node"):
        space.make({**g, "reduce_node3_in1": 3})
    with pytest.raises(InvalidGenomeError, match="normal cell, node 2, edge 0: op 'conv_3x3'"):
        space.make({**g, "normal_node2_op0": "conv_3x3"})
    with pytest.raises(InvalidGenomeError, match="normal cell, node 2 reads node 0 on both edges"):
        space.make({**g, "normal_node2_in0": 0, "normal_node2_in1": 0})
    assert DartsSpace(distinct_inputs=False).make({**g, "normal_node2_in0": 0, "normal_node2_in1": 0})


def test_darts_v2_genotype_in_every_form():
    g = published()["DARTS_V2"]
    space = DartsSpace()
    a = space.from_genotype(g)
    pairs = space.to_genotype(a)
    assert pairs["normal_concat"] == [2, 3, 4, 5] and all(len(e) == 2 for e in pairs["normal"])
    assert space.from_genotype(pairs) == a == space.from_string(space.to_string(a))
    text = ("Genotype(normal=" + repr([tuple(e) for e in pairs["normal"]]) + ", normal_concat=range(2, 6), "
            "reduce=" + repr([tuple(e) for e in pairs["reduce"]]) + ", reduce_concat=range(2, 6))")
    assert space.from_string(text) == a
    net = attrs.evolve(space, C=36, layers=20).build(a, CIFAR)
    assert n_params(net) == 3_349_342  # the DARTS code release's 3.35 M


def test_every_published_genotype_loads_round_trips_and_builds():
    x = torch.randn(2, 1, 8, 8)
    for name, g in published().items():
        space = DartsSpace.for_genotype(g, C=4, layers=3)
        a = space.from_genotype(g)
        edges = space.to_genotype(a, form="edges")
        for cell in ("normal", "reduce"):
            given = sorted((("none" if op in (None, "null") else op), s, t) for op, s, t in g[cell])
            assert sorted(map(tuple, edges[cell])) == given, name
            assert edges[f"{cell}_concat"] == g[f"{cell}_concat"], name
        assert space.from_string(space.to_string(a)) == a
        assert space.from_path(space.to_path(a)) == a
        assert space.build(a, DIGITS)(x).shape == (2, 10), name


def test_for_genotype_infers_nodes_ops_and_concat_rule():
    pub = published()
    enas = DartsSpace.for_genotype(pub["ENAS"])
    assert (enas.nodes, enas.concat, enas.distinct_inputs) == (5, "loose", False)
    vgg = DartsSpace.for_genotype(pub["VGG"])
    assert "conv_3x3" in vgg.op_names and "none" in vgg.op_names and vgg.concat == "loose"
    assert DartsSpace.for_genotype(pub["DARTS_V1"]) == DartsSpace()
    with pytest.raises(InvalidGenomeError, match="5 intermediate nodes, this space 4"):
        DartsSpace().from_genotype(pub["ENAS"])
    with pytest.raises(InvalidGenomeError, match="uses op 'none'"):
        DartsSpace(distinct_inputs=False, concat="loose").from_genotype(pub["VGG"])
    with pytest.raises(InvalidGenomeError, match="concat"):
        DartsSpace(ops=vgg.ops, include_none=True).from_genotype(pub["VGG"])


def test_darts_graph_views():
    pub = published()
    space = DartsSpace.for_genotype(pub["ENAS"])
    a = space.from_genotype(pub["ENAS"])
    cell = space.cell_graph(a, "reduce")
    assert nx.is_directed_acyclic_graph(cell) and isinstance(cell, nx.DiGraph)
    op_edges = [d["op"] for _, _, d in cell.edges(data=True) if d["op"] != "concat"]
    assert len(op_edges) == 10 and sorted(cell.predecessors(7)) == [2, 3, 6]
    normal = space.cell_graph(a, "normal")
    assert normal.number_of_edges(1, 2) == 2  # ENAS node 2 reads c_{k-1} twice
    whole = space.graph(a)
    assert whole.number_of_nodes() == 2 * 8 and whole.graph["cells"] == ("normal", "reduce")
    assert {d["cell"] for _, _, d in whole.edges(data=True)} == {"normal", "reduce"}


def test_darts_path_and_weights():
    space = DartsSpace(nodes=2, include_none=True)
    edges = space.supernet_edges()
    assert edges == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    # DARTS Section 2.4: per node the two edges whose best non-zero op is strongest
    w = torch.zeros(5, len(space.op_names))
    w[:, 0] = 10.0  # "none" is never chosen
    w[0, space.op_names.index("sep_conv_3x3")] = 0.9
    w[1, space.op_names.index("skip_connect")] = 0.5
    w[2, space.op_names.index("max_pool_3x3")] = 0.1
    w[3, space.op_names.index("dil_conv_5x5")] = 0.7
    w[4, space.op_names.index("avg_pool_3x3")] = 0.8
    a = space.from_weights({"normal": w, "reduce": w})
    assert space.to_genotype(a)["normal"] == [["sep_conv_3x3", 0], ["skip_connect", 1],
                                              ["dil_conv_5x5", 1], ["avg_pool_3x3", 2]]
    path = space.to_path(a)["normal"]
    assert [p is not None for p in path] == [True, True, False, True, True]
    with pytest.raises(InvalidGenomeError, match="node 3 has 3 active ops"):
        space.from_path({"normal": [1, 1, 1, 1, 1], "reduce": path})


def test_darts_supernet_runs_sampled_paths(rng):
    space = DartsSpace(nodes=3, C=4, layers=3, distinct_inputs=False)
    net = space.supernet(MNIST)
    x = torch.randn(2, 1, 28, 28)
    for _ in range(3):
        assert net(x, path=space.to_path(space.sample(rng))).shape == (2, 10)
    assert net(x).shape == (2, 10)
    assert space.make(space.from_weights({"normal": net.alpha_normal, "reduce": net.alpha_reduce}).genome)
