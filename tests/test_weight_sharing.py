"""The core weight-sharing trainer (nascore.weight_sharing) and the device helper (nascore.device)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import nascore
from nascore.api import ArchStep, Trainer, WeightSharingTrainer, model_device, resolve_device
from nascore.data import Split, Task, load_task
from nascore.errors import ConfigError, DivergedError

torch.set_num_threads(1)


def Probe():
    """A linear classifier of the two-feature samples of :func:`_split`."""
    return nn.Linear(2, 3)


def _split(n, offset, seed=0):
    """``n`` samples whose first feature is an id (``offset + i``): weight samples get ids
    0.., architecture samples 1000.., so a batch tells which split it came from."""
    g = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.arange(n, dtype=torch.float32) + offset, torch.randn(n, generator=g)], dim=1)
    return x, torch.randint(3, (n,), generator=g)


def _trainer(**kw):
    settings = dict(batch_size=4, lr=0.1, device="cpu", seed=0)
    return WeightSharingTrainer(**{**settings, **kw})


def _logging_hook(model, log):
    def hook(step: ArchStep):
        log.append(("a", step.batch[0][:, 0].tolist(), step.path, step.weight_batch))
        return float(step.index)

    return hook


def _logging_loss(log):
    def loss(model, batch, path):
        log.append(("w", batch[0][:, 0].tolist(), path, batch))
        return nn.functional.cross_entropy(model(batch[0]), batch[1])

    return loss


# ---- alternation order and splits ------------------------------------------------------
@pytest.mark.parametrize("arch_first", [False, True])
def test_step_alternation_pairs_each_weight_step_with_an_architecture_step(arch_first):
    model, log = Probe(), []
    tr = _trainer(arch_first=arch_first).setup(model, _split(10, 0), _split(6, 1000), loss=_logging_loss(log))
    paths = iter(range(100))
    record = tr.train_epoch(0, sample_path=lambda: next(paths), arch_step=_logging_hook(model, log))
    # one epoch passes over the smaller split: 6 samples in batches of 4 -> steps of 4 and 2
    kinds = [e[0] for e in log]
    assert kinds == (["a", "w", "a", "w"] if arch_first else ["w", "a", "w", "a"])
    weight, arch = [e for e in log if e[0] == "w"], [e for e in log if e[0] == "a"]
    assert [len(e[1]) for e in weight] == [4, 2] and record["arch"] == [0.0, 1.0]
    for w, a in zip(weight, arch):
        assert a[2] == w[2]  # the architecture step gets the path of its weight step ...
        assert a[3] is w[3]  # ... and the very weight batch (second-order DARTS needs it)
    assert record["losses"].shape == (2,) and tr.steps_ == 2


def test_epoch_alternation_runs_a_weight_phase_then_an_architecture_phase():
    model, log = Probe(), []
    tr = _trainer(alternate="epoch").setup(model, _split(10, 0), _split(6, 1000), loss=_logging_loss(log))
    tr.train_epoch(0, sample_path=lambda: "p", arch_step=_logging_hook(model, log))
    assert [e[0] for e in log] == ["w", "w", "w", "a", "a"]  # 10 -> 4+4+2, then 6 -> 4+2
    assert all(e[3] is None and e[2] is None for e in log if e[0] == "a")


@pytest.mark.parametrize("mode", [dict(alternate="step"), dict(alternate="epoch"), dict(batching="stream")])
def test_architecture_steps_see_only_the_architecture_split(mode):
    model, log = Probe(), []
    tr = _trainer(**mode).setup(model, _split(12, 0), _split(8, 1000), loss=_logging_loss(log), horizon=5)
    hook = _logging_hook(model, log)
    if mode.get("batching") == "stream":
        tr.train_steps(6, arch_step=hook)
    else:
        tr.train_epoch(0, arch_step=hook)
    seen_w = [i for e in log if e[0] == "w" for i in e[1]]
    seen_a = [i for e in log if e[0] == "a" for i in e[1]]
    assert seen_a and all(i >= 1000 for i in seen_a)
    assert seen_w and all(i < 1000 for i in seen_w)
    if mode.get("batching") == "stream":
        # 6 steps of 4 from a stream of permutations of 12: each sample exactly twice
        assert sorted(seen_w) == sorted(list(range(12)) * 2)
    elif mode["alternate"] == "epoch":
        # a phase is one pass: every sample of each split exactly once
        assert sorted(seen_w) == list(range(12)) and sorted(seen_a) == [1000.0 + i for i in range(8)]


# ---- equivalence with the plain Trainer ------------------------------------------------
class FixedPath(nn.Module):
    """The sub-network of ``net`` given by ``path``, as a stand-alone module."""

    def __init__(self, net, path):
        super().__init__()
        self.net, self.path = net, path

    def forward(self, x):
        return self.net(x, path=self.path)


def test_a_fixed_path_trains_exactly_as_the_plain_trainer_trains_that_subnetwork():
    """With a constant sampling callback and no architecture step the weight-sharing
    trainer is plain SGD on one sub-network: same seeded batch order, same cosine lr per
    epoch, same clipping.  Both run in float64 and perform the same operations, so they
    may differ only by rounding, which over 12 steps stays many orders below 1e-9."""
    digits = load_task({"dataset": "digits", "seed": 0, "subset": 120})
    valid = Split(digits.valid.X[:20].double(), digits.valid.y[:20])
    task = Task(name="digits", train=Split(digits.train.X[:49].double(), digits.train.y[:49]), valid=valid,
                test=valid, input_shape=digits.input_shape, num_classes=digits.num_classes, kind=digits.kind)
    space = nascore.create("search_space", "nb201", C=4, N=1)
    torch.manual_seed(0)
    net = space.supernet(task).double()
    twin, init = copy.deepcopy(net), copy.deepcopy(net.state_dict())
    path = [3, 1, 2, 3, 4, 1]
    settings = dict(batch_size=16, lr=0.05, momentum=0.9, weight_decay=3e-4, grad_clip=0.5, device="cpu")

    ws = WeightSharingTrainer(**settings, seed=7).setup(net, (task.train.X, task.train.y),
                                                        weights=net.weight_parameters(), horizon=3)
    records = ws.fit(3, sample_path=lambda: path)
    Trainer(epochs=3, **settings).fit(FixedPath(twin, path), task, seed=7)

    # 49 samples in batches of 16: 16+16+16 and a trailing batch of one left out, as the Trainer does
    assert [len(r["losses"]) for r in records] == [3, 3, 3]
    for (name, a), b in zip(net.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9, msg=name)
    moved = [n for n, p in net.named_parameters() if not torch.equal(p, init[n])]
    assert moved and all(".ops." not in n or any(f"mixed.{e}.ops.{o}." in n for e, o in enumerate(path))
                         for n in moved)  # only the path's ops were trained
    # with a different seed the batch order differs and so do the weights
    other = copy.deepcopy(net)
    other.load_state_dict(init)
    Trainer(epochs=3, **settings).fit(FixedPath(other, path), task, seed=8)
    diff = max((a - b).abs().max().item() for a, b in zip(net.weight_parameters(), other.weight_parameters()))
    assert diff > 1e-6


# ---- the optimizer's pieces ------------------------------------------------------------
def _linear_step(grad_clip):
    torch.manual_seed(0)
    model = nn.Linear(5, 3, bias=False).double()
    x, y = torch.randn(8, 5, dtype=torch.float64) * 10, torch.randint(3, (8,))
    before = model.weight.detach().clone()
    grad = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), model.weight)[0]
    tr = WeightSharingTrainer(batch_size=8, lr=1.0, momentum=0.0, weight_decay=0.0, schedule="none",
                              grad_clip=grad_clip, device="cpu", drop_single=False)
    tr.setup(model, (x, y)).train_epoch(0)
    return (model.weight.detach() - before).norm().item(), grad.norm().item()


def test_gradient_clipping_caps_the_step_at_lr_times_the_clip():
    """Plain SGD (lr 1, no momentum or decay) on one full batch moves w by exactly the
    gradient, rescaled to norm ``grad_clip`` when it is longer."""
    step, gnorm = _linear_step(None)
    assert gnorm > 1.0  # so that a clip of 0.25 binds
    assert step == pytest.approx(gnorm, rel=1e-12)
    step, _ = _linear_step(0.25)
    assert step == pytest.approx(0.25, rel=1e-6)  # clip_grad_norm_ divides by (norm + 1e-6)


def test_cosine_schedule_values_per_epoch_and_per_step():
    tr = _trainer(lr=0.1, lr_min=0.01).setup(Probe(), _split(8, 0), horizon=4)
    expected = [0.01 + 0.045 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert [tr.lr_at(t) for t in range(4)] == pytest.approx(expected, rel=1e-15)
    assert tr.lr_at(0) == pytest.approx(0.1) and tr.lr_at(2) == pytest.approx(0.055)
    assert tr.lr_at(4) == pytest.approx(0.01) and tr.lr_at(9) == pytest.approx(0.01)  # held past the horizon
    seen = []

    def recorder(trainer):
        def loss(model, batch, path):
            seen.append(trainer.weight_optimizer_.param_groups[0]["lr"])
            return nn.functional.cross_entropy(model(batch[0]), batch[1])
        return loss

    tr.loss_ = recorder(tr)
    tr.fit(4)
    assert seen == pytest.approx([e for e in expected for _ in range(2)])  # 8 samples: 2 steps per epoch
    stream = _trainer(lr=0.2, batching="stream")
    stream.setup(Probe(), _split(8, 0), horizon=3, loss=recorder(stream))
    seen.clear()
    stream.train_steps(2)
    stream.train_steps(2)
    assert seen == pytest.approx([0.2, 0.15, 0.05, 0.0], abs=1e-15)  # per step, then held at lr_min
    assert _trainer(schedule="none").setup(Probe(), _split(8, 0), horizon=4).lr_at(3) == 0.1


def test_nesterov_and_weight_decay_reach_the_optimizer():
    tr = _trainer(nesterov=True, momentum=0.5, weight_decay=0.01).setup(Probe(), _split(8, 0))
    group = tr.weight_optimizer_.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.5 and group["weight_decay"] == 0.01
    with pytest.raises(ConfigError, match="nesterov"):
        _trainer(nesterov=True, momentum=0.0)


# ---- seeding ---------------------------------------------------------------------------
def _seeded_run(seed):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    arch = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([arch], lr=0.1)

    def hook(step):
        loss = nn.functional.cross_entropy(model(step.batch[0]) + arch, step.batch[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    tr = _trainer(seed=seed, batching="stream", cutout=0).setup(
        model, _split(20, 0), _split(10, 1000), arch_parameters=[arch], horizon=10,
        loss=lambda m, b, p: nn.functional.cross_entropy(m(b[0]) + arch, b[1]))
    rec = tr.train_steps(10, arch_step=hook)
    return [p.detach().clone() for p in model.parameters()] + [arch.detach().clone()], rec


def test_same_seed_same_result_different_seed_different_result():
    a, rec_a = _seeded_run(3)
    b, rec_b = _seeded_run(3)
    c, _ = _seeded_run(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal(rec_a["losses"], rec_b["losses"])
    assert any(not torch.equal(x, y) for x, y in zip(a, c))
    assert torch.equal(a[-1], b[-1]) and a[-1].abs().sum() > 0  # the architecture parameters moved


def test_weight_steps_freeze_the_architecture_parameters():
    model = Probe()
    alpha = torch.zeros(3, requires_grad=True)
    grads = []

    def loss(m, batch, path):
        out = nn.functional.cross_entropy(m(batch[0]) + alpha, batch[1])
        grads.append(alpha.requires_grad)
        return out

    tr = _trainer().setup(model, _split(8, 0), arch_parameters=[alpha], loss=loss)
    tr.train_epoch(0)
    assert grads == [False, False] and alpha.requires_grad and alpha.grad is None


# ---- refusals --------------------------------------------------------------------------
def test_bad_settings_and_calls_are_refused():
    with pytest.raises(ConfigError, match="alternate='epoch' needs batching='epoch'"):
        _trainer(alternate="epoch", batching="stream")
    with pytest.raises(ValueError, match="device must be"):
        _trainer(device="gpu")
    with pytest.raises(ConfigError, match="non-empty"):
        _trainer().setup(Probe(), _split(0, 0))
    tr = _trainer().setup(Probe(), _split(8, 0))
    with pytest.raises(ConfigError, match="architecture split"):
        tr.train_epoch(0, arch_step=lambda s: None)
    with pytest.raises(ConfigError, match="train_steps needs batching='stream'"):
        tr.train_steps(1)
    with pytest.raises(ConfigError, match="train_epoch needs batching='epoch'"):
        _trainer(batching="stream").setup(Probe(), _split(8, 0)).train_epoch(0)


def test_a_diverging_loss_raises():
    tr = _trainer().setup(Probe(), _split(8, 0),
                          loss=lambda m, b, p: m(b[0]).sum() * float("nan"))
    with pytest.raises(DivergedError, match="diverged in epoch 1"):
        tr.train_epoch(0)


# ---- the device helper -----------------------------------------------------------------
def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available; use device='cpu'"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(ConfigError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_model_device():
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    bn = nn.BatchNorm1d(2, affine=False)  # buffers only
    assert model_device(bn) == torch.device("cpu")
    assert model_device(nn.ReLU(), default="cpu") == torch.device("cpu")
