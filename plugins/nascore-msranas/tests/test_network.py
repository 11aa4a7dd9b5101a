"""Geometry, shapes and gradients of the multi-scale network (Section 3.2)."""

import pytest
import torch

from nascore.errors import ConfigError
from nascore.nn.ops import DARTS_OPS
from nascore_msranas.layout import MultiScaleLayout, halve, max_halvings, reduction_positions
from nascore_msranas.network import MultiScaleNetwork, MultiScaleSupernet, make_layout, node_name

torch.set_num_threads(1)

GENOTYPE = {
    "normal": [("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 1, 3), ("max_pool_3x3", 2, 3)],
    "normal_concat": [2, 3],
    "reduce": [("avg_pool_3x3", 0, 2), ("sep_conv_5x5", 1, 2), ("skip_connect", 0, 3), ("dil_conv_5x5", 2, 3)],
    "reduce_concat": [2, 3],
}


def test_halving_rounds_up_and_counts_distinct_sizes():
    assert [halve(n) for n in (8, 7, 2, 1)] == [4, 4, 1, 1]
    assert max_halvings(8) == 3       # 8 -> 4 -> 2 -> 1
    assert max_halvings(28) == 5      # 28 -> 14 -> 7 -> 4 -> 2 -> 1
    assert reduction_positions(6, 2) == (2, 4)  # DARTS: 1/3 and 2/3 of the depth
    assert reduction_positions(4, 1) == (2,)


def test_digits_three_scales_are_8_4_2():
    lay = make_layout((1, 8, 8), scales=3, layers=7, C=4)
    assert [lay.spatial(0, s) for s in range(3)] == [8, 4, 2]
    assert lay.num_reductions == 1          # 2 -> 1 is the only halving left
    assert lay.exit_layers == (1, 2, 3, 4, 5, 6)
    # classifiers read the coarsest scale: the finest scales vanish from the last layers
    assert lay.active_scales(6) == [2] and lay.active_scales(5) == [1, 2] and lay.active_scales(4) == [0, 1, 2]


def test_channels_grow_per_scale_and_double_per_reduction():
    lay = MultiScaleLayout(size=32, scales=3, layers=7, C=4, growth=2)
    assert lay.reduction_layers == (3, 5)
    assert [lay.cell_channels(1, s) for s in range(3)] == [4, 8, 16]
    assert lay.cell_channels(5, 2) == 4 * 4 * 4
    assert lay.out_channels(0, 1, 0) == 4 * 2  # MSDNet-like first layer: stem_multiplier 1
    assert MultiScaleLayout(size=32, C=4, stem_multiplier=3).out_channels(0, 1, 0) == 3 * 4 * 2


def _node_shapes(net, x):
    shapes = {}
    hooks = [cell.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape[1:])))
             for name, cell in net.cells.items()]
    out = net(x)
    for h in hooks:
        h.remove()
    return out, shapes


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 7, 9), (1, 28, 28), (3, 32, 32), (1, 13, 13)])
def test_shapes_through_all_scales(shape):
    lay = make_layout(shape, scales=3, layers=5, C=4)
    net = MultiScaleNetwork(GENOTYPE, shape, 10, lay)
    out, shapes = _node_shapes(net, torch.randn(2, *shape))
    assert isinstance(out, list) and len(out) == lay.num_exits == 4
    assert all(o.shape == (2, 10) for o in out)
    for layer in range(1, lay.layers):
        for scale in lay.active_scales(layer):
            h, w = shape[1:]
            for _ in range(scale + lay.reductions_upto(layer)):
                h, w = halve(h), halve(w)
            C = 2 * lay.cell_channels(layer, scale)  # two concatenated nodes
            assert shapes[node_name(layer, scale)] == (C, h, w), (layer, scale)


def test_single_exit_network_returns_a_tensor():
    lay = make_layout((1, 8, 8), scales=1, layers=4, C=4, exits=False)
    net = MultiScaleNetwork(GENOTYPE, (1, 8, 8), 10, lay)
    out = net(torch.randn(3, 1, 8, 8))
    assert torch.is_tensor(out) and out.shape == (3, 10)


def test_every_exit_loss_reaches_its_head_and_the_stem():
    lay = make_layout((1, 8, 8), scales=3, layers=5, C=4)
    net = MultiScaleNetwork(GENOTYPE, (1, 8, 8), 10, lay)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    for k in range(lay.num_exits):
        net.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x)[k], y).backward()
        for j, head in enumerate(net.heads):
            got = head.linear.weight.grad
            assert (got is not None and got.abs().sum() > 0) == (j == k)
        assert net.stem[0].weight.grad.abs().sum() > 0


def test_forward_until_matches_the_full_forward_and_computes_less():
    lay = make_layout((1, 8, 8), scales=3, layers=5, C=4)
    net = MultiScaleNetwork(GENOTYPE, (1, 8, 8), 10, lay).eval()
    x = torch.randn(2, 1, 8, 8)
    full = net(x)
    for k in range(lay.num_exits):
        part = net.forward_until(x, k)
        assert len(part) == k + 1
        for a, b in zip(part, full):
            torch.testing.assert_close(a, b)
    first = lay.needed([0])
    assert first == {(0, 0), (0, 1), (0, 2), (1, 2)}  # vertical layer + the coarsest first cell
    with pytest.raises(ConfigError, match="out of range"):
        net.forward_until(x, lay.num_exits)


def test_supernet_alphas_are_separate_for_normal_and_reduction_cells():
    lay = make_layout((1, 8, 8), scales=2, layers=4, C=2)
    net = MultiScaleSupernet(DARTS_OPS, (1, 8, 8), 10, lay, nodes=2)
    assert net.alpha_normal.shape == net.alpha_reduce.shape == (5, 8)  # 2 + 3 edges, 8 ops
    arch = {id(p) for p in net.arch_parameters()}
    assert not arch & {id(p) for p in net.weight_parameters()}
    assert len(arch) == 2


@pytest.mark.parametrize("kwargs,message", [
    ({"scales": 5}, "5 scales need inputs of at least 16 pixels"),
    ({"layers": 0}, "layers must be >= 2"),
    ({"layers": 1}, "layers must be >= 2"),
    ({"reductions": 3}, "3 reductions with 3 scales"),
    ({"C": 0}, "C must be >= 1"),
])
def test_bad_geometry_is_a_clear_error(kwargs, message):
    params = {"scales": 3, "layers": 5, "C": 4, **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_layout((1, 8, 8), **params)
