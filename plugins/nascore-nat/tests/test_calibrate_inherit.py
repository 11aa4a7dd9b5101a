"""Calibrated inference from the input's trained weights (``calibrate_init="inherit"``):
weight inheritance, the fine-tuning protocol and the end-to-end choice (issue 17 item 3)."""

import pytest
import torch

from nascore.errors import ConfigError
from nascore_nat import genotypes
from nascore_nat.cell import CellPair
from nascore_nat.costs import build_network
from nascore_nat.transformer import (NeuralArchitectureTransformer, cost_function, finetune_scorer,
                                     inherit_weights)

SHAPE, CLASSES, C, LAYERS = (1, 8, 8), 10, 4, 3


def _seeded(pair, seed):
    torch.manual_seed(seed)
    return build_network(pair, SHAPE, CLASSES, C, LAYERS)


def test_inheriting_into_the_same_cell_reproduces_the_network():
    beta = genotypes.published("DARTS_V2")
    src, dst = _seeded(beta, 0), _seeded(beta, 1)
    assert inherit_weights(src, dst) == len(src.state_dict())
    x = torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(0))
    src.eval(), dst.eval()
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))  # same function, not merely close


def test_kept_edges_inherit_and_new_skips_keep_their_own_weights():
    beta = genotypes.published("VGG")
    # reduction cell: a null edge out of input node 0 becomes a skip, i.e. a factorized
    # reduction with parameters the input lacks; normal cell: a conv becomes a skip
    red = next(i for i, e in enumerate(beta.reduce.edges) if e.op == "none" and e.src == 0)
    conv = next(i for i, e in enumerate(beta.normal.edges) if e.op == "conv_3x3")
    normal = ["skip_connect" if i == conv else op for i, op in enumerate(beta.normal.ops)]
    reduce = ["skip_connect" if i == red else op for i, op in enumerate(beta.reduce.ops)]
    alpha = CellPair(beta.normal.with_ops(normal), beta.reduce.with_ops(reduce))
    src, dst, fresh = _seeded(beta, 0), _seeded(alpha, 1), _seeded(alpha, 1)
    s, f = src.state_dict(), fresh.state_dict()
    new = [k for k in f if k not in s]
    assert new and all(".ops." in k for k in new)  # only the factorized reduction is new
    assert not any(f".ops.{conv}." in k for k in f if k.startswith("cells.0."))  # the conv's weights are gone
    copied = inherit_weights(src, dst)
    d = dst.state_dict()
    assert copied == len(d) - len(new)
    for k, v in d.items():
        assert torch.equal(v, s[k] if k in s else f[k]), k


def test_finetune_scorer_trains_the_input_once_then_finetunes_every_pair():
    beta = genotypes.published("ResBlock")
    alpha = beta.apply([[1 if i == 0 and e.op != "skip_connect" else 0 for i, e in enumerate(c.edges)]
                        for c in beta.cells])
    log = []

    def build(pair):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        log.append(("build", pair == beta))
        return model

    def train(model, n):
        with torch.no_grad():
            model.bias += n  # a "training" whose effect is visible in the weights
        log.append(("train", n))

    score = finetune_scorer(beta, build, train, lambda m: m.bias.item(), epochs=4, finetune_epochs=1)
    torch.manual_seed(0)
    bias0 = torch.nn.Linear(2, 1).bias.item()
    assert score(beta) == pytest.approx(bias0 + 4 + 1)  # trained 4 epochs, then fine-tuned 1 from them
    assert score(alpha) == pytest.approx(bias0 + 4 + 1)  # inherits the input's trained weights
    assert log == [("build", True), ("train", 4), ("build", True), ("train", 1), ("build", False), ("train", 1)]


def test_calibrated_inherit_end_to_end(small_digits):
    beta = genotypes.published("DARTS_V2")
    nat = NeuralArchitectureTransformer(epochs=1, C=C, layers=LAYERS, warmup_epochs=0, seed=0)
    nat.fit(small_digits, beta, cost_network=(C, LAYERS))
    cost = cost_function(small_digits, C, LAYERS)
    alpha, info = nat.transform(beta, small_digits, mode="calibrated", samples=4, seed=0, cost_fn=cost,
                                calibrate_top=2, calibrate_init="inherit", calibrate_epochs=1, finetune_epochs=1)
    cands = info["candidates"]
    assert cands[0]["is_input"] and 2 <= len(cands) <= 3
    best = max(c["valid_accuracy"] for c in cands)
    chosen = [c for c in cands if CellPair.from_json(c["genotype"]) == alpha][0]
    # never worse on validation than the input; the input kept unless a candidate is strictly better
    assert chosen["valid_accuracy"] == best >= cands[0]["valid_accuracy"]
    assert (alpha == beta) == all(c["valid_accuracy"] <= cands[0]["valid_accuracy"] for c in cands[1:])
    c0, c1 = cost(beta), cost(alpha)
    assert c1["params"] <= c0["params"] and c1["flops"] <= c0["flops"]
    with pytest.raises(ConfigError, match="calibrate_init"):
        nat.transform(beta, small_digits, mode="calibrated", calibrate_init="warm")
