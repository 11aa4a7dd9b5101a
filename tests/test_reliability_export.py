"""Exported networks take raw inputs: the task's normalization is part of the graph (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

import nascore
from nascore.export import export, load_best, raw_inputs


@attrs.define
class _RawMLP(nascore.SearchSpace):
    """Test space: one hidden layer of ``hidden`` units."""

    name = "test-raw-mlp"

    def dimensions(self):
        return [nascore.Int("hidden", 16, 32, 16)]

    def build(self, arch, task):
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(task.input_shape)), arch["hidden"]), nn.ReLU(),
                             nn.Linear(arch["hidden"], task.num_classes))


class _Plugin:
    @nascore.hookimpl
    def register_search_spaces(self, register):
        register("test-raw-mlp", _RawMLP)


@pytest.fixture
def raw_space():
    from nascore.plugins import register_plugin, unregister_plugin

    register_plugin(_Plugin(), "test-raw-export")
    yield
    unregister_plugin("test-raw-export")


def _trained_run(run_dir: Path, flatten: bool):
    """A run directory whose best.pt is a network really trained on digits."""
    import torch

    from nascore.data import load_task
    from nascore.training import Trainer

    config = {"seed": 0, "space": {"name": "test-raw-mlp"}, "task": {"dataset": "digits", "seed": 0, "flatten": flatten}}
    space = nascore.create("search_space", "test-raw-mlp")
    arch = space.make({"hidden": 32})
    task = load_task(config["task"])
    torch.manual_seed(0)
    model = space.build(arch, task)
    Trainer(epochs=8, device="cpu").fit(model, task, seed=0)
    run_dir.mkdir()
    torch.save(model.state_dict(), run_dir / "best.pt")
    best = {"key": arch.key, "genome": arch.genome, "metrics": {}}
    (run_dir / "result.json").write_text(json.dumps({"best": best, "config": config, "evaluations": []}))
    return model.eval(), task


def _sklearn_raw_test(task):
    """The test rows as scikit-learn stores them (pixels 0-16), in the model's input shape."""
    import sklearn.datasets
    import torch

    data = sklearn.datasets.load_digits().data[task.meta["indices"]["test"]]
    return torch.tensor(data, dtype=torch.float32).reshape(len(data), *task.input_shape)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
@pytest.mark.parametrize("flatten", [False, True])
def test_exported_torchscript_reproduces_the_test_accuracy_on_raw_pixels(tmp_path, raw_space, flatten):
    import torch

    model, task = _trained_run(tmp_path / "run", flatten)
    raw = _sklearn_raw_test(task)
    assert float(raw.max()) == 16.0 and float(raw.min()) == 0.0  # really raw: digits' 0-16 scale
    torch.testing.assert_close(raw_inputs(task, task.test.X), raw, atol=1e-4, rtol=0)
    with torch.no_grad():
        expected = model(task.test.X)
        in_process = (expected.argmax(1) == task.test.y).float().mean().item()
        assert in_process > 0.85  # a trained network, so that agreement means something
        exported = torch.jit.load(str(export(tmp_path / "run", "torchscript")))
        got = exported(raw)
        # the preprocessing matters: fed raw pixels directly, the network's logits move by far
        # more than the tolerance below
        assert (model(raw) - expected).abs().max().item() > 1.0
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (got.argmax(1) == task.test.y).float().mean().item() == in_process


def test_exported_onnx_takes_raw_pixels(tmp_path, raw_space):
    import torch

    pytest.importorskip("onnx", reason="onnx is optional (nascore[onnx])")
    from onnx.reference import ReferenceEvaluator

    model, task = _trained_run(tmp_path / "run", flatten=False)
    raw = _sklearn_raw_test(task)
    path = export(tmp_path / "run", "onnx")
    with torch.no_grad():
        expected = model(task.test.X).numpy()
    got = ReferenceEvaluator(str(path)).run(None, {"input": raw.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": raw.numpy()})[0], expected, atol=1e-4, rtol=1e-4)


def test_best_model_offers_raw_model_and_input(tmp_path, raw_space):
    import torch

    model, task = _trained_run(tmp_path / "run", flatten=False)
    best = load_best(tmp_path / "run")
    with torch.no_grad():
        torch.testing.assert_close(best.raw_model()(best.raw_example_input()), model(task.test.X[:1]))
