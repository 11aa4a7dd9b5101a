"""Export the best architecture of a run (JSON) or its trained network (TorchScript, ONNX).

Exported networks take *raw* inputs: the task's normalization (``/ scale``, ``- mean``,
``/ std`` from ``task.meta``) is the first operation of the exported graph.

The network is rebuilt from the run itself: the space and task tables of its resolved
config (``result.json["config"]``, else the store's or ``config.toml``), the best
genome, and the weights in ``best.pt`` loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import attrs

from .errors import ConfigError, NascoreError, RunStoreError
from .report import RunData, load_run, ranked

FORMATS = ("json", "torchscript", "onnx")
DEFAULT_NAMES = {"json": "export.json", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}


def input_transform(task):
    """``(factor, offset)`` with ``normalized = raw * factor + offset`` for the task's model
    input, shaped to broadcast over a batch: the preprocessing the task applied to its
    splits (images: ``/ scale``, then per channel ``- mean, / std``; tabular: per feature),
    taken from ``task.meta``.  ``None`` for a task that records no statistics."""
    import torch

    meta = task.meta or {}
    if "mean" not in meta or "std" not in meta:
        return None
    mean = torch.tensor(meta["mean"], dtype=torch.float32)
    std = torch.tensor(meta["std"], dtype=torch.float32)
    scale = float(meta.get("scale", 1.0))
    factor, offset = 1.0 / (scale * std), -mean / std
    shape = tuple(task.input_shape)
    if "image_shape" in meta and len(shape) == 1:  # flattened image: channel-major features
        pixels = int(torch.tensor(meta["image_shape"][1:]).prod())
        factor, offset = factor.repeat_interleave(pixels), offset.repeat_interleave(pixels)
    elif len(shape) == 3:  # C x H x W: one value per channel
        factor, offset = factor[:, None, None], offset[:, None, None]
    return factor, offset


def with_preprocessing(model, task):
    """``model`` behind the task's input normalization: the returned module takes raw
    inputs (pixels as stored, e.g. 0-16 for digits and 0-255 for MNIST; raw features for
    tabular data), so an exported graph carries its preprocessing.  ``model`` itself when
    the task records none."""
    import torch

    transform = input_transform(task)
    if transform is None:
        return model

    class RawInputModel(torch.nn.Module):
        """Normalizes raw inputs like the run's task, then runs the trained network."""

        def __init__(self, net, factor, offset):
            super().__init__()
            self.net = net
            self.register_buffer("factor", factor)
            self.register_buffer("offset", offset)

        def forward(self, x):
            return self.net(x * self.factor + self.offset)

    return RawInputModel(model, *transform).eval()


def raw_inputs(task, X):
    """Undo the task's normalization of ``X`` (a batch of model inputs): the raw values."""
    transform = input_transform(task)
    if transform is None:
        return X.clone()
    factor, offset = transform
    return (X - offset) / factor


@attrs.define
class BestModel:
    """The best network of a run, rebuilt and loaded, with what it was built from."""

    model: object
    arch: object
    space: object
    task: object

    def example_input(self):
        """One real test sample (batch of 1) of the run's task, normalized."""
        return self.task.test.X[:1].clone()

    def raw_model(self):
        """The network behind the task's preprocessing: it takes raw inputs."""
        return with_preprocessing(self.model, self.task)

    def raw_example_input(self):
        """One real test sample (batch of 1) as raw input."""
        return raw_inputs(self.task, self.example_input())


def best_entry(data: RunData) -> dict:
    """``key``, ``genome`` (and ``tokens``, ``metrics``) of the run's best architecture:
    ``result.json["best"]``, or the best stored evaluation of a run that did not finish."""
    best = data.result.get("best")
    if best and best.get("genome") is not None:
        return best
    top = ranked(data.evaluations)
    if not top:
        raise RunStoreError(f"{data.run_dir} has no successful evaluation to export")
    e = top[0]
    return {"key": e.key, "space": e.space, "genome": e.genome, "metrics": e.metrics}


def _space_and_task(config: dict, run_dir: Path):
    from . import create
    from .data import load_task

    if not config.get("space") or not config.get("task"):
        raise RunStoreError(f"{run_dir}: no resolved config with [space] and [task] (result.json or config.toml)")
    params = dict(config["space"])
    space = create("search_space", params.pop("name"), **params)
    return space, load_task(config["task"])


def load_best(run_dir) -> BestModel:
    """Rebuild the run's best network and load ``best.pt`` into it (eval mode, CPU)."""
    import torch

    run_dir = Path(run_dir)
    data = load_run(run_dir)
    weights = run_dir / "best.pt"
    if not weights.is_file():
        raise RunStoreError(f"{weights} is missing: the run did not finish or its optimizer kept no "
                            "trained weights; export --format json still works")
    best = best_entry(data)
    space, task = _space_and_task(data.config, run_dir)
    arch = space.make(best["genome"])
    model = space.build(arch, task)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunStoreError(f"{weights} does not fit architecture {arch.key} of space {space.name!r}: {first}") from None
    model.eval()
    return BestModel(model, arch, space, task)


def load_best_model(run_dir):
    """The run's best network (``torch.nn.Module`` in eval mode) with ``best.pt`` loaded."""
    return load_best(run_dir).model


def _outputs(result) -> list:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _check_same(expected, got, fmt: str, atol: float = 1e-4) -> None:
    import torch

    for i, (a, b) in enumerate(zip(_outputs(expected), _outputs(got), strict=True)):
        b = torch.as_tensor(b)
        if not torch.allclose(a, b, atol=atol, rtol=1e-4):
            err = (a - b).abs().max().item()
            raise NascoreError(f"{fmt} export of output {i} differs from the model by {err:.3g}; "
                               "the model has data-dependent control flow that tracing cannot capture")


def _export_torchscript(model, example, path: Path) -> None:
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.10 deprecates TorchScript (FutureWarning); it is still the format
        # that C++/mobile runtimes load without Python
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, (example,), strict=False)
        _check_same(model(example), traced(example), "torchscript")
        traced.save(str(path))


def _export_onnx(model, example, path: Path) -> None:
    import torch

    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("ONNX export needs the onnx package: pip install 'nascore[onnx]'")
    import onnx

    with torch.no_grad():
        outputs = _outputs(model(example))
    names = ["logits"] if len(outputs) == 1 else [f"logits_{i}" for i in range(len(outputs))]
    dynamo = importlib.util.find_spec("onnxscript") is not None  # the new exporter needs it
    kwargs = ({"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamo
              else {"dynamic_axes": {"input": {0: "batch"}, **{n: {0: "batch"} for n in names}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=names,
                          dynamo=dynamo, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)))


def export_model(model, example_input, path, format: str = "torchscript") -> Path:
    """Write ``model`` (traced on ``example_input``, a batch) as TorchScript or ONNX.

    TorchScript is checked to reproduce the model's output on ``example_input``; ONNX is
    checked with ``onnx.checker``.  The batch dimension stays dynamic in ONNX.
    """
    if format not in ("torchscript", "onnx"):
        raise ConfigError(f"cannot export a model as {format!r}; choose torchscript or onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        (_export_torchscript if format == "torchscript" else _export_onnx)(model, example_input, path)
    finally:
        model.train(was_training)
    return path


def _export_json(data: RunData, path: Path) -> Path:
    best = dict(best_entry(data))
    best.setdefault("space", (data.config.get("space") or {}).get("name"))
    payload = {"best": best, "config": data.config, "evaluations": len(data.evaluations)}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
    return path


def export(run_dir, format: str = "json", out=None) -> Path:
    """Export the run's best architecture (``json``) or network (``torchscript``, ``onnx``)
    to ``out`` (default ``run_dir/export.json``, ``model.torchscript.pt``, ``model.onnx``)."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / DEFAULT_NAMES[format]
    if format == "json":
        return _export_json(load_run(run_dir), path)
    best = load_best(run_dir)
    return export_model(best.raw_model(), best.raw_example_input(), path, format)
