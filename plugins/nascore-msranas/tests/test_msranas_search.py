"""The continuous relaxation (Eq. 1-2), genotype derivation and the bilevel steps."""

import numpy as np
import pytest
import torch

import nascore
from nascore.nn.ops import DARTS_OPS
from nascore.spaces.darts import DartsSpace
from nascore_msranas.bilevel import first_order_grads, second_order_grads, virtual_step
from nascore_msranas.network import MultiScaleSupernet, make_layout
from nascore_msranas.search import Searcher, SearchSettings, derive, split_halves

torch.set_num_threads(1)


def _supernet(nodes=2, scales=2, layers=4):
    torch.manual_seed(0)
    lay = make_layout((1, 8, 8), scales=scales, layers=layers, C=2)
    return MultiScaleSupernet(DARTS_OPS, (1, 8, 8), 10, lay, nodes=nodes)


def test_relaxation_weights_sum_to_one_per_edge():
    net = _supernet()
    with torch.no_grad():
        net.alpha_normal.normal_(0, 3)
        net.alpha_reduce.normal_(0, 3)
    for w in net.softmax_weights().values():
        torch.testing.assert_close(w.sum(dim=1), torch.ones(w.shape[0]))
        assert (w > 0).all()


def test_one_hot_mixture_equals_the_discrete_op():
    """Eq. 1 with all the weight on op k is op k itself."""
    net = _supernet().eval()
    cell = next(iter(net.cells.values()))
    mixed = cell.mixed[0]
    assert not cell.reduction
    x = torch.randn(2, cell.preprocess1[1].out_channels, 8, 8)
    for k in range(len(DARTS_OPS)):
        w = torch.zeros(len(DARTS_OPS))
        w[k] = 1.0
        torch.testing.assert_close(mixed(x, weights=w), mixed.ops[k](x))


def _set_alpha(net, cell, winners):
    """Alphas where, per edge index, ``winners[e] = (op, strength)`` and the rest is 0."""
    alpha = getattr(net, f"alpha_{cell}")
    with torch.no_grad():
        alpha.zero_()
        for e, (op, value) in winners.items():
            alpha[e, DARTS_OPS.index(op)] = value


def test_derived_genotype_keeps_two_strongest_non_none_edges_per_node():
    net = _supernet(nodes=2)
    # edges: 0:(0,2) 1:(1,2) 2:(0,3) 3:(1,3) 4:(2,3); 'none' is strongest on edge 2 and must be ignored
    _set_alpha(net, "normal", {0: ("sep_conv_3x3", 3.0), 1: ("skip_connect", 2.0), 2: ("none", 9.0),
                               3: ("dil_conv_5x5", 1.0), 4: ("max_pool_3x3", 2.0)})
    _set_alpha(net, "reduce", {0: ("avg_pool_3x3", 1.0), 1: ("sep_conv_5x5", 2.0), 2: ("dil_conv_3x3", 3.0),
                               3: ("none", 5.0), 4: ("skip_connect", 0.5)})
    space = DartsSpace(nodes=2)
    arch = derive(space, net)
    geno = space.to_genotype(arch)
    assert geno["normal"] == [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_5x5", 1], ["max_pool_3x3", 2]]
    assert geno["reduce"] == [["avg_pool_3x3", 0], ["sep_conv_5x5", 1], ["dil_conv_3x3", 0], ["skip_connect", 2]]
    # valid for the core's registered darts space, so other plugins (NAT) can take it
    core = nascore.create("search_space", "darts", nodes=2)
    assert core.make(arch.genome) == arch and arch.space == "darts"


def test_split_halves_partition_the_train_split():
    a, b = split_halves(11, torch.Generator().manual_seed(0))
    assert len(a) == 5 and len(b) == 6
    assert sorted(torch.cat([a, b]).tolist()) == list(range(11))


# --------------------------------------------------------------------------- bilevel


def _toy(seed=0):
    """A two-op mixed model in float64: logits = sum_k softmax(alpha)_k op_k(x)."""
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    W2 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)

    def loss_fn(batch, w=None):
        x, y = batch
        a, b = w if w is not None else (W1, W2)
        p = alpha.softmax(0)
        logits = p[0] * torch.tanh(x @ a) + p[1] * (x @ b) ** 2 / 4
        return torch.nn.functional.cross_entropy(logits, y)

    train = (torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g))
    valid = (torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g))
    return [W1, W2], alpha, loss_fn, train, valid


def test_first_order_gradient_is_the_validation_gradient():
    weights, alpha, loss_fn, _, valid = _toy()
    (grad,) = first_order_grads(loss_fn, valid, [alpha])
    expected = torch.autograd.grad(loss_fn(valid), alpha)[0]
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 3e-4)])
def test_second_order_matches_the_exact_unrolled_gradient(momentum, weight_decay):
    """DARTS Eq. 7 with the finite difference of Eq. 8 equals the exact gradient of
    L_val(w - xi (m v + dL_train/dw + lambda w), alpha) up to O(eps^2)."""
    weights, alpha, loss_fn, train, valid = _toy()
    xi = 1.0
    buffers = [torch.full_like(w, 0.1) for w in weights]
    before = [w.detach().clone() for w in weights]
    (approx,) = second_order_grads(loss_fn, train, valid, weights, [alpha], xi, momentum, weight_decay, buffers)
    for w, b in zip(weights, before):  # the virtual step is undone
        torch.testing.assert_close(w.detach(), b)
    g = torch.autograd.grad(loss_fn(train), weights, create_graph=True)
    unrolled = [w - xi * (momentum * v + gw + weight_decay * w) for w, gw, v in zip(weights, g, buffers)]
    exact = torch.autograd.grad(loss_fn(valid, unrolled), alpha)[0]
    first = torch.autograd.grad(loss_fn(valid, [u.detach() for u in unrolled]), alpha)[0]
    assert (exact - first).norm() > 0.01 * exact.norm()  # the second-order term matters here
    torch.testing.assert_close(approx, exact, rtol=1e-4, atol=1e-6)


def test_virtual_step_is_sgd_with_momentum_and_decay():
    w = [torch.tensor([1.0, -2.0])]
    virtual_step(w, [torch.tensor([0.5, 0.5])], xi=0.1, momentum=0.9, weight_decay=0.1,
                 buffers=[torch.tensor([1.0, 0.0])])
    # w - 0.1 * (0.9 * v + g + 0.1 * w)
    torch.testing.assert_close(w[0], torch.tensor([1.0 - 0.1 * (0.9 + 0.5 + 0.1), -2.0 - 0.1 * (0.5 - 0.2)]))


@pytest.mark.parametrize("order", ["first", "second"])
def test_one_search_epoch_updates_alpha_and_derives_a_valid_cell(order):
    from nascore.data import load_task

    task = load_task({"dataset": "digits", "seed": 0, "subset": 128})
    net = _supernet(nodes=2, scales=2, layers=3)
    space = DartsSpace(nodes=2)
    settings = SearchSettings(epochs=1, batch_size=32, order=order, cutout=2, exit_weights=[1.0, 0.5])
    searcher = Searcher(net, space, task, settings, seed=0)
    before = [a.detach().clone() for a in net.arch_parameters()]
    record = searcher.run()
    moved = [not torch.equal(a.detach(), b) for a, b in zip(net.arch_parameters(), before)]
    assert any(moved)
    assert len(record.epochs) == 1 and np.isfinite(record.epochs[0]["train_loss"])
    space.make(record.genomes[0])
    assert len(searcher.valid_accuracies()) == 2


# --------------------------------------------------------------------------- scale


def adam_displacement_bound(lr: float, steps: int, beta1: float = 0.5, beta2: float = 0.999) -> float:
    """The most Adam (bias-corrected, eps -> 0, L2 decay inside the gradient) can move one
    parameter in ``steps`` steps: by Cauchy-Schwarz |m_t| / sqrt(v_t) <= (1 - b1) /
    sqrt(1 - b2) * sqrt(sum_i (b1^2 / b2)^i), times the bias corrections sqrt(1 - b2^t) /
    (1 - b1^t); summed over the steps and scaled by lr."""
    r = beta1 ** 2 / beta2
    total = 0.0
    for t in range(1, steps + 1):
        ratio = (1 - beta1) / np.sqrt(1 - beta2) * np.sqrt(sum(r ** i for i in range(t)))
        total += ratio * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return lr * total


def test_adam_bound_is_tight_on_a_constant_gradient():
    """On a constant gradient Adam moves exactly lr per step, inside the bound."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.999), eps=1e-12)
    for _ in range(4):
        p.grad = torch.ones(1)
        opt.step()
    assert abs(float(p) + 0.4) < 1e-6 and 0.4 <= adam_displacement_bound(0.1, 4)


def _scaled_search(rule):
    from nascore.data import load_task

    task = load_task({"dataset": "digits", "seed": 0, "subset": 128})
    net = _supernet(nodes=2, scales=2, layers=3)
    space = DartsSpace(nodes=2)
    settings = SearchSettings(epochs=3, batch_size=32, alpha_lr_scale=rule)
    searcher = Searcher(net, space, task, settings, seed=0)
    before = [a.detach().clone() for a in net.arch_parameters()]
    record = searcher.run()
    moved = max(float((a.detach() - b).abs().max()) for a, b in zip(net.arch_parameters(), before))
    return record, moved


def test_steps_rule_moves_alpha_beyond_what_the_unscaled_rate_can():
    """128 digits -> halves of 64 -> 2 architecture batches of 32 per epoch, 3 epochs: S = 6
    Adam steps.  At DARTS's 3e-4 alpha can move at most adam_displacement_bound(3e-4, 6)
    (~2e-3); the 'steps' rule scales the rate by 19550 / 6 and must move alpha past ten
    times that bound, and softmax(alpha) visibly off uniform (1/8 per op)."""
    from nascore_msranas.search import DARTS_ARCH_STEPS, scaled_alpha_lr

    steps = 3 * 2
    bound = adam_displacement_bound(3e-4, steps)
    plain, moved_plain = _scaled_search("none")
    assert plain.arch_steps == steps and plain.alpha_lr == 3e-4
    assert moved_plain <= bound
    scaled, moved = _scaled_search("steps")
    assert scaled.alpha_lr == pytest.approx(3e-4 * DARTS_ARCH_STEPS / steps)
    assert scaled_alpha_lr(3e-4, 2 * DARTS_ARCH_STEPS) == 3e-4  # never scaled down
    assert moved > 10 * bound
    assert scaled.epochs[-1]["alpha"]["max_abs_dev"] > 0.05 > plain.epochs[-1]["alpha"]["max_abs_dev"]
    assert scaled.epochs[-1]["alpha"]["entropy_min"] < plain.epochs[-1]["alpha"]["entropy_min"] <= 1.0
    assert scaled.stability["transitions"] == 2


def test_alpha_movement_of_known_weights():
    from nascore_msranas.search import alpha_movement

    uniform = {"normal": torch.full((3, 4), 0.25)}
    m = alpha_movement(uniform)
    assert m["max_abs_dev"] == pytest.approx(0.0) and m["entropy_mean"] == pytest.approx(1.0)
    w = torch.full((2, 4), 0.25)
    w[1] = torch.tensor([0.7, 0.1, 0.1, 0.1])
    m = alpha_movement({"normal": w})
    h = -(0.7 * np.log(0.7) + 3 * 0.1 * np.log(0.1)) / np.log(4)
    assert m["max_abs_dev"] == pytest.approx(0.45)
    assert m["entropy_min"] == pytest.approx(h) and m["entropy_mean"] == pytest.approx((1 + h) / 2)


def test_cell_stability_of_a_constructed_sequence():
    """Four epochs: g0, g1 (one of 8 edges changed), g1, g1 -> transitions 7/8, 1, 1; the
    last quarter (2 epochs) is stable.  Then g0, g1, g1, g0: the last quarter holds 7 of
    the final cell's 8 edges in both epochs and is not stable."""
    from nascore_msranas.search import cell_stability

    space = DartsSpace(nodes=2)
    g0 = space.sample(np.random.default_rng(0)).genome
    key = next(k for k in g0 if k.startswith("normal") and "op" in k)
    g1 = dict(g0)
    g1[key] = next(op for op in space.op_names if op != g0[key])
    assert len(space.cell_edges(space.make(g0), "normal")) + len(space.cell_edges(space.make(g0), "reduce")) == 8
    s = cell_stability(space, [g0, g1, g1, g1])
    assert s["unchanged"] == pytest.approx([7 / 8, 1.0, 1.0])
    assert s["changes"] == 1 and s["last_quarter_epochs"] == 2
    assert s["last_quarter"] == 1.0 and s["last_quarter_stable"] is True
    s = cell_stability(space, [g0, g1, g1, g0])
    assert s["unchanged"] == pytest.approx([7 / 8, 1.0, 7 / 8]) and s["changes"] == 2
    assert s["last_quarter"] == pytest.approx(7 / 8) and s["last_quarter_stable"] is False


def test_steps_per_epoch_matches_the_trainers_batching():
    from nascore.api import WeightSharingTrainer
    from nascore_msranas.search import steps_per_epoch

    for n, bs in ((64, 32), (65, 32), (66, 32), (1, 8), (100, 128)):
        trainer = WeightSharingTrainer(batch_size=bs)
        assert steps_per_epoch(n, bs) == len(trainer._epoch_bounds(n)), (n, bs)
    assert steps_per_epoch(65, 32) == 2 and steps_per_epoch(66, 32) == 3


def _weights(rows):
    """Per cell a 5 x 7 weight matrix (edges (0,2) (1,2) (0,3) (1,3) (2,3)); ``rows`` maps
    an edge to {op: weight}, every other entry is 0.01."""
    space = DartsSpace(nodes=2)
    w = np.full((5, len(space.op_names)), 0.01)
    for e, ops in rows.items():
        for op, value in ops.items():
            w[e, space.op_names.index(op)] = value
    return {"normal": torch.tensor(w), "reduce": torch.tensor(w)}


def test_cell_regret_is_the_weight_lost_against_the_derived_cell():
    """The derived cell has regret 0; swapping an op for one 0.004 weaker costs 0.004;
    taking node 3's third-strongest edge instead of its second costs their difference."""
    from nascore_msranas.search import cell_regret

    space = DartsSpace(nodes=2)
    w = _weights({0: {"sep_conv_3x3": 0.30, "dil_conv_3x3": 0.296}, 1: {"skip_connect": 0.2},
                  2: {"max_pool_3x3": 0.25}, 3: {"avg_pool_3x3": 0.18}, 4: {"sep_conv_5x5": 0.4}})
    derived = space.from_weights(w).genome
    assert cell_regret(space, derived, w) == pytest.approx(0.0)
    swapped = {**derived, "normal_node2_op0": "dil_conv_3x3"}
    assert derived["normal_node2_op0"] == "sep_conv_3x3" and derived["normal_node2_in0"] == 0
    assert cell_regret(space, swapped, w) == pytest.approx(0.004)
    # node 3 keeps edges (0,3) 0.25 and (2,3) 0.40; reading input 1 (avg_pool 0.18) instead of 0 loses 0.07
    k = next(k for k in (0, 1) if derived[f"reduce_node3_in{k}"] == 0)
    moved = {**derived, f"reduce_node3_in{k}": 1, f"reduce_node3_op{k}": "avg_pool_3x3"}
    assert cell_regret(space, moved, w) == pytest.approx(0.25 - 0.18)


def test_tolerant_stability_ignores_flips_between_neck_and_neck_choices():
    """Epochs: g0, g1, g1 where g1 differs from g0 by one op.  Strictly that is one
    change; under the weights of epoch 1 the two ops differ by 0.004 < tol = 0.01, so
    tolerantly none, and the last quarter is tolerantly stable.  When they differ by 0.05
    the flip counts at both tolerances."""
    from nascore_msranas.search import cell_stability

    space = DartsSpace(nodes=2)
    base = {1: {"skip_connect": 0.2}, 2: {"max_pool_3x3": 0.25}, 3: {"avg_pool_3x3": 0.18},
            4: {"sep_conv_5x5": 0.4}}
    w0 = _weights({0: {"sep_conv_3x3": 0.30, "dil_conv_3x3": 0.20}, **base})
    w_near = _weights({0: {"sep_conv_3x3": 0.296, "dil_conv_3x3": 0.30}, **base})
    w_far = _weights({0: {"sep_conv_3x3": 0.25, "dil_conv_3x3": 0.30}, **base})
    g0 = space.from_weights(w0).genome
    for w1, regret, stable in ((w_near, 0.004, True), (w_far, 0.05, False)):
        g1 = space.from_weights(w1).genome
        assert g1 != g0
        s = cell_stability(space, [g0, g1, g1], [w0, w1, w1], tol=0.01)
        assert s["changes"] == 1 and s["last_quarter_stable"] is True  # last quarter: epochs 1-2
        assert s["regret"] == pytest.approx([regret, 0.0])
        assert s["changes_tol"] == (0 if stable else 1)
        assert s["last_quarter_changes_tol"] == 0  # the last quarter is epochs 1-2: no flip there
        s = cell_stability(space, [g0, g1, g1, g1, g0], [w0, w1, w1, w1, w1], tol=0.01)
        assert s["last_quarter_stable"] is False and s["last_quarter_stable_tol"] is stable
        assert s["last_quarter_regret"] == pytest.approx(regret)
    with pytest.raises(nascore.errors.ConfigError):
        cell_stability(space, [g0, g0], [w0])


def test_last_quarter_counts_only_flips_beyond_the_tolerance():
    """Five epochs, the last quarter is epochs 3-4 (one transition): the cell flips back
    from g1 to g0 at epoch 4; under epoch 4's weights g1 costs 0.004 (counted only
    strictly) or 0.05 (counted at tol 0.01 too)."""
    from nascore_msranas.search import cell_stability

    space = DartsSpace(nodes=2)
    base = {1: {"skip_connect": 0.2}, 2: {"max_pool_3x3": 0.25}, 3: {"avg_pool_3x3": 0.18},
            4: {"sep_conv_5x5": 0.4}}
    w1 = _weights({0: {"sep_conv_3x3": 0.25, "dil_conv_3x3": 0.30}, **base})
    g1 = space.from_weights(w1).genome
    for back, counted in ((0.296, 0), (0.25, 1)):
        w4 = _weights({0: {"sep_conv_3x3": 0.30, "dil_conv_3x3": back}, **base})
        g0 = space.from_weights(w4).genome
        s = cell_stability(space, [g1, g1, g1, g1, g0], [w1, w1, w1, w1, w4], tol=0.01)
        assert s["last_quarter_epochs"] == 2 and s["changes"] == 1
        assert s["regret"][-1] == pytest.approx(0.30 - back)
        assert s["last_quarter_changes_tol"] == counted == s["changes_tol"]


def test_warmup_epochs_train_weights_only():
    """During warm-up alpha stays at its start and the architecture learning rate is
    scaled to the steps after the warm-up."""
    from nascore_msranas.search import SearchSettings

    with pytest.raises(nascore.errors.ConfigError):
        SearchSettings(epochs=2, warmup_epochs=2)
    from nascore.data import load_task

    task = load_task({"dataset": "digits", "seed": 0, "subset": 128})
    space = DartsSpace(nodes=2)
    net = _supernet(nodes=2, scales=2, layers=3)
    start = [a.detach().clone() for a in net.arch_parameters()]
    searcher = Searcher(net, space, task, SearchSettings(epochs=3, batch_size=32, warmup_epochs=2), seed=0)
    plain = Searcher(_supernet(nodes=2, scales=2, layers=3), space, task, SearchSettings(epochs=3, batch_size=32))
    assert plain.arch_steps == 3 * searcher.arch_steps and searcher.alpha_lr == pytest.approx(3 * plain.alpha_lr)
    row = searcher.epoch(0)
    assert row["arch_loss"] is None
    for a, a0 in zip(net.arch_parameters(), start):
        torch.testing.assert_close(a, a0)
    searcher.epoch(1)
    searcher.epoch(2)
    # two Adam steps at lr 3e-4 x 19550 / 2 move alpha by about the lr (~2.9), far above 0.01
    assert max(float((a.detach() - a0).abs().max()) for a, a0 in zip(net.arch_parameters(), start)) > 0.01
