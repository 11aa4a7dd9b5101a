"""``nascore nat optimize`` and ``nascore nat genotypes``."""

import json

import pytest
from click.testing import CliRunner


@pytest.fixture(scope="module")
def cli():
    from nascore.cli import _add_plugin_commands, cli

    if "nat" not in cli.commands:
        _add_plugin_commands()
    return cli


def test_genotypes_lists_the_published_cells(cli):
    res = CliRunner().invoke(cli, ["nat", "genotypes"])
    assert res.exit_code == 0
    for name in ("DARTS_V2", "ENAS", "NAONet", "VGG", "ResBlock", "MobileNetV2", "NAT_DARTS_V2"):
        assert name in res.output


def test_optimize_prints_genotype_costs_and_draws_both_cells(cli, tmp_path):
    png = tmp_path / "vgg.png"
    res = CliRunner().invoke(cli, ["nat", "optimize", "VGG", "--task", "digits", "--subset", "200", "--epochs", "1",
                                   "--train-epochs", "1", "--C", "4", "--layers", "3", "--samples", "2",
                                   "--png", str(png), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["before"]["params"] >= out["after"]["params"] and out["before"]["flops"] >= out["after"]["flops"]
    assert "valid_accuracy" in out["before"] and "valid_accuracy" in out["after"]
    assert out["info"]["genotype_after"]["normal_concat"] == [5]
    assert png.is_file() and png.stat().st_size > 10_000


def test_optimize_text_output(cli, tmp_path):
    png = tmp_path / "resnet.png"
    res = CliRunner().invoke(cli, ["nat", "optimize", "ResNet", "--subset", "200", "--epochs", "1", "--no-retrain",
                                   "--C", "4", "--layers", "3", "--inference", "maximum", "--png", str(png), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "optimized genotype of ResBlock:" in res.output
    for row in ("params", "MAdds", "valid accuracy %", "shared-weight valid acc. %"):
        assert row in res.output
    assert png.is_file()


def test_bad_genotype_exits_2_naming_the_edge(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"normal": [["sep_conv_3x3", 0, 2], ["sep_conv_3x3", 1, 2], ["max_pool_3x3", 2, 3]]}))
    res = CliRunner().invoke(cli, ["nat", "optimize", str(bad)])
    assert res.exit_code == 2
    assert "node 3 has one input (edge 2: max_pool_3x3 2->3)" in res.output
    res = CliRunner().invoke(cli, ["nat", "optimize", "NoSuchCell"])
    assert res.exit_code == 2 and "neither a published genotype" in res.output


def test_optimize_calibrates_from_the_inputs_weights(cli, tmp_path):
    """``--calibrate-init inherit`` reaches the compressor: the input is scored first (trained,
    then fine-tuned like every candidate) and the output is the best on validation."""
    res = CliRunner().invoke(cli, ["nat", "optimize", "DARTS_V2", "--subset", "200", "--epochs", "1", "--C", "4",
                                   "--layers", "3", "--warmup-epochs", "0", "--samples", "3", "--calibrate-top", "1",
                                   "--calibrate-init", "inherit", "--calibrate-epochs", "1", "--finetune-epochs", "1",
                                   "--no-retrain", "--png", str(tmp_path / "d.png"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)["info"]
    cands = info["candidates"]
    assert info["mode"] == "calibrated" and cands[0]["is_input"] and 1 <= len(cands) <= 2
    chosen = [c for c in cands if c["genotype"] == info["genotype_after"]]
    assert chosen and chosen[0]["valid_accuracy"] == max(c["valid_accuracy"] for c in cands)
    res = CliRunner().invoke(cli, ["nat", "optimize", "DARTS_V2", "--calibrate-init", "warm"])
    assert res.exit_code == 2 and "warm" in res.output
