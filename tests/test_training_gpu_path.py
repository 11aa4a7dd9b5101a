"""The Trainer's GPU-path options, tested on CPU: bf16 autocast numerics, channels_last,
the device-side augmentations (random crop, flip, cutout) and option validation."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascore.data import load_task
from nascore.errors import ConfigError
from nascore.training import Augment, Trainer, random_crop, random_flip

torch.set_num_threads(1)

#: unit roundoff of bfloat16 (8 significant bits) and of float32 (24)
U_BF16 = 2.0 ** -8
U_FP32 = 2.0 ** -24


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


def fast(**kw):
    return Trainer(**{"epochs": 3, "batch_size": 64, "lr": 0.05, "device": "cpu", **kw})


# --------------------------------------------------------------------------- precision


def test_bf16_autocast_linear_and_conv_within_the_rounding_bound():
    """Under bf16 autocast a linear or conv layer rounds x, W and b to bf16 (relative error
    <= u each), accumulates in fp32 and rounds the output: |y_bf16 - y| <= 3u (|W||x| + |b|)
    to first order, with u = 2^-8.  The bound must also be nearly attained (not vacuous)."""
    g = torch.Generator().manual_seed(0)
    trainer = Trainer(precision="bf16", device="cpu")
    cpu = torch.device("cpu")
    lin = nn.Linear(256, 64)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    x_lin = torch.randn(32, 256, generator=g)
    x_conv = torch.randn(4, 8, 12, 12, generator=g)
    for layer, x, absolute in (
        (lin, x_lin, lambda: F.linear(x_lin.abs(), lin.weight.abs(), lin.bias.abs())),
        (conv, x_conv, lambda: F.conv2d(x_conv.abs(), conv.weight.abs(), conv.bias.abs(), padding=1)),
    ):
        with torch.no_grad():
            exact = layer(x)
            with trainer.autocast(cpu):
                low = layer(x)
            bound = 3 * U_BF16 * absolute()
        assert low.dtype == torch.bfloat16 and exact.dtype == torch.float32
        err = (low.float() - exact).abs()
        assert bool((err <= bound).all())
        assert float((err / bound).max()) > 0.01  # errors of bf16 size (fp32's would be ~1e-5 of it)


def test_fp32_autocast_is_off_and_loss_is_fp32_under_bf16():
    trainer = Trainer(precision="bf16", device="cpu")
    with Trainer(device="cpu").autocast(torch.device("cpu")):
        assert nn.Linear(4, 2)(torch.ones(1, 4)).dtype == torch.float32
    with trainer.autocast(torch.device("cpu")):
        out = nn.Linear(4, 3)(torch.ones(2, 4))
    loss = trainer.loss(out, torch.tensor([0, 2]))
    assert out.dtype == torch.bfloat16 and loss.dtype == torch.float32


def test_bf16_training_follows_fp32_on_digits(digits):
    """Same seed and batches: the bf16 loss curve stays within a few percent of fp32's
    (each op errs by ~u = 0.4%), and both reach the same accuracy band."""
    a = fast().fit(small_cnn(), digits, seed=0)
    b = fast(precision="bf16").fit(small_cnn(), digits, seed=0)
    for ra, rb in zip(a.curve, b.curve):
        assert abs(rb["train_loss"] - ra["train_loss"]) <= 0.05 * ra["train_loss"]
    assert a.curve[-1]["valid_accuracy"] > 90 and b.curve[-1]["valid_accuracy"] > 90


def test_fp16_is_refused_off_cuda(digits):
    with pytest.raises(ConfigError, match="precision='fp16' needs a CUDA device.*bf16"):
        fast(precision="fp16").fit(small_cnn(), digits, seed=0)


def test_fp16_grad_scaler_path_runs_when_the_cuda_check_is_lifted(digits, monkeypatch):
    """The fp16 code path (autocast fp16, GradScaler, unscale before clipping) is CUDA
    only for users; CPU autocast can run it, so it is exercised here with the check
    lifted: fp16 (10 significant bits, u = 2^-11) follows fp32's loss curve closely."""
    monkeypatch.setattr(Trainer, "check_device", lambda self, device: None)

    def mlp():  # fp16 convolutions are slow on the CPU; linear layers take the same path
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    a = fast().fit(mlp(), digits, seed=0)
    b = fast(precision="fp16", grad_clip=5.0).fit(mlp(), digits, seed=0)
    for ra, rb in zip(a.curve, b.curve):
        assert abs(rb["train_loss"] - ra["train_loss"]) <= 0.05 * ra["train_loss"]


def test_precision_is_validated():
    with pytest.raises(ValueError, match="precision must be one of"):
        Trainer(precision="fp8")


# --------------------------------------------------------------------------- channels_last


def test_channels_last_gives_the_same_conv_outputs_and_training(digits):
    """NHWC only reorders the sums of a convolution: outputs agree within the fp32
    reordering bound K u |W||x| (K = C_in k^2 products per output), and a whole fit with
    the same seed ends at the same weights up to that rounding carried through ~80 steps."""
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(4, 8, 12, 12, generator=g)
    with torch.no_grad():
        ref = conv(x)
        conv_cl = nn.Conv2d(8, 16, 3, padding=1).to(memory_format=torch.channels_last)
        conv_cl.load_state_dict(conv.state_dict())
        out = conv_cl(x.contiguous(memory_format=torch.channels_last))
        bound = 8 * 9 * U_FP32 * F.conv2d(x.abs(), conv.weight.abs(), conv.bias.abs(), padding=1)
    assert bool(((out - ref).abs() <= bound + 1e-12).all())

    def rel_diff(m1, m2):
        return max(float((x - y).abs().max() / x.abs().max()) for x, y in
                   zip(m1.state_dict().values(), m2.state_dict().values()) if x.is_floating_point())

    a, b, c = small_cnn(), small_cnn(), small_cnn()
    fast(epochs=1).fit(a, digits, seed=3)
    fast(epochs=1, channels_last=True).fit(b, digits, seed=3)
    fast(epochs=1).fit(c, digits, seed=4)
    assert all(p.is_contiguous() for p in b.parameters())  # handed back in the default format
    # rounding flips an occasional max-pool/ReLU tie, which training amplifies (observed
    # up to 5e-4 relative after one epoch); another batch order moves weights by O(10%)
    assert rel_diff(a, b) < 1e-2 < 0.1 < rel_diff(a, c)


# --------------------------------------------------------------------------- augmentation


def _numbered(n, c, h, w):
    """Images whose pixels are 1..h*w (distinct, non-zero): a crop's content gives its offset."""
    return (torch.arange(h * w, dtype=torch.float32) + 1).reshape(1, 1, h, w).expand(n, c, h, w).contiguous()


def test_random_crop_matches_padded_slices_and_is_seeded():
    x = torch.randn(16, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    fill = torch.tensor([-1.0, -2.0, -3.0])
    out = random_crop(x, 3, torch.Generator().manual_seed(5), fill=fill)
    again = random_crop(x, 3, torch.Generator().manual_seed(5), fill=fill)
    other = random_crop(x, 3, torch.Generator().manual_seed(6), fill=fill)
    assert out.shape == x.shape and torch.equal(out, again) and not torch.equal(out, other)
    padded = fill.reshape(1, 3, 1, 1).expand(16, 3, 16, 16).clone()
    padded[:, :, 3:13, 3:13] = x
    for i in range(16):  # each crop is one of the (2p+1)^2 windows of the padded image
        windows = [padded[i, :, oy:oy + 10, ox:ox + 10] for oy in range(7) for ox in range(7)]
        assert sum(torch.equal(out[i], wdw) for wdw in windows) >= 1


def test_random_crop_offsets_are_uniform():
    """Offsets (oy, ox) uniform on {0..2p}^2: each coordinate's 9 counts pass a chi-square
    test at p = 1e-4 (critical value 33.1 for 8 degrees of freedom), oy and ox independent."""
    n, p, h = 9000, 4, 16
    out = random_crop(_numbered(n, 1, h, h), p, torch.Generator().manual_seed(0))
    # out[p, p] shows source pixel (oy, ox) (always inside the image since h > 2p)
    v = out[:, 0, p, p].long() - 1
    oy, ox = v // h, v % h
    assert int(oy.min()) == 0 and int(oy.max()) == 2 * p and int(ox.max()) == 2 * p
    for coord in (oy, ox):
        counts = torch.bincount(coord, minlength=2 * p + 1).double()
        expected = n / (2 * p + 1)
        assert float(((counts - expected) ** 2 / expected).sum()) < 33.1
    assert abs(float(torch.corrcoef(torch.stack([oy.double(), ox.double()]))[0, 1])) < 4 / math.sqrt(n)


def test_random_flip_fraction_is_half_within_a_binomial_bound():
    n = 4000
    x = _numbered(n, 2, 5, 7)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(3)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped ^ kept).all())  # every image is either mirrored or untouched
    assert abs(int(flipped.sum()) - n / 2) <= 4 * math.sqrt(n / 4)  # 4 binomial standard deviations
    assert torch.equal(out, random_flip(x, torch.Generator().manual_seed(0)))


def test_augment_pipeline_fill_is_normalized_black_and_padding_defaults():
    trainer = Trainer(random_crop=True, hflip=True, cutout=4, device="cpu")
    assert trainer.padding_for((3, 32, 32)) == 4 and trainer.padding_for((1, 8, 8)) == 1
    assert Trainer(random_crop=True, crop_padding=2).padding_for((3, 32, 32)) == 2
    meta = {"mean": [0.5, 0.25], "std": [0.5, 0.25]}
    aug = Augment.for_trainer(trainer, (2, 32, 32), meta, torch.device("cpu"))
    assert aug.padding == 4 and aug.flip and aug.cutout == 4
    assert torch.allclose(aug.fill, torch.tensor([-1.0, -1.0]))
    out = random_crop(torch.zeros(64, 2, 32, 32), 4, torch.Generator().manual_seed(0), fill=aug.fill)
    assert float(out.min()) == -1.0  # some crops show the (black) padding
    assert Augment.for_trainer(Trainer(), (1, 8, 8), meta, torch.device("cpu")) is None


def test_augmented_fit_is_deterministic_for_a_seed(digits):
    trainer = fast(epochs=2, random_crop=True, hflip=True, cutout=2)
    a = trainer.fit(small_cnn(), digits, seed=4)
    b = trainer.fit(small_cnn(), digits, seed=4)
    c = fast(epochs=2).fit(small_cnn(), digits, seed=4)
    assert [r["train_loss"] for r in a.curve] == [r["train_loss"] for r in b.curve]
    # augmentation makes the train batches harder than the plain ones
    assert a.curve[-1]["train_loss"] > c.curve[-1]["train_loss"]


@pytest.mark.parametrize("option", [{"random_crop": True}, {"hflip": True}, {"channels_last": True}])
def test_image_options_refuse_tabular_tasks(option):
    with pytest.raises(ConfigError, match=f"{next(iter(option))} needs an image task"):
        fast(**option).fit(nn.Linear(4, 3), load_task({"dataset": "iris"}), seed=0)


def test_crop_padding_without_random_crop_is_refused(digits):
    with pytest.raises(ConfigError, match="crop_padding is set but random_crop is off"):
        fast(crop_padding=2).fit(small_cnn(), digits, seed=0)


def test_trainer_options_reach_the_train_evaluator_and_describe():
    from nascore.evaluation import TrainEvaluator
    from nascore.params import describe_params

    ev = TrainEvaluator(precision="bf16", channels_last=True, random_crop=True, hflip=True, compile=False)
    t = ev.trainer()
    assert (t.precision, t.channels_last, t.random_crop, t.hflip) == ("bf16", True, True, True)
    names = {row.name for row in describe_params(TrainEvaluator)}
    assert {"precision", "channels_last", "random_crop", "crop_padding", "hflip", "compile"} <= names


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NASCORE_TEST_COMPILE") != "1",
                    reason="torch.compile takes minutes on 2 cores; NASCORE_TEST_COMPILE=1 runs it")
def test_compiled_training_follows_eager(digits):
    """torch.compile fuses and reorders fp32 ops (relative error ~1e-6 per op): the loss
    curve of a compiled fit stays within 1e-3 of eager's and the model is the same object."""
    a, b = small_cnn(), small_cnn()
    fa = fast(epochs=2).fit(a, digits, seed=0)
    fb = fast(epochs=2, compile=True).fit(b, digits, seed=0)
    for ra, rb in zip(fa.curve, fb.curve):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-3)
    assert isinstance(b, nn.Sequential)  # trained in place, handed back uncompiled
