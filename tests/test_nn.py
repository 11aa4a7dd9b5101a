"""Shared torch blocks: operations, cells, networks and weight-sharing supernets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nascore.errors import ConfigError
from nascore.nn import (
    DARTS_OPS, NB201_OPS, DartsNetwork, DartsSupernet, MixedOp, NB201Network, NB201Supernet,
    drop_path, make_op, op_names,
)
from nascore.nn.ops import FactorizedReduce

torch.set_num_threads(1)

#: DARTS_V2 (Liu et al., 2019), the "second order" cell of the DARTS code release
DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0, 2], ["sep_conv_3x3", 1, 2], ["sep_conv_3x3", 0, 3], ["sep_conv_3x3", 1, 3],
               ["sep_conv_3x3", 1, 4], ["skip_connect", 0, 4], ["skip_connect", 0, 5], ["dil_conv_3x3", 2, 5]],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [["max_pool_3x3", 0, 2], ["max_pool_3x3", 1, 2], ["skip_connect", 2, 3], ["max_pool_3x3", 1, 3],
               ["max_pool_3x3", 0, 4], ["skip_connect", 2, 4], ["skip_connect", 2, 5], ["max_pool_3x3", 1, 5]],
    "reduce_concat": [2, 3, 4, 5],
}
NB201_BEST = [("nor_conv_3x3", 0, 1), ("nor_conv_3x3", 0, 2), ("nor_conv_3x3", 1, 2),
              ("skip_connect", 0, 3), ("nor_conv_3x3", 1, 3), ("nor_conv_3x3", 2, 3)]
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 9, 9), (3, 15, 15)]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- ops


@pytest.mark.parametrize("name", sorted(op_names()))  # every registered op, plugins' too
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_every_op_gives_ceil_size_and_requested_channels(name, stride, size):
    op = make_op(name, 4, 6, stride)
    y = op(torch.randn(2, 4, size, size))
    assert y.shape == (2, 6, math.ceil(size / stride), math.ceil(size / stride))


def test_zero_op_is_zero_and_parameter_free():
    op = make_op("none", 4, 4, 2)
    y = op(torch.randn(3, 4, 9, 9))
    assert y.shape == (3, 4, 5, 5) and torch.count_nonzero(y) == 0 and n_params(op) == 0


def test_skip_is_identity_at_equal_shape():
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(make_op("skip_connect", 4, 4, 1)(x), x)


def test_factorized_reduce_matches_unpadded_form_on_even_sizes():
    # even sizes: the padded shifted path must equal the original x[:, :, 1:, 1:] path
    fr = FactorizedReduce(4, 6).eval()
    x = torch.randn(2, 4, 8, 8)
    r = torch.relu(x)
    expected = fr.bn(torch.cat([fr.conv_1(r), fr.conv_2(r[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(fr(x), expected)


def test_op_parameter_counts():
    # sep conv 3x3, C=4: two (depthwise 9C + pointwise C^2 + BN 2C) = 2 * (36 + 16 + 8)
    assert n_params(make_op("sep_conv_3x3", 4, 4, 1)) == 2 * (36 + 16 + 8)
    # dil conv 5x5: depthwise 25C + pointwise C^2 + BN 2C
    assert n_params(make_op("dil_conv_5x5", 4, 4, 1)) == 100 + 16 + 8
    assert n_params(make_op("conv_3x3", 4, 4, 1)) == 144 + 8
    assert n_params(make_op("max_pool_3x3", 4, 4, 2)) == 0


def test_unknown_op_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'sep_conv_3x3'"):
        make_op("sep_conv3x3", 4, 4, 1)


def test_drop_path_keeps_the_mean_and_drops_a_fraction():
    torch.manual_seed(0)
    x = torch.ones(20000, 1, 1, 1)
    y = drop_path(x, 0.3)
    dropped = (y == 0).float().mean().item()
    # binomial: sd sqrt(.3 * .7 / 20000) = 0.0032; 5 sd
    assert abs(dropped - 0.3) < 0.017
    assert abs(y.mean().item() - 1.0) < 0.017 / 0.7


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("shape", SHAPES)
def test_darts_network_forward_shapes(shape):
    net = DartsNetwork(DARTS_V2, shape, 10, C=4, layers=5)
    assert net(torch.randn(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("shape", SHAPES)
def test_nb201_network_forward_shapes(shape):
    net = NB201Network(NB201_BEST, shape, 7, C=4, N=1)
    assert net(torch.randn(2, *shape)).shape == (2, 7)


def test_darts_v2_has_the_published_parameter_count():
    # DARTS code release, CIFAR-10 evaluation network (C=36, 20 cells, no auxiliary head)
    assert n_params(DartsNetwork(DARTS_V2, (3, 32, 32), 10, C=36, layers=20)) == 3_349_342


def test_large_inputs_get_a_strided_stem():
    net = DartsNetwork(DARTS_V2, (3, 128, 128), 5, C=4, layers=3)
    strides = [m.stride[0] for m in net.stem if isinstance(m, nn.Conv2d)]
    assert strides == [2, 2]  # 128 -> 64 -> 32
    assert net(torch.randn(1, 3, 128, 128)).shape == (1, 5)


def test_drop_path_only_in_training():
    torch.manual_seed(0)
    net = DartsNetwork(DARTS_V2, (1, 8, 8), 3, C=4, layers=3, drop_path_prob=0.5).eval()
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(net(x), net(x))
    assert all(c.drop_path_prob == 0.5 for c in net.cells)


def test_tabular_shapes_are_refused():
    with pytest.raises(ConfigError, match="image inputs"):
        NB201Network(NB201_BEST, (64,), 10)


# --------------------------------------------------------------------------- mixed op


def test_mixed_op_is_the_weighted_sum_of_its_ops():
    torch.manual_seed(0)
    mixed = MixedOp(DARTS_OPS, 4, 4, 2).eval()
    x = torch.randn(2, 4, 9, 9)
    w = torch.softmax(torch.randn(len(DARTS_OPS)), 0)
    expected = sum(w[i] * op(x) for i, op in enumerate(mixed.ops))
    torch.testing.assert_close(mixed(x, weights=w), expected)
    # a one-hot weight vector is the single path of that op
    for i in range(len(DARTS_OPS)):
        torch.testing.assert_close(mixed(x, weights=torch.eye(len(DARTS_OPS))[i]), mixed(x, index=i))


def test_mixed_op_weight_gradient_is_each_ops_output():
    # d(sum_o w_o o(x)) / d w_o = o(x): the gradient of <y, 1> w.r.t. w_o is sum o(x)
    torch.manual_seed(0)
    mixed = MixedOp(NB201_OPS, 3, 3, 1).eval()
    x = torch.randn(2, 3, 5, 5)
    w = torch.full((5,), 0.2, requires_grad=True)
    mixed(x, weights=w).sum().backward()
    expected = torch.stack([op(x).sum() for op in mixed.ops]).detach()
    torch.testing.assert_close(w.grad, expected)
    assert w.grad[0] == 0  # the zero op


def test_single_path_runs_and_trains_only_the_chosen_op():
    mixed = MixedOp(DARTS_OPS, 4, 4, 1)
    chosen = DARTS_OPS.index("sep_conv_3x3")
    mixed(torch.randn(2, 4, 6, 6), index=chosen).pow(2).sum().backward()
    for i, op in enumerate(mixed.ops):
        grads = [p.grad for p in op.parameters() if p.requires_grad]
        if i == chosen:
            assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)


# --------------------------------------------------------------------------- supernets


def _nb201_supernet(shape=(1, 8, 8)):
    torch.manual_seed(0)
    return NB201Supernet(NB201_OPS, shape, 10, C=4, N=1)


def _darts_supernet(shape=(1, 8, 8)):
    torch.manual_seed(0)
    return DartsSupernet(DARTS_OPS, shape, 10, C=4, layers=3, nodes=3)


@pytest.mark.parametrize("shape", SHAPES)
def test_supernet_forward_shapes(shape):
    x = torch.randn(2, *shape)
    nb = _nb201_supernet(shape)
    assert nb(x).shape == (2, 10) and nb(x, path=[3, 1, 2, 0, 4, 3]).shape == (2, 10)
    darts = _darts_supernet(shape)
    path = {"normal": [4, 1, None, 2, (5, 6), None, 7, None, 3], "reduce": [1, 2, None, None, 3, 5, None, 4, None]}
    assert darts(x).shape == (2, 10) and darts(x, path=path).shape == (2, 10)


def test_one_hot_weights_equal_the_single_path():
    x = torch.randn(2, 1, 8, 8)
    nb = _nb201_supernet().eval()
    path = [3, 1, 2, 0, 4, 3]
    torch.testing.assert_close(nb(x, weights=torch.eye(5)[path]), nb(x, path=path))
    darts = _darts_supernet().eval()
    full = {"normal": [4, 1, 3, 2, 5, 6, 7, 1, 3], "reduce": [1, 2, 6, 3, 3, 5, 7, 4, 2]}
    onehot = {k: torch.eye(len(DARTS_OPS))[v] for k, v in full.items()}
    torch.testing.assert_close(darts(x, weights=onehot), darts(x, path=full))


def test_default_mixture_is_softmax_of_alpha():
    x = torch.randn(2, 1, 8, 8)
    darts = _darts_supernet().eval()
    soft = {"normal": darts.alpha_normal.softmax(-1), "reduce": darts.alpha_reduce.softmax(-1)}
    torch.testing.assert_close(darts(x), darts(x, weights=soft))
    darts(x).sum().backward()
    assert darts.alpha_normal.grad.abs().sum() > 0 and darts.alpha_reduce.grad.abs().sum() > 0
    arch = {id(p) for p in darts.arch_parameters()}
    assert len(arch) == 2 and not arch & {id(p) for p in darts.weight_parameters()}
    assert len(darts.weight_parameters()) + 2 == len(list(darts.parameters()))


def test_single_path_gradients_only_reach_the_path():
    darts = _darts_supernet()
    path = {"normal": [4, 1, None, 2, 5, None, 7, None, 3], "reduce": [1, 2, None, None, 3, 5, None, 4, None]}
    darts(torch.randn(2, 1, 8, 8), path=path).sum().backward()
    for cell in darts.cells:
        entries = path["reduce" if cell.reduction else "normal"]
        for e, mixed in enumerate(cell.mixed):
            for i, op in enumerate(mixed.ops):
                touched = any(p.grad is not None for p in op.parameters())
                has_params = any(True for _ in op.parameters()) and DARTS_OPS[i] not in ("max_pool_3x3", "avg_pool_3x3")
                if has_params:
                    assert touched == (entries[e] == i), (e, DARTS_OPS[i])
    assert darts.alpha_normal.grad is None


def test_weights_are_shared_between_paths():
    nb = _nb201_supernet().eval()
    x = torch.randn(2, 1, 8, 8)
    a, b = [3, 1, 2, 0, 4, 3], [3, 3, 3, 3, 3, 3]  # both use nor_conv_3x3 on edge 0
    ya, yb = nb(x, path=a), nb(x, path=b)
    shared = nb.cells[0].mixed[0].ops[3]
    only_a = nb.cells[0].mixed[2].ops[2]  # nor_conv_1x1 on edge 2 is on path a only
    with torch.no_grad():
        only_a[1].weight.mul_(3.0)
    assert not torch.allclose(nb(x, path=a), ya) and torch.equal(nb(x, path=b), yb)
    with torch.no_grad():
        shared[1].weight.mul_(3.0)
    assert not torch.allclose(nb(x, path=b), yb)
    # gradients of both paths accumulate in the same tensor
    nb.zero_grad()
    nb(x, path=a).sum().backward()
    ga = shared[1].weight.grad.clone()
    nb.zero_grad()
    nb(x, path=b).sum().backward()
    gb = shared[1].weight.grad.clone()
    nb.zero_grad()
    (nb(x, path=a).sum() + nb(x, path=b).sum()).backward()
    torch.testing.assert_close(shared[1].weight.grad, ga + gb)


def test_supernet_rejects_bad_paths():
    nb = _nb201_supernet()
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="one entry per edge"):
        nb(x, path=[0, 1])
    with pytest.raises(ConfigError, match="edge 1 has op index 9"):
        nb(x, path=[0, 9, 0, 0, 0, 0])
    with pytest.raises(ConfigError, match="not both"):
        nb(x, path=[0] * 6, weights=torch.ones(6, 5))
