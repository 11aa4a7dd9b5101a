"""Cells, transitions (Fig. 2c), published genotypes and bad input."""

import json
import os

import numpy as np
import pytest

from nascore.data import data_root
from nascore.errors import InvalidGenomeError
from nascore_nat import genotypes
from nascore_nat.cell import ALLOWED, Cell, CellPair, category, check_ops, transition_mask


def test_categories_and_allowed_transitions():
    assert [category(o) for o in ("sep_conv_3x3", "skip_connect", "none", "null", "conv_3x3")] == list("OSNNO")
    # O -> O/S/N, S -> S/N, N -> N/S; duplicates of the current op are masked
    assert ALLOWED == {"O": (True, True, True), "S": (True, False, True), "N": (True, True, False)}
    cell = Cell.from_entries([["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["none", 0, 3], ["max_pool_3x3", 2, 3]])
    np.testing.assert_array_equal(transition_mask(cell), [[1, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]])
    assert cell.apply([1, 2, 1, 0]).ops == ("skip_connect", "none", "skip_connect", "max_pool_3x3")
    with pytest.raises(InvalidGenomeError, match=r"edge 1 \(skip_connect 1->2\)"):
        cell.apply([0, 1, 0, 0])  # S -> "skip" is not a distinct transition


def test_default_concat_and_pairs_form():
    cell = Cell.from_entries([["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 2], ["none", 0]])
    assert cell.concat == (2, 3)
    assert [(e.src, e.dst) for e in cell.edges] == [(0, 2), (1, 2), (2, 3), (0, 3)]


@pytest.mark.parametrize("name", genotypes.names())
def test_published_genotypes_round_trip(name):
    pair = genotypes.published(name)
    again = CellPair.from_json(json.loads(json.dumps(pair.to_json())))
    assert again == pair
    # through the core darts space: same edges per node (the space sorts a node's two edges)
    from nascore_nat.genotype_io import pair_from_arch, space_for_pair

    space = space_for_pair(pair)
    back = pair_from_arch(space.from_genotype(pair.to_json()), space)
    for a, b in zip(pair.cells, back.cells):
        assert sorted(map(tuple, a.entries())) == sorted(map(tuple, b.entries()))
        assert a.concat == b.concat


def test_shipped_copy_matches_shared_data():
    path = os.path.join(data_root(), "genotypes", "published.json")
    if not os.path.exists(path):
        if os.environ.get("NASCORE_REQUIRE_DATA") == "1":
            pytest.fail(f"{path} is missing")
        pytest.skip("shared data not available")
    shared = json.load(open(path))["genotypes"]
    for name, g in shared.items():
        assert genotypes.published(name) == CellPair.from_json(g)


@pytest.mark.parametrize("orig,nat", [("DARTS_V2", "NAT_DARTS_V2"), ("ENAS", "NAT_ENAS"),
                                      ("VGG", "NAT_VGG"), ("ResBlock", "NAT_ResBlock")])
def test_papers_own_results_follow_fig_2c(orig, nat):
    actions = genotypes.published(orig).actions_to(genotypes.published(nat))
    assert genotypes.published(orig).apply(actions) == genotypes.published(nat)
    assert any(a != 0 for cell in actions for a in cell)


def test_naonet_and_mobilenetv2_shapes():
    nao = genotypes.published("NAONet")
    assert nao.normal.num_nodes == 5 and nao.normal.concat == (3, 5, 6) and nao.reduce.concat == (3, 4, 5, 6)
    mb = genotypes.published("MobileNetV2")
    assert mb.normal.ops.count("inverted_residual_3x3") == 3 and mb.normal.concat == (5,)
    assert genotypes.published("resnet") == genotypes.published("ResBlock")


def test_unknown_op_names_the_edge():
    cell = Cell.from_entries([["sep_conv_3x3", 0, 2], ["sep_cnov_5x5", 1, 2]])
    with pytest.raises(InvalidGenomeError, match=r"edge 1 \(sep_cnov_5x5 1->2\).*did you mean 'sep_conv_5x5'"):
        check_ops(cell, ["sep_conv_3x3", "sep_conv_5x5", "skip_connect"])


def test_node_with_one_input_names_the_edge():
    with pytest.raises(InvalidGenomeError, match=r"node 3 has one input \(edge 2: max_pool_3x3 2->3\)"):
        Cell.from_entries([["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 2, 3]])


def test_cycle_names_the_edge():
    with pytest.raises(InvalidGenomeError, match=r"edge 1 \(skip_connect 3->2\) closes a cycle"):
        Cell.from_entries([["sep_conv_3x3", 0, 2], ["skip_connect", 3, 2], ["sep_conv_3x3", 2, 3], ["none", 1, 3]])
    with pytest.raises(InvalidGenomeError, match=r"edge 1 \(none 2->2\) closes a cycle"):
        Cell.from_entries([["sep_conv_3x3", 0, 2], ["none", 2, 2]])


def test_concat_must_name_intermediate_nodes():
    with pytest.raises(InvalidGenomeError, match="concat node 7"):
        Cell.from_entries([["sep_conv_3x3", 0, 2], ["none", 1, 2]], concat=[7])
