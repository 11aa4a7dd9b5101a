"""Weight sharing (Eqs. 9-10), TNAS-OS (Section 4.2) and TNAS-G (Section 4.3) on digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nascore
from nascore.data import load_task
from nascore.errors import ConfigError
from nascore.testing import check_component
from nascore_tnas.gradient import straight_through_weights
from nascore_tnas.supernet import PathSupernet

TASK = {"dataset": "digits", "seed": 0, "subset": 300}
SPACE = {"name": "nb201", "C": 4, "N": 1}
SMALL_VAE = {"d_model": 16, "vae_layers": 1, "latent_dim": 4, "vae_steps": 10}


def _config(optimizer: dict, budget: int = 1) -> dict:
    return {"seed": 0, "budget": budget, "device": "cpu", "task": TASK, "space": SPACE,
            "optimizer": optimizer,
            "evaluator": {"name": "train", "epochs": 4, "batch_size": 32, "measure_latency": False}}


@pytest.mark.parametrize("name", ["tnas-oneshot", "tnas-gradient"])
def test_optimizer_conformance(name):
    check_component("optimizer", name)


def _trainer(space, steps=4):
    task = load_task(TASK)
    return PathSupernet(space, task, steps_total=steps, batch_size=32, device="cpu", seed=0)


def test_supernet_shares_weights_across_paths():
    """Same op on the same edge = the same parameters, whatever the rest of the path; a
    step on one path moves exactly the ops on that path."""
    space = nascore.create("search_space", "nb201", C=4, N=1)
    tr = _trainer(space)
    a = space.from_path([3, 1, 3, 2, 0, 3])
    b = space.from_path([3, 2, 4, 1, 3, 0])  # shares nor_conv_3x3 on edge 0 with a
    cell = tr.net.cells[0]
    before = {n: p.detach().clone() for n, p in tr.net.named_parameters()}
    tr.train([a], 1)
    moved = {n for n, p in tr.net.named_parameters() if not torch.equal(p, before[n])}
    on_a = {f"cells.0.mixed.{e}.ops.{o}." for e, o in enumerate(space.to_path(a)) if o != 0}
    cell_moved = {n for n in moved if n.startswith("cells.0.mixed.")}
    assert cell_moved and all(any(n.startswith(p) for p in on_a) for n in cell_moved)
    assert not any(n.startswith("cells.0.mixed.1.ops.2.") for n in moved)  # b's edge-1 op: untouched
    conv_a = cell.mixed[0].ops[3]
    out_a = tr.net(tr.Xv[:8], path=space.to_path(a))
    assert out_a.shape == (8, 10)
    assert cell.mixed[0].ops[space.to_path(b)[0]] is conv_a  # b runs the very same module


def test_supernet_cost_and_accuracy_are_measured():
    space = nascore.create("search_space", "nb201", C=4, N=1)
    tr = _trainer(space)
    arch = space.from_path([3, 3, 3, 3, 3, 3])
    tr.train([arch], 3)
    idx = tr.valid_indices(64, np.random.default_rng(0))
    acc = tr.accuracy(arch, idx)
    with torch.no_grad():  # the same 64 samples in one batch, BN on batch statistics
        hits = int((tr.net(tr.Xv[idx], path=space.to_path(arch)).argmax(1) == tr.yv[idx]).sum())
    assert len(idx) == 64 and acc == pytest.approx(100.0 * hits / 64, abs=1e-12)
    assert tr.step_count == 3 and tr.seconds > 0
    assert tr.child_epoch_seconds(arch) > 0


def test_straight_through_weights_equal_the_path_and_carry_gradients():
    space = nascore.create("search_space", "nb201", C=4, N=1)
    tr = _trainer(space)
    path = [3, 1, 0, 2, 4, 3]
    w = straight_through_weights(tr.net, path)
    assert torch.allclose(w.detach(), torch.nn.functional.one_hot(torch.tensor(path), 5).float(), atol=1e-6)
    x = tr.Xv[:16]
    assert torch.allclose(tr.net(x, weights=w), tr.net(x, path=path), atol=1e-5)
    tr.net(x, weights=w).sum().backward()
    assert tr.net.alpha.grad is not None and tr.net.alpha.grad.abs().sum() > 0
    darts = nascore.create("search_space", "darts", nodes=2, C=2, layers=2)
    net = darts.supernet(load_task(TASK))
    arch = darts.sample(np.random.default_rng(0))
    w = straight_through_weights(net, darts.to_path(arch))
    assert set(w) == {"normal", "reduce"} and float(w["normal"].detach().sum()) == pytest.approx(4.0)


def test_tnas_oneshot_on_digits_retrains_the_best(tmp_path):
    opt = {"name": "tnas-oneshot", "epochs": 2, "population": 6, "generations": 2, "top_k": 3,
           "final_candidates": 2, "round_steps": 4, "archs_per_round": 4, **SMALL_VAE}
    result = nascore.run(_config(opt, budget=2), out=tmp_path / "run")
    info = result["info"]
    assert result["budget"]["used"] == 2 and result["counts"]["ok"] == 2
    assert result["best"]["metrics"]["valid_accuracy"] > 30.0  # 10 classes: chance is 10%
    assert len(info["retrained"]) == 2 and info["rounds"] >= 2
    assert info["epsilon"] == pytest.approx(min(1.0, 0.1 * info["rounds"]))
    assert len(info["evolution"]) == 3 and info["evolution"] == sorted(info["evolution"])
    assert info["supernet_to_child_epoch"] > 0
    assert (tmp_path / "run" / "result.json").exists()


def test_tnas_gradient_on_digits_moves_the_multinomial_parameters():
    opt = {"name": "tnas-gradient", "epochs": 2, "vae_candidates": 4, "round_steps": 4, "measure_child_epoch": False, **SMALL_VAE}
    result = nascore.run(_config(opt), write_files=False)
    info = result["info"]
    w = np.array(info["arch_weights"][0])
    assert w.shape == (6, 5) and np.allclose(w.sum(axis=1), 1.0)
    assert np.abs(w - 0.2).max() > 1e-3  # x moved away from its near-uniform start
    space = nascore.create("search_space", "nb201")
    space.validate(info["argmax_arch"])
    assert result["best"]["metrics"]["valid_accuracy"] > 30.0


def test_weight_sharing_search_refuses_bad_input():
    with pytest.raises(ConfigError, match="top_k"):
        nascore.run(_config({"name": "tnas-oneshot", "population": 3, "top_k": 5}), write_files=False)
    with pytest.raises(ConfigError, match="mutation_prob"):
        nascore.create("optimizer", "tnas-oneshot", mutation_prob=0.0)


@pytest.mark.parametrize("name", ["tnas-oneshot", "tnas-gradient"])
def test_uniform_path_sampler_never_draws_from_the_vae(name):
    """The baseline arm of the weight-sharing study: path_sampler='uniform' trains the same
    supernet on uniform paths only (eps stays 0; no p_theta draw for paths or candidates)."""
    extra = ({"population": 4, "generations": 1, "top_k": 2} if name == "tnas-oneshot" else {"vae_candidates": 3})
    opt = {"name": name, "epochs": 1, "round_steps": 4, "archs_per_round": 4, "measure_child_epoch": False,
           "path_sampler": "uniform", **extra, **SMALL_VAE}
    result = nascore.run(_config(opt), write_files=False)
    info = result["info"]
    assert info["path_sampler"] == "uniform" and info["sampler"]["asked_model"] == 0
    assert info.get("epsilon", 0.0) == 0.0 and info["rounds"] >= 2
    assert result["counts"]["ok"] == 1
    with pytest.raises(ConfigError, match="path_sampler"):
        nascore.create("optimizer", name, path_sampler="fixed")
