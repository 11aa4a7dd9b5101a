"""The ``nat`` compressor: conformance kit, a pipeline run on digits, inputs from runs/files."""

import json

import pytest

import nascore
from nascore.errors import ConfigError, InvalidGenomeError
from nascore.testing import check_component, conformance_cases


@pytest.mark.parametrize("kind,name", conformance_cases(plugin="nat"))
def test_conformance(kind, name):
    check_component(kind, name)


def test_registered_with_parameters():
    comp = nascore.create("compressor", "nat", epochs=3, policy="lstm")
    assert comp.epochs == 3 and comp.policy == "lstm"
    with pytest.raises(ConfigError, match="unknown parameter 'epoch'"):
        nascore.create("compressor", "nat", epoch=3)
    with pytest.raises(ConfigError, match="policy must be one of"):
        nascore.create("compressor", "nat", policy="transformer")


RUN = {
    "name": "nat-test", "seed": 0, "budget": 2, "device": "cpu",
    "task": {"dataset": "digits", "seed": 0, "subset": 300, "eval_subset": 150},
    "space": {"name": "darts", "nodes": 3, "C": 4, "layers": 3},
    "optimizer": {"name": "random-search"},
    "evaluator": {"name": "train", "epochs": 1, "batch_size": 64},
    "compress": [{"name": "nat", "epochs": 1, "C": 4, "layers": 3, "samples": 3, "batch_size": 64,
                  "calibrate_top": 1, "calibrate_epochs": 1}],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nat-run")
    result = nascore.run(RUN, out=out)
    return out, result


def test_pipeline_run_compresses_the_best_cell(run_dir):
    _, result = run_dir
    stage = result["stages"][0]
    assert stage["compressor"] == "nat"
    before, after = stage["before"], stage["after"]
    assert after["params"] <= before["params"] and after["flops"] <= before["flops"]
    for split in ("valid_accuracy", "test_accuracy"):
        assert 0 <= before[split] <= 100 and 0 <= after[split] <= 100
    info = stage["info"]
    assert len(info["history"]) == 2 + 1 and info["policy_seconds"] > 0  # 2 warm-up epochs, 1 of Algorithm 1
    # calibrated inference (the default): the input is trained and scored first, the output is the best
    cands = info["candidates"]
    assert info["mode"] == "calibrated" and cands[0]["is_input"] and 1 <= len(cands) <= 2
    best = max(c["valid_accuracy"] for c in cands)
    chosen = [c for c in cands if c["genotype"] == info["genotype_after"]]
    assert chosen and chosen[0]["valid_accuracy"] == best >= cands[0]["valid_accuracy"]
    assert info["space"]["include_none"] in (True, False)
    space = nascore.create("search_space", "darts", **{k: v for k, v in info["space"].items() if k != "name"})
    arch = space.make(stage["arch"]["genome"])  # the optimized arch is valid in the reported space
    assert space.tokens(arch) == stage["tokens"]


def test_inputs_from_a_run_directory_and_files(run_dir, tmp_path):
    from nascore_nat.genotype_io import load_input

    out, result = run_dir
    pair, space, label = load_input(str(out))
    assert space.nodes == 3 and pair.normal.num_nodes == 3 and label.endswith("-best")
    genotype = tmp_path / "cell.json"
    genotype.write_text(json.dumps(pair.to_json()))
    assert load_input(str(genotype))[0] == pair
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"space": "darts", "genome": result["best"]["genome"]}))
    again = load_input(str(arch_file))[0]
    def edges(p):
        return [sorted(map(tuple, c.entries())) for c in p.cells]

    assert edges(again) == edges(pair)


def test_bad_inputs(tmp_path):
    from nascore_nat.genotype_io import load_input

    with pytest.raises(ConfigError, match="neither a published genotype"):
        load_input("DARTS_V9")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"normal": [["sep_conv_3x3", 0, 2], ["sep_conv_3x3", 1, 2], ["conv_9x9", 1, 3],
                                          ["none", 0, 3]]}))
    with pytest.raises(InvalidGenomeError, match=r"normal cell edge 2 \(conv_9x9 1->3\) uses unknown op"):
        load_input(str(bad))
