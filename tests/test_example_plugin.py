"""The example third-party plugin (docs/examples/nascore-lhs), installed by `make test`."""

import importlib.metadata

import nascore
from nascore.plugins import plugin_infos
from nascore.testing import check_component

from nascore.testing import require_data


def test_discovered_through_its_entry_point():
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="nascore")}
    assert eps["lhs"].value == "nascore_lhs" and eps["lhs"].dist.name == "nascore-lhs"
    info = {p.name: p for p in plugin_infos()}["lhs"]
    assert info.distribution == "nascore-lhs" and info.version == "0.1.0" and info.hooks == ("register_samplers",)
    comp = nascore.components("sampler")
    assert ("latin-hypercube", "lhs") in {(c.name, c.plugin) for c in comp}


def test_passes_the_conformance_kit():
    check_component("sampler", "lhs:latin-hypercube")


def test_its_sampler_seeds_regularized_evolution(tmp_path):
    table = require_data("nb201/nb201.csv")
    config = {"seed": 1, "budget": 40, "space": {"name": "nb201"},
              "evaluator": {"name": "tabular", "path": str(table)},
              "sampler": {"name": "latin-hypercube"},
              "optimizer": {"name": "regularized-evolution", "population": 10, "sample_size": 3}}
    result = nascore.run(config, out=tmp_path)
    assert result["config"]["sampler"] == {"name": "latin-hypercube", "strength": 1, "optimization": None}
    first = [e["genome"] for e in result["evaluations"][:10]]
    # the initial population is one Latin hypercube batch: each op appears twice per edge
    for edge in first[0]:
        counts = {}
        for g in first:
            counts[g[edge]] = counts.get(g[edge], 0) + 1
        assert sorted(counts.values()) == [2, 2, 2, 2, 2]
    assert result["budget"]["used"] == 40 and result["best"]["metrics"]["valid_accuracy"] > 85
