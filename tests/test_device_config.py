"""The run's top-level ``device``: the default of every component's ``device``, and a
CUDA request on a machine without CUDA refused before anything runs."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nascore.cli import cli
from nascore.config import resolve

QUICKSTART = str(Path(__file__).resolve().parents[1] / "examples" / "quickstart.toml")
BASE = {"seed": 0, "budget": 2, "task": {"dataset": "digits"}, "space": {"name": "nb201"},
        "evaluator": {"name": "train", "epochs": 1}}


def test_top_level_device_is_the_default_of_the_evaluators_device():
    assert resolve({**BASE, "device": "cpu"})["evaluator"]["device"] == "cpu"
    # a component's own setting wins; "auto" at the top leaves each component's default
    own = {**BASE, "device": "cpu", "evaluator": {**BASE["evaluator"], "device": "auto"}}
    assert resolve(own)["evaluator"]["device"] == "auto"
    assert resolve(BASE)["evaluator"]["device"] == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal needs a machine without CUDA")
@pytest.mark.parametrize("where", ["device=cuda", "evaluator.device=cuda"])
def test_cuda_without_cuda_is_one_line_and_no_run_directory(tmp_path, where):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", QUICKSTART, "--set", where, "--set", "budget=2",
                                   "--out", str(out)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == ["nascore: error: device 'cuda' requested but CUDA is not available; use device='cpu'"]
    assert not out.exists()
