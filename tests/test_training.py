"""The Trainer: real accuracy on digits, determinism, multi-exit loss, cutout, early
stopping, divergence, timeout."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.data import load_task
from nascore.errors import CandidateTimeoutError, ConfigError, DivergedError
from nascore.training import Trainer, cutout

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_task({"dataset": "digits"})


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


class ThreeExits(nn.Module):
    """A trunk of three stages with a classifier after each (an anytime network)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stages = nn.ModuleList([nn.Sequential(nn.Linear(64 if i == 0 else 32, 32), nn.ReLU()) for i in range(3)])
        self.heads = nn.ModuleList([nn.Linear(32, 10) for _ in range(3)])

    def forward(self, x):
        x, outs = x.flatten(1), []
        for stage, head in zip(self.stages, self.heads):
            x = stage(x)
            outs.append(head(x))
        return outs


def fast(**kw):
    return Trainer(**{"epochs": 3, "batch_size": 64, "lr": 0.05, "device": "cpu", **kw})


def test_small_cnn_reaches_90_percent_on_digits(digits):
    model = small_cnn()
    fit = fast(epochs=5).fit(model, digits, seed=0)
    assert [r["epoch"] for r in fit.curve] == [1, 2, 3, 4, 5]
    assert fit.curve[-1]["valid_accuracy"] > 90.0
    assert fast().accuracy(model, digits.test) > 90.0
    assert fit.curve[-1]["train_loss"] < fit.curve[0]["train_loss"]
    seconds = [r["seconds"] for r in fit.curve]
    assert seconds == sorted(seconds) and fit.seconds >= seconds[-1]
    assert not fit.stopped and fit.epochs == 5


def _without_time(curve):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in curve]


def test_same_seed_same_curve_and_global_rng_untouched(digits):
    trainer = fast(cutout=2, epochs=2)
    state = torch.get_rng_state()
    a = trainer.fit(small_cnn(), digits, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = trainer.fit(small_cnn(), digits, seed=7)
    c = trainer.fit(small_cnn(), digits, seed=8)
    assert _without_time(a.curve) == _without_time(b.curve)
    assert _without_time(a.curve) != _without_time(c.curve)


def test_multi_exit_loss_is_weighted_sum_and_reaches_every_exit(digits):
    model = ThreeExits()
    x, y = digits.train.X[:32], digits.train.y[:32]
    with torch.no_grad():
        outs = model(x)
        ces = [float(F.cross_entropy(o, y)) for o in outs]
        assert float(fast().loss(outs, y)) == pytest.approx(sum(ces), rel=1e-6)
        weighted = float(fast(exit_weights=[0.5, 0.0, 2.0]).loss(outs, y))
    assert weighted == pytest.approx(0.5 * ces[0] + 2 * ces[2], rel=1e-6)

    fast().loss(model(x), y).backward()
    assert all(float(h.weight.grad.abs().sum()) > 0 for h in model.heads)
    model.zero_grad()
    fast(exit_weights=[0.0, 0.0, 1.0]).loss(model(x), y).backward()
    assert float(model.heads[0].weight.grad.abs().sum()) == 0.0
    assert float(model.stages[0][0].weight.grad.abs().sum()) > 0  # the last exit trains the trunk
    with pytest.raises(ConfigError, match="exit_weights has 2 entries but the model has 3 exits"):
        fast(exit_weights=[1.0, 1.0]).loss(model(x), y)


def test_multi_exit_fit_reports_every_exit(digits):
    model = ThreeExits()
    trainer = fast(epochs=3, optimizer="adam", lr=0.01)
    fit = trainer.fit(model, digits, seed=0)
    accs = trainer.exit_accuracies(model, digits.valid)
    assert len(accs) == 3 and all(a > 80 for a in accs)
    assert fit.curve[-1]["valid_exit_accuracies"] == accs
    assert fit.curve[-1]["valid_accuracy"] == accs[-1] == trainer.accuracy(model, digits.valid)


def test_cutout_zeroes_one_clipped_square_per_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(500, 3, 10, 12)
    out = cutout(x, 4, gen)
    assert torch.equal(x, torch.ones_like(x))  # not in place
    zero = out == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # same square on every channel
    sizes = set()
    for z in zero[:, 0]:
        rows, cols = z.any(1), z.any(0)
        assert torch.equal(z, rows[:, None] & cols[None, :])  # a rectangle
        r, c = rows.nonzero().flatten(), cols.nonzero().flatten()
        assert len(r) == r[-1] - r[0] + 1 and len(c) == c[-1] - c[0] + 1  # contiguous
        sizes.add((len(r), len(c)))
    # centred uniformly: squares of 4x4 inside, clipped to 2 or 3 rows/cols at the borders
    assert (4, 4) in sizes and max(sizes) == (4, 4) and min(min(s) for s in sizes) == 2


def test_cutout_needs_images():
    with pytest.raises(ConfigError, match="cutout needs an image task"):
        fast(cutout=4).fit(nn.Linear(4, 3), load_task({"dataset": "iris"}), seed=0)


def test_should_stop_ends_training_at_the_requested_epoch(digits):
    calls = []

    def should_stop(curve, epochs):
        calls.append((len(curve), epochs))
        return len(curve) >= 3, 77.5

    fit = fast(epochs=10).fit(small_cnn(), digits, seed=0, should_stop=should_stop)
    assert fit.stopped and fit.predicted == 77.5 and fit.epochs == 3
    assert calls == [(1, 10), (2, 10), (3, 10)]
    never = []
    fit = fast(epochs=3).fit(small_cnn(), digits, seed=0, should_stop=lambda c, e: never.append(1) or (False, None))
    assert not fit.stopped and fit.epochs == 3 and len(never) == 2  # not asked after the last epoch


def test_valid_every_and_progress(digits):
    seen = []
    fit = fast(epochs=4).fit(small_cnn(), digits, seed=0, valid_every=3, progress=seen.append)
    assert [r["valid_accuracy"] is None for r in fit.curve] == [True, True, False, False]
    assert seen == fit.curve


def test_nan_loss_raises_diverged(digits):
    model = small_cnn()
    with torch.no_grad():
        model[-1].weight.fill_(math.inf)
    with pytest.raises(DivergedError, match="diverged.*epoch 1"):
        fast(grad_clip=None).fit(model, digits, seed=0)


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        time.sleep(0.01)
        return self.fc(x.flatten(1))


def test_timeout_aborts_within_the_epoch(digits):
    t0 = time.perf_counter()
    with pytest.raises(CandidateTimeoutError, match="timeout of 0.05 s during epoch 1 of 3"):
        fast(timeout=0.05).fit(Slow(), digits, seed=0)
    # 17 steps of >= 10 ms make one epoch; the check after each step stops it early
    assert time.perf_counter() - t0 < 0.17 + 1.0


def test_schedules():
    cos = Trainer(lr=0.1, epochs=10)
    assert cos.lr_at(0) == pytest.approx(0.1) and cos.lr_at(5) == pytest.approx(0.05)
    assert cos.lr_at(10) == pytest.approx(0.0, abs=1e-12)
    step = Trainer(lr=0.1, schedule="step", step_size=3, gamma=0.5)
    assert [step.lr_at(e) for e in (0, 2, 3, 6)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert Trainer(lr=0.1, schedule="none").lr_at(7) == 0.1


def test_label_smoothing_matches_its_definition(digits):
    logits, y, eps = torch.randn(16, 10), digits.train.y[:16], 0.1
    logp = logits.log_softmax(1)
    expected = (1 - eps) * F.nll_loss(logp, y) + eps * (-logp.mean(1)).mean()
    assert float(fast(label_smoothing=eps).loss(logits, y)) == pytest.approx(float(expected), rel=1e-5)


def test_adam_on_tabular_data():
    iris = load_task({"dataset": "iris"})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    trainer = fast(epochs=30, batch_size=16, optimizer="adam", lr=0.01)
    trainer.fit(model, iris, seed=0)
    assert trainer.accuracy(model, iris.test) > 85.0


def test_bad_parameters_are_refused():
    import nascore

    with pytest.raises(ValueError, match="optimizer must be one of"):
        Trainer(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="nesterov=true needs momentum > 0"):
        Trainer(nesterov=True, momentum=0.0).make_optimizer([nn.Parameter(torch.zeros(1))])
    with pytest.raises(ValueError, match="device must be"):
        Trainer(device="tpu")
    assert isinstance(nascore.create("evaluator", "train", epochs=2).trainer(), Trainer)
