"""Config resolution and the CLI's handling of bad input (exit 2, one line)."""

import json
import tomllib

import pytest
from click.testing import CliRunner

from nascore import config as cfg
from nascore.cli import cli
from nascore.errors import ConfigError

TOY = {"seed": 1, "budget": 12, "space": {"name": "toy"}, "evaluator": {"name": "synthetic"},
       "optimizer": {"name": "regularized-evolution", "population": 6, "sample_size": 3}}


def test_resolve_fills_every_default(toy_plugin):
    r = cfg.resolve(TOY)
    assert r["optimizer"] == {"name": "regularized-evolution", "population": 6, "sample_size": 3, "batch_size": 1,
                              "mutation_rate": None}
    assert r["sampler"] == {"name": "random"} and r["executor"]["name"] == "local"
    assert r["space"] == {"name": "toy", "max_layers": 4}
    # None is written as "none" and reads back as None
    assert tomllib.loads(cfg.dumps(r))["optimizer"]["mutation_rate"] == "none"
    assert cfg.resolve(tomllib.loads(cfg.dumps(r))) == json.loads(json.dumps(r))


def test_overrides_parse_toml_values(toy_plugin):
    c = cfg.apply_overrides(TOY, ["optimizer.population=8", "space.max_layers=5", "name=abc"])
    assert c["optimizer"]["population"] == 8 and c["space"]["max_layers"] == 5 and c["name"] == "abc"
    with pytest.raises(ConfigError, match="--set expects key=value"):
        cfg.apply_overrides(TOY, ["optimizer.population"])


def test_overrides_address_compress_stages_by_index():
    config = {"compress": [{"name": "nat", "epochs": 10}, {"name": "quantize", "bits": 8}]}
    c = cfg.apply_overrides(config, ["compress.0.epochs=1", "compress.-1.bits=4"])
    assert c["compress"] == [{"name": "nat", "epochs": 1}, {"name": "quantize", "bits": 4}]
    assert config["compress"][0]["epochs"] == 10  # the input is not modified
    with pytest.raises(ConfigError, match=r"'2' is not an entry of the list \[\[compress\]\] \(it has 2: 0..1\)"):
        cfg.apply_overrides(config, ["compress.2.epochs=1"])
    with pytest.raises(ConfigError, match="address an entry of \\[\\[compress\\]\\] by its index"):
        cfg.apply_overrides(config, ["compress.epochs=1"])


@pytest.mark.parametrize("change,message", [
    ({"budgt": 3}, "unknown config key 'budgt'; did you mean 'budget'?"),
    ({"budget": -1}, "budget must be a non-negative integer"),
    ({"optimizer": {"name": "regularised-evolution"}}, "unknown optimizer 'regularised-evolution'; did you mean 'regularized-evolution'?"),
    ({"optimizer": {"name": "local-search", "initial": "ten"}}, "optimizer 'local-search': parameter 'initial' must be an integer, got 'ten'"),
    ({"optimizer": {"name": "local-search", "inital": 3}}, "unknown parameter 'inital' for optimizer 'local-search'; did you mean 'initial'?"),
    ({"space": None}, "the config needs a [space] table"),
    ({"device": "tpu"}, "device must be auto, cpu or cuda"),
])
def test_bad_configs(toy_plugin, change, message):
    bad = {**TOY, **change}
    if change.get("space", 1) is None:
        bad.pop("space")
    with pytest.raises(ConfigError) as info:
        cfg.resolve(bad)
    assert message in str(info.value)


def invoke(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def write(tmp_path, text):
    p = tmp_path / "run.toml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("text,message", [
    ("seed = [", "invalid TOML"),
    ('[space]\nname = "toy"\n[optimizer]\nname = "nope"', "unknown optimizer 'nope'"),
    ('[space]\nname = "toy"\n[optimizer]\nname = "random-search"\nbatch_size = 0', "batch_size must be in [1, inf], got 0"),
])
def test_cli_bad_input_exits_2_with_one_line(toy_plugin, tmp_path, text, message):
    res = invoke(["run", write(tmp_path, text), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("nascore: error:")
    assert not (tmp_path / "o" / "run.sqlite").exists()


def test_cli_missing_config_file(tmp_path):
    res = invoke(["run", str(tmp_path / "nope.toml")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_cli_set_override_bad_value(toy_plugin, tmp_path):
    path = write(tmp_path, '[space]\nname = "toy"\n[evaluator]\nname = "synthetic"')
    res = invoke(["run", path, "--set", "space.max_layers=abc", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "parameter 'max_layers' must be an integer, got 'abc'" in res.output


def test_cli_list_and_describe(toy_plugin):
    res = invoke(["list", "optimizer", "--json"])
    names = {c["name"] for c in json.loads(res.output)}
    assert {"random-search", "regularized-evolution", "local-search"} <= names
    ops = json.loads(invoke(["list", "operation", "--json"]).output)
    assert {o["kind"] for o in ops} == {"operation"}
    assert {"none", "skip_connect", "sep_conv_3x3", "nor_conv_3x3"} <= {o["name"] for o in ops}
    everything = json.loads(invoke(["list", "--json"]).output)
    assert [o for o in everything if o["kind"] == "operation"] == ops  # the unfiltered list ends with them
    res = invoke(["describe", "optimizer", "regularized-evolution"])
    assert "population (int, default 20): population size P" in res.output
    res = invoke(["describe", "optimizer", "nope"])
    assert res.exit_code == 2 and "unknown optimizer 'nope'" in res.output


def test_cli_run_show_and_invalid_genome(toy_plugin, tmp_path):
    path = write(tmp_path, 'budget = 8\n[space]\nname = "toy"\n[evaluator]\nname = "synthetic"\n')
    out = tmp_path / "run1"
    res = invoke(["run", path, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "8 evaluations" in res.output
    res = invoke(["show", str(out), "--json"])
    data = json.loads(res.output)
    assert data["run"]["evaluations"] == 8
    vals = [r["metrics"]["valid_accuracy"] for r in data["evaluations"]]
    assert vals == sorted(vals, reverse=True)
    bad = write(tmp_path, 'budget = 2\n[space]\nname = "toy"\n[evaluator]\nname = "synthetic"\n[baseline]\ngenome = {depth = 9}\n')
    res = invoke(["run", bad, "--out", str(tmp_path / "run2"), "--quiet"])
    assert res.exit_code == 2 and res.output.strip() == "nascore: error: toy: genome lacks dimension 'act'"
    assert not (tmp_path / "run2" / "run.sqlite").exists()  # refused before anything ran


def test_cli_compare_two_runs(toy_plugin, tmp_path):
    path = write(tmp_path, 'budget = 10\n[space]\nname = "toy"\n[evaluator]\nname = "synthetic"\n')
    for name, opt in (("a", "random-search"), ("b", "local-search")):
        res = invoke(["run", path, "--out", str(tmp_path / name), "--quiet", "--set", f"optimizer.name={opt}",
                      "--set", f"name={name}"])
        assert res.exit_code == 0, res.output
    res = invoke(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--plot", str(tmp_path / "c.png")])
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == ["a", "b"] and [r["optimizer"] for r in rows] == ["random-search", "local-search"]
    for r in rows:
        assert r["evaluations"] == 10 and len(r["best_so_far"]) == 10
        assert r["best_so_far"][-1] == r["valid_accuracy"]
        assert all(x <= y for x, y in zip(r["best_so_far"], r["best_so_far"][1:]))
    assert (tmp_path / "c.png").stat().st_size > 1000
    res = invoke(["compare", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "neither a run directory nor a .toml config" in res.output


def test_base_config_is_merged_under_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.toml").write_text(
        'name = "base"\nbudget = 8\n[optimizer]\nname = "regularized-evolution"\npopulation = 6\n'
        '[executor]\nname = "process"\nworkers = 2\n[[compress]]\nname = "a"\n')
    (tmp_path / "sub" / "child.toml").write_text(
        'base = "../base.toml"\nbudget = 3\n[optimizer]\nsample_size = 2\n[executor]\nname = "ray"\n')
    c = cfg.load(tmp_path / "sub" / "child.toml")
    assert c["name"] == "base" and c["budget"] == 3
    # the same component: updated key by key; another component: replaced
    assert c["optimizer"] == {"name": "regularized-evolution", "population": 6, "sample_size": 2}
    assert c["executor"] == {"name": "ray"}
    assert c["compress"] == [{"name": "a"}] and "base" not in c
    (tmp_path / "loop.toml").write_text('base = "loop.toml"\n')
    with pytest.raises(ConfigError, match="includes itself"):
        cfg.load(tmp_path / "loop.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.load({"base": str(tmp_path / "missing.toml")})
