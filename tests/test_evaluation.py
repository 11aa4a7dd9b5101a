"""Evaluators: ``train`` on digits and ``tabular`` lookups (NAS-Bench-201 and a small CSV)."""

from __future__ import annotations

import time

import attrs
import pytest
import torch
from nascore.testing import require_data
from torch import nn

import nascore
from nascore.arch import Architecture, Int, SearchSpace
from nascore.data import load_task
from nascore.errors import ConfigError, DatasetNotFoundError, TabularLookupError
from nascore.metrics import count_params
from nascore.results import OK, STOPPED, Outcome

torch.set_num_threads(1)

ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@attrs.define
class WidthSpace(SearchSpace):
    """Two 3x3 convolutions of a searched width, then a linear classifier."""

    name = "width"

    def dimensions(self):
        return [Int("width", 4, 16, 4)]

    def build(self, arch, task):
        c, h, w = task.input_shape
        k = arch["width"]
        return nn.Sequential(nn.Conv2d(c, k, 3, padding=1), nn.BatchNorm2d(k), nn.ReLU(),
                             nn.Conv2d(k, k, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(k * (h // 2) * (w // 2), task.num_classes))


class StringSpace:
    """The least a space needs for the tabular evaluator: ``to_string``."""

    def to_string(self, arch):
        return arch["cell"]


def cell(s):
    return Architecture("nb201", {"cell": s})


@pytest.fixture(scope="module")
def digits():
    return load_task({"dataset": "digits"})


def evaluator(**kw):
    return nascore.create("evaluator", "train", **{"epochs": 3, "batch_size": 64, "device": "cpu",
                                                   "latency_repeats": 3, **kw})


def test_train_evaluator_reports_every_metric(digits):
    space = WidthSpace()
    arch = space.make({"width": 8})
    out = evaluator().evaluate(arch, space, digits, seed=0)
    assert isinstance(out, Outcome) and out.status == OK
    m = out.metrics
    assert m["valid_accuracy"] == out.curve[-1]["valid_accuracy"] > 85.0
    assert m["test_accuracy"] > 85.0
    conv1, conv2, bn, fc = 1 * 8 * 9 + 8, 8 * 8 * 9 + 8, 2 * 8, 8 * 16 * 10 + 10
    assert m["params"] == conv1 + conv2 + bn + fc
    assert m["flops"] == 64 * 8 * 9 + 64 * 8 * 8 * 9 + 8 * 16 * 10
    assert m["epochs"] == 3 and len(out.curve) == 3 and m["train_seconds"] > 0 and m["latency_ms"] > 0
    # the returned weights are the trained model's, on the CPU
    model = space.build(arch, digits)
    model.load_state_dict(out.state_dict)
    assert all(v.device.type == "cpu" for v in out.state_dict.values())
    assert nascore.create("evaluator", "train", device="cpu").accuracy(model, digits.test) == m["test_accuracy"]


def test_train_evaluator_is_seeded(digits):
    space = WidthSpace()
    arch = space.make({"width": 4})
    ev = evaluator(epochs=2, measure_latency=False)
    a, b = ev.evaluate(arch, space, digits, seed=3), ev.evaluate(arch, space, digits, seed=3)
    assert "latency_ms" not in a.metrics
    assert a.metrics["valid_accuracy"] == b.metrics["valid_accuracy"]
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_train_evaluator_stopper_and_best_metric(digits):
    class StopAfterTwo:
        def should_stop(self, curve, epochs):
            return len(curve) == 2, 95.0

    space = WidthSpace()
    arch = space.make({"width": 4})
    out = evaluator(epochs=5, measure_latency=False).evaluate(arch, space, digits, seed=0, stopper=StopAfterTwo())
    assert out.status == STOPPED and out.metrics["epochs"] == 2 and out.metrics["predicted_accuracy"] == 95.0
    best = evaluator(epochs=3, final_metric="best", measure_latency=False).evaluate(arch, space, digits, seed=0)
    assert best.metrics["valid_accuracy"] == max(r["valid_accuracy"] for r in best.curve)


def test_tabular_nb201_known_rows():
    path = require_data("nb201/nb201.csv")
    ev = nascore.create("evaluator", "tabular", path=str(path), curve_columns=["cifar10_valid_12ep"])
    out = ev.evaluate(cell(ARCH1), StringSpace(), None, seed=0)
    assert out.status == OK
    assert out.metrics == {"valid_accuracy": 90.769333, "test_accuracy": 93.66,
                           "params": 802426, "flops": 113951370}
    assert out.curve == [{"epoch": 12, "valid_accuracy": 82.834, "column": "cifar10_valid_12ep"}]
    c100 = nascore.create("evaluator", "tabular", path=str(path), feedback="cifar100_valid", report="cifar100_test",
                          params_column="", flops_column="flops_m_cifar100")
    row0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert c100.evaluate(cell(row0), StringSpace()).metrics == {
        "valid_accuracy": 52.7, "test_accuracy": 52.913333, "flops": 15653220}


def test_tabular_default_path_and_speed():
    require_data("nb201/nb201.csv")
    ev = nascore.create("evaluator", "tabular")
    space, arch = StringSpace(), cell(ARCH1)
    ev.evaluate(arch, space)
    n = 5000
    t0 = time.perf_counter()
    for _ in range(n):
        ev.evaluate(arch, space)
    assert n / (time.perf_counter() - t0) > 1e4


def test_tabular_errors(tmp_path):
    table = tmp_path / "bench.csv"
    table.write_text("key,val,tst,kparams\nA,70.5,71.0,1.5\nB,80.25,,2\n")
    ev = nascore.create("evaluator", "tabular", path=str(table), key_column="key", feedback="val", report="tst",
                        params_column="kparams", params_scale=1000.0, flops_column="")
    assert ev.evaluate(cell("A"), StringSpace()).metrics == {"valid_accuracy": 70.5, "test_accuracy": 71.0,
                                                               "params": 1500}
    assert ev.evaluate(cell("B"), StringSpace()).metrics["test_accuracy"] is None  # empty cell
    with pytest.raises(TabularLookupError, match="'C' is not in .*bench.csv \\(2 rows keyed by 'key'\\)"):
        ev.evaluate(cell("C"), StringSpace())
    bad = nascore.create("evaluator", "tabular", path=str(table), key_column="key", feedback="valid")
    with pytest.raises(ConfigError, match="no column 'valid'.*columns: key, val, tst, kparams"):
        bad.evaluate(cell("A"), StringSpace())
    with pytest.raises(ConfigError, match="no key column 'arch_str'"):
        nascore.create("evaluator", "tabular", path=str(table)).evaluate(cell("A"), StringSpace())
    with pytest.raises(DatasetNotFoundError, match="no benchmark table at"):
        nascore.create("evaluator", "tabular", path=str(tmp_path / "x.csv")).evaluate(cell("A"), StringSpace())


def test_train_evaluator_records_the_space_metrics(digits):
    class MeasuredSpace(WidthSpace):
        def metrics(self, arch, model, task):
            first = model[0].weight
            return {"first_conv_bits": first.numel() * 8, "params": 7}

    space = MeasuredSpace()
    arch = space.make({"width": 8})
    out = evaluator(epochs=1, measure_latency=False).evaluate(arch, space, digits, seed=0)
    assert out.metrics["first_conv_bits"] == 8 * 1 * 9 * 8  # 8 filters of 1x3x3, 8 bits each
    assert out.metrics["params"] == 7  # the space's value wins
    plain = evaluator(epochs=1, measure_latency=False).evaluate(arch, WidthSpace(), digits, seed=0)
    assert "first_conv_bits" not in plain.metrics and plain.metrics["params"] > 7
