"""Reports: the Pareto front, plots and the HTML page of a run directory."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from nascore.errors import RunStoreError
from nascore.report import format_metric, load_run, pareto_front, ranked, write_report
from nascore.results import Evaluation
from nascore.store import RunStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pareto_front_of_a_known_set():
    points = [(90, 10), (85, 5), (95, 20), (80, 6), (90, 12), (95, 20), (None, 1), (99, float("nan"))]
    # (80, 6) is dominated by (85, 5); (90, 12) by (90, 10); the duplicate (95, 20) stays
    assert pareto_front(points) == [1, 0, 2, 5]
    assert pareto_front([]) == []


def test_pareto_front_matches_the_definition_on_random_points():
    rng = np.random.default_rng(0)
    pts = [(float(a), float(c)) for a, c in zip(rng.integers(0, 20, 300), rng.integers(0, 20, 300))]

    def dominated(p):
        return any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in pts)

    expected = sorted((i for i, p in enumerate(pts) if not dominated(p)), key=lambda i: (pts[i][1], i))
    got = pareto_front(pts)
    assert sorted(got) == sorted(expected)
    costs = [pts[i][1] for i in got]
    accs = [pts[i][0] for i in got]
    assert costs == sorted(costs) and accs == sorted(accs)  # a front rises with cost


def test_format_metric():
    assert format_metric("valid_accuracy", 93.456) == "93.46"
    assert format_metric("params", 1_234_567) == "1.23M"
    assert format_metric("flops", 45_000) == "45k"
    assert format_metric("epochs", 10) == "10"
    assert format_metric("test_accuracy", None) == "–"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _png(path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    fig.savefig(path)
    return path


def _make_run(run_dir: Path, outside: Path) -> list[Evaluation]:
    rng = np.random.default_rng(1)
    evals = []
    with RunStore(run_dir) as store:
        store.set_meta("config", {"seed": 0, "space": {"name": "chain"}, "task": {"dataset": "digits"}})
        for i in range(12):
            params = int(rng.integers(1_000, 100_000))
            acc = float(80 + 15 * np.log10(params) / 5 + rng.normal(0, 1))
            curve = [{"epoch": k + 1, "valid_accuracy": acc - 10 / (k + 1)} for k in range(4)]
            evals.append(Evaluation(
                key=f"key{i:02d}", space="chain", genome={"w": i}, status="ok", curve=curve,
                metrics={"valid_accuracy": acc, "test_accuracy": acc - 1, "params": params, "flops": 3 * params},
            ))
            store.add(evals[-1])
        store.add(Evaluation(key="stopped1", space="chain", genome={"w": 99}, status="stopped",
                             metrics={"valid_accuracy": 50.0}, curve=[{"epoch": 1, "valid_accuracy": 50.0}]))
        store.add(Evaluation(key="failed1", space="chain", genome={"w": -1}, status="failed",
                             error="Traceback ...\nDivergedError: loss is nan <script>alert(1)</script>"))
        _png(run_dir / "plugin_fig.png")
        store.event("figure", path="plugin_fig.png", title="SRM fit <&>")
    best = max(evals, key=lambda e: e.metrics["valid_accuracy"])
    result = {"best": {"key": best.key, "genome": best.genome, "tokens": ["C3-16", "P2", "FC-10"],
                       "metrics": best.metrics},
              "wall_seconds": 12.5, "figures": [{"path": str(_png(outside / "ext.png")), "title": "external"}]}
    (run_dir / "result.json").write_text(json.dumps(result))
    return evals


def test_write_report_draws_plots_tables_and_plugin_figures(tmp_path):
    run_dir, outside = tmp_path / "run", tmp_path / "elsewhere"
    outside.mkdir()
    evals = _make_run(run_dir, outside)
    out = write_report(run_dir)
    assert out == run_dir / "report.html"
    page = out.read_text()
    parser = _Links()
    parser.feed(page)
    assert len(parser.images) == 6  # 4 plots + 2 plugin figures
    for src in parser.images:
        assert not Path(src).is_absolute()
        assert (run_dir / src).read_bytes()[:8] == PNG_MAGIC
    assert "report_figures/ext.png" in parser.images  # copied in next to the report
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "SRM fit &lt;&amp;&gt;" in page
    text = " ".join(parser.text)
    assert "14 (12 ok, 1 stopped early, 1 failed)" in text
    assert "C3-16 P2 FC-10" in text
    ordered = sorted(evals, key=lambda e: -e.metrics["valid_accuracy"])
    positions = [page.index(f"<code>{e.key}</code>") for e in ordered[:10]]
    assert positions == sorted(positions)  # top table is best first
    assert ordered[10].key not in page.split("<h2>Failures</h2>")[0].split("<h2>Top")[1]


def test_report_of_a_run_with_only_failures(tmp_path):
    with RunStore(tmp_path) as store:
        store.add(Evaluation(key="f", space="s", genome={}, status="failed", error="ValueError: bad"))
    page = write_report(tmp_path).read_text()
    assert "No successful evaluations to plot yet." in page and "ValueError: bad" in page
    assert not list(tmp_path.glob("report_*.png"))


def test_load_run_needs_a_run_directory(tmp_path):
    with pytest.raises(RunStoreError, match="run directory"):
        load_run(tmp_path)


def test_ranked_orders_by_accuracy_and_skips_failures():
    evs = [Evaluation(key=k, space="s", genome={}, status=s, metrics=m, index=i) for i, (k, s, m) in enumerate([
        ("a", "ok", {"valid_accuracy": 90.0}), ("b", "failed", {}), ("c", "stopped", {"valid_accuracy": 95.0}),
        ("d", "ok", {"valid_accuracy": 95.0}), ("e", "ok", {"valid_accuracy": None})])]
    assert [e.key for e in ranked(evs)] == ["d", "c", "a"]


# ------------------------------------------------------------------------------ export

import attrs  # noqa: E402

import nascore  # noqa: E402
from nascore.errors import ConfigError  # noqa: E402
from nascore.export import export, export_model, load_best, load_best_model, raw_inputs  # noqa: E402


class _TwoExits:
    """A tiny CNN with two early-exit heads (returns a list of logits, as MSRANAS does)."""

    @staticmethod
    def build():
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
                self.exit1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
                self.exit2 = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 10))

            def forward(self, x):
                h = self.body(x)
                return [self.exit1(h), self.exit2(h)]

        torch.manual_seed(0)
        return Net()


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_export_model_torchscript_reproduces_every_exit(tmp_path):
    import torch

    model = _TwoExits.build().eval()
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    path = export_model(model, x[:1], tmp_path / "m.pt", "torchscript")
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            assert torch.allclose(a, b, atol=1e-5)


def test_export_model_onnx_matches_torch_with_a_dynamic_batch(tmp_path):
    import torch

    pytest.importorskip("onnx", reason="onnx is optional (nascore[onnx])")
    from onnx.reference import ReferenceEvaluator

    model = _TwoExits.build().eval()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    path = export_model(model, x[:1], tmp_path / "m.onnx", "onnx")
    got = ReferenceEvaluator(str(path)).run(None, {"input": x.numpy()})
    with torch.no_grad():
        for a, b in zip(model(x), got):
            np.testing.assert_allclose(b, a.numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="torchscript or onnx"):
        export_model(model, x[:1], tmp_path / "m.x", "tflite")


@attrs.define
class _TinyMLP(nascore.SearchSpace):
    """Test space: one hidden layer of ``hidden`` units."""

    name = "test-tiny-mlp"
    depth: int = nascore.param(1, help="hidden layers")

    def dimensions(self):
        return [nascore.Int("hidden", 8, 32, 8)]

    def build(self, arch, task):
        from torch import nn

        width = arch["hidden"]
        layers = [nn.Flatten(), nn.Linear(int(np.prod(task.input_shape)), width), nn.ReLU()]
        for _ in range(self.depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(width, task.num_classes))


class _SpacePlugin:
    @nascore.hookimpl
    def register_search_spaces(self, register):
        register("test-tiny-mlp", _TinyMLP)


@pytest.fixture
def tiny_space():
    from nascore.plugins import register_plugin, unregister_plugin

    register_plugin(_SpacePlugin(), "test-export-space")
    yield
    unregister_plugin("test-export-space")


def _trained_run(run_dir: Path, depth: int = 2):
    import torch

    from nascore.data import load_task

    config = {"seed": 0, "space": {"name": "test-tiny-mlp", "depth": depth},
              "task": {"dataset": "digits", "seed": 0}}
    space = nascore.create("search_space", "test-tiny-mlp", depth=depth)
    arch = space.make({"hidden": 16})
    torch.manual_seed(3)
    model = space.build(arch, load_task(config["task"]))
    run_dir.mkdir()
    torch.save(model.state_dict(), run_dir / "best.pt")
    best = {"key": arch.key, "genome": arch.genome, "tokens": ["FC-16"], "metrics": {"valid_accuracy": 91.0}}
    (run_dir / "result.json").write_text(json.dumps({"best": best, "config": config, "evaluations": []}))
    return model.eval(), config


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_load_best_model_rebuilds_the_trained_network(tmp_path, tiny_space):
    import torch

    model, _ = _trained_run(tmp_path / "run")
    best = load_best(tmp_path / "run")
    x = best.example_input()
    assert x.shape == (1, *best.task.input_shape)
    with torch.no_grad():
        assert torch.equal(load_best_model(tmp_path / "run")(x), model(x))
    path = export(tmp_path / "run", "torchscript")
    assert path == tmp_path / "run" / "model.torchscript.pt"
    with torch.no_grad():
        raw = raw_inputs(best.task, best.task.test.X)  # the export takes raw pixels
        assert torch.allclose(torch.jit.load(str(path))(raw), model(best.task.test.X), atol=1e-4)
    data = json.loads(export(tmp_path / "run", "json", tmp_path / "b.json").read_text())
    assert data["best"]["genome"] == {"hidden": 16} and data["best"]["space"] == "test-tiny-mlp"


def test_load_best_refuses_missing_or_mismatched_weights(tmp_path, tiny_space):
    _trained_run(tmp_path / "run", depth=2)
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    result["config"]["space"]["depth"] = 1  # weights of a 2-layer net, config of a 1-layer one
    (tmp_path / "run" / "result.json").write_text(json.dumps(result))
    with pytest.raises(RunStoreError, match="does not fit architecture"):
        load_best_model(tmp_path / "run")
    (tmp_path / "run" / "best.pt").unlink()
    with pytest.raises(RunStoreError, match="best.pt is missing"):
        load_best_model(tmp_path / "run")
    with pytest.raises(ConfigError, match="unknown export format"):
        export(tmp_path / "run", "tflite")
