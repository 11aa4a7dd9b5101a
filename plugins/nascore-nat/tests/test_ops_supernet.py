"""Extra ops, the single-path supernet with concat masks, and the cost guarantee."""

import numpy as np
import pytest
import torch

from nascore.nn.ops import make_op
from nascore.plugins import get_operations
from nascore_nat import genotypes
from nascore_nat.cell import CellPair, transition_mask
from nascore_nat.costs import EdgeCosts, enforce_budget, network_cost, op_cost
from nascore_nat.supernet import CellSupernet

EXTRA = ("inverted_residual_3x3", "conv_1x3_3x1", "conv_1x7_7x1", "max_pool_2x2", "avg_pool_2x2", "avg_pool_5x5")


def test_ops_are_registered_in_the_core_registry_by_the_plugin():
    ops = get_operations()
    assert tuple(ops.by_plugin("nat")) == EXTRA
    assert {n for n in EXTRA if ops.get(n).pooling} == {"max_pool_2x2", "avg_pool_2x2", "avg_pool_5x5"}


@pytest.mark.parametrize("name", EXTRA)
@pytest.mark.parametrize("size,stride", [(8, 1), (7, 2), (8, 2), (5, 1)])
def test_extra_ops_keep_the_core_shape_contract(name, size, stride):
    op = make_op(name, 6, 6, stride)
    out = op(torch.randn(2, 6, size, size))
    assert out.shape == (2, 6, -(-size // stride), -(-size // stride))


def test_inverted_residual_parameter_count():
    # 1x1 expand C->6C, depthwise 3x3 on 6C, 1x1 project 6C->C, three BNs (2 params per channel)
    C = 8
    expected = C * 6 * C + 6 * C * 9 + 6 * C * C + 2 * (6 * C + 6 * C + C)
    assert op_cost("inverted_residual_3x3", C, 1, 8, 8)[0] == expected
    # multiply-adds on 8x8 (stride 1): the three convolutions per output pixel
    assert op_cost("inverted_residual_3x3", C, 1, 8, 8)[1] == 64 * (C * 6 * C + 6 * C * 9 + 6 * C * C)


def _task_shape():
    return (1, 8, 8)


def test_supernet_path_maps_duplicates_and_none():
    pair = genotypes.published("ENAS")  # node 2 reads input 1 twice (sep_conv_3x3 and skip)
    net = CellSupernet(("none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3"), _task_shape(), 10,
                       nodes=5, concat={"normal": pair.normal.concat, "reduce": pair.reduce.concat}, C=4, layers=3)
    path = net.path(pair)
    e12 = net.net.edges.index((1, 2))
    assert path["normal"][e12] == (2, 1)
    alpha = CellPair(pair.normal.apply([2, 0] + [0] * 8), pair.reduce)  # sep_conv_3x3 1->2 becomes none
    assert net.path(alpha)["normal"][e12] == 1
    assert net.path(alpha)["normal"][net.net.edges.index((0, 2))] is None


def test_supernet_concat_mask_zeroes_unlisted_nodes():
    pair = genotypes.published("VGG")  # output = node 5 only
    net = CellSupernet(("none", "skip_connect", "conv_3x3", "max_pool_3x3"), _task_shape(), 10, nodes=4,
                       concat={"normal": (5,), "reduce": (5,)}, C=4, layers=3)
    outputs = []
    net.net.cells[0].register_forward_hook(lambda m, i, o: outputs.append(o))
    logits = net(torch.randn(3, 1, 8, 8), pair)
    assert logits.shape == (3, 10)
    out = outputs[0]
    assert out.shape[1] == 4 * 4  # nodes x C channels, as the core supernet lays them out
    assert torch.count_nonzero(out[:, :12]) == 0 and torch.count_nonzero(out[:, 12:]) > 0


def test_reduction_skip_is_forbidden_where_it_would_cost_more():
    pair = genotypes.published("DARTS_V2")
    costs = EdgeCosts((1, 8, 8), C=8, layers=5)
    mask = transition_mask(pair.reduce, costs.cost_ok(pair.reduce))
    # max_pool_3x3 0->2 (stride 2): a skip would be a factorized reduce with parameters
    assert not mask[0, 1] and mask[0, 2]
    # skip_connect 2->3 (stride 1) may become none
    assert mask[2, 2]
    normal = transition_mask(pair.normal, costs.cost_ok(pair.normal))
    np.testing.assert_array_equal(normal, transition_mask(pair.normal))  # normal cells: Fig. 2c unchanged


def test_enforce_budget_reverts_an_edge_that_raised_the_cost():
    beta = genotypes.published("DARTS_V2")
    nat = genotypes.published("NAT_DARTS_V2")  # the paper's result: max_pool 1->2 became a (strided) skip

    def cost(p):
        return network_cost(p, (1, 8, 8), 10, 4, 3)

    assert cost(nat)["params"] > cost(CellPair(nat.normal, beta.reduce))["params"]
    fixed = enforce_budget(beta, nat, cost)
    assert cost(fixed)["params"] <= cost(beta)["params"] and cost(fixed)["flops"] <= cost(beta)["flops"]
    assert fixed.normal == nat.normal  # the normal cell's changes are cheaper: kept
