"""Hooks called through pluggy: unknown hooks, wrappers, attribution and the operations hook."""

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import nascore
from nascore.errors import DuplicateComponentError, PluginError
from nascore.plugins import get_operations, get_plugin_manager, get_registry, register_plugin, unregister_plugin

NASCORE = [sys.executable, "-m", "nascore.cli"]


@attrs.define
class Echo:
    """a do-nothing sampler"""


def _dist(root: Path, dist: str, ep: str, module: str, source: str) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nascore]\n{ep} = {module}\n")
    (root / f"{module}.py").write_text(source)


TYPO = '''
import attrs, nascore

@attrs.define
class Echo:
    """returns nothing"""

@nascore.hookimpl
def register_sampler(register):
    register("typo-echo", Echo)

@nascore.hookimpl
def register_encoders(register):
    register("typo-encoder", Echo)
'''

OPS_PLUGIN = '''
import attrs, nascore

@attrs.define
class Echo:
    """returns nothing"""

@nascore.hookimpl
def register_samplers(register):
    register("op-echo", Echo)

@nascore.hookimpl
def register_operations(register):
    register("pointwise_pool", "opplug_ops:pointwise_pool", "strided 1x1 pool then 1x1 conv")
'''

# the torch side of OPS_PLUGIN, imported only when the op is built
OPS_MODULE = '''
import torch

class PointwisePool(torch.nn.Module):
    def __init__(self, C_in, C_out, stride):
        super().__init__()
        self.pool = torch.nn.AvgPool2d(1, stride=stride)
        self.conv = torch.nn.Conv2d(C_in, C_out, 1, bias=False)

    def forward(self, x):
        return self.conv(self.pool(x))

def pointwise_pool(C_in, C_out, stride, affine=True):
    return PointwisePool(C_in, C_out, stride)
'''

# for each OP:CLASS argument, build a darts network whose every edge is OP, in a process
# where nothing else ran; count the modules of CLASS in it
BUILD = '''
import json, sys
from types import SimpleNamespace
import numpy as np, torch
import nascore
out = {}
for spec in sys.argv[1:]:
    op, cls = spec.split(":")
    space = nascore.create("search_space", "darts", ops=[op], nodes=2, C=4, layers=3)
    arch = space.sample(np.random.default_rng(0))
    net = space.build(arch, SimpleNamespace(input_shape=(1, 8, 8), num_classes=10, name="t")).eval()
    out[op] = {"shape": list(net(torch.randn(2, 1, 8, 8)).shape), "tokens": sorted(set(space.tokens(arch))),
               "modules": sum(type(m).__name__ == cls for m in net.modules())}
out["loaded"] = sorted(m for m in sys.modules if m.startswith("nascore_nat."))
print(json.dumps(out))
'''


@pytest.fixture
def plugin_path(tmp_path):
    _dist(tmp_path, "typo-plugin", "typo", "typo_mod", TYPO)
    _dist(tmp_path, "ops-plugin", "opplug", "opplug_mod", OPS_PLUGIN)
    (tmp_path / "opplug_ops.py").write_text(OPS_MODULE)
    return tmp_path


def run(args, path, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NASCORE_") or k == "NASCORE_DATA"}
    e.update({"PYTHONPATH": str(path), "NASCORE_LOAD_PLUGINS": "typo-plugin,ops-plugin", **env})
    return subprocess.run(args, capture_output=True, text=True, env=e, timeout=120)


def test_misspelled_hook_fails_its_plugin_naming_the_closest_spec(plugin_path):
    res = run(NASCORE + ["plugins", "--json"], plugin_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [f["name"] for f in data["failed"]] == ["typo"]
    error = data["failed"][0]["error"]
    assert "unknown hook 'register_sampler'" in error and "did you mean 'register_samplers'?" in error
    names = {p["name"] for p in data["plugins"]}
    assert "typo" not in names and "opplug" in names
    assert "plugin 'typo' failed to load" in res.stderr
    # the whole plugin is disabled: its correctly named hook registered nothing either
    listed = run(NASCORE + ["list", "--json"], plugin_path)
    assert {c["name"] for c in json.loads(listed.stdout)}.isdisjoint({"typo-echo", "typo-encoder"})
    text = run(NASCORE + ["plugins"], plugin_path)
    assert "typo" in text.stdout and "FAILED" in text.stdout and "did you mean 'register_samplers'?" in text.stdout


def test_strict_mode_makes_an_unknown_hook_an_error(plugin_path):
    res = run(NASCORE + ["plugins"], plugin_path, NASCORE_STRICT_PLUGINS="1")
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("nascore: error: plugin 'typo' failed to load") and "register_samplers" in last


def test_nascore_plugins_attributes_what_each_plugin_registered(plugin_path):
    data = json.loads(run(NASCORE + ["plugins", "--json"], plugin_path).stdout)
    reg = {p["name"]: [(r["kind"], r["name"]) for r in p["registered"]] for p in data["plugins"]}
    assert reg["opplug"] == [("sampler", "op-echo"), ("operation", "pointwise_pool")]
    assert ("sampler", "random") in reg["nascore.samplers"]
    assert [n for k, n in reg["nascore.operations"] if k == "operation"][:4] == [
        "none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"]
    assert len(reg["nascore.operations"]) == 12
    assert all(k != "operation" for k, _ in reg["nascore.samplers"])
    listed = {c["name"]: c["plugin"] for c in json.loads(run(NASCORE + ["list", "sampler", "--json"], plugin_path).stdout)}
    assert listed["op-echo"] == "opplug" and listed["random"] == "nascore"


def test_plugin_ops_build_in_a_fresh_darts_space(plugin_path):
    specs = ["pointwise_pool:PointwisePool"]
    try:
        import nascore_nat  # noqa: F401
        specs.append("inverted_residual_3x3:InvertedResidual")
    except ImportError:
        pass
    res = run([sys.executable, "-c", BUILD, *specs], plugin_path,
              NASCORE_LOAD_PLUGINS="typo-plugin,ops-plugin,nascore-nat")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for spec in specs:
        op = spec.split(":")[0]
        # 3 cells x 2 nodes x 2 input edges, every one the plugin's op; logits of 10 classes
        assert out[op] == {"shape": [2, 10], "tokens": [op], "modules": 3 * 2 * 2}, op
    if len(specs) == 2:
        # NAT's op came from its hook: nothing that used to register it as a side effect ran
        assert "nascore_nat.ops" in out["loaded"]
        assert not {"nascore_nat.genotype_io", "nascore_nat.transformer"} & set(out["loaded"])


# ----------------------------------------------------------------------- in process


class Wrapped:
    """A registration hook with a ``wrapper=True`` implementation around it."""

    def __init__(self):
        self.events = []

    @nascore.hookimpl(wrapper=True, specname="register_samplers")
    def around(self, register):
        self.events.append("before")
        result = yield
        self.events.append(("after", get_registry().get("sampler", "wrapped-echo").plugin))
        return result

    @nascore.hookimpl
    def register_samplers(self, register):
        self.events.append("impl")
        register("wrapped-echo", Echo)


def test_wrapper_impl_runs_around_the_plugins_registration():
    pm = get_plugin_manager()
    calls = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, [pm.get_name(i.plugin) for i in impls])),
        lambda outcome, name, impls, kwargs: None,
    )
    plugin = Wrapped()
    try:
        register_plugin(plugin, name="wrapped")
    finally:
        undo()
    try:
        assert plugin.events == ["before", "impl", ("after", "wrapped")]
        # called through pluggy, with this plugin's two implementations and no other plugin's
        assert calls == [("register_samplers", ["wrapped", "wrapped"])]
    finally:
        unregister_plugin("wrapped")
    assert "wrapped-echo" not in get_registry().names("sampler")


class Typo:
    @nascore.hookimpl
    def register_search_space(self, register):
        register("typo-space", Echo)


def test_register_plugin_refuses_an_unknown_hook():
    with pytest.raises(PluginError, match=r"unknown hook 'register_search_space'; did you mean 'register_search_spaces'\?"):
        register_plugin(Typo(), name="typo-inproc")
    assert get_plugin_manager().get_plugin("typo-inproc") is None
    get_plugin_manager().check_pending()  # nothing unknown is left behind


def _op_plugin(op_name, sampler=None):
    class P:
        @nascore.hookimpl
        def register_operations(self, register):
            register(op_name, "nascore.nn.ops:conv_1x1")

        if sampler:
            @nascore.hookimpl
            def register_samplers(self, register):
                register(sampler, Echo)

    return P()


def test_duplicate_op_is_refused_naming_both_plugins():
    from nascore.nn import make_op

    with pytest.raises(DuplicateComponentError,
                       match="operation 'sep_conv_3x3' is registered by both plugin 'nascore' and plugin 'clash'"):
        register_plugin(_op_plugin("sep_conv_3x3", sampler="clash-echo"), name="clash")
    # refused whole: its sampler is gone and the built-in op is untouched (2 x (9C + C^2 + 2C), C=4)
    assert "clash-echo" not in get_registry().names("sampler")
    assert get_operations().get("sep_conv_3x3").plugin == "nascore"
    assert sum(p.numel() for p in make_op("sep_conv_3x3", 4, 4, 1).parameters()) == 2 * (36 + 16 + 8)

    register_plugin(_op_plugin("dup_op"), name="first")
    try:
        with pytest.raises(DuplicateComponentError, match="'dup_op' is registered by both plugin 'first' and plugin 'second'"):
            register_plugin(_op_plugin("dup_op"), name="second")
        assert get_operations().get("dup_op").plugin == "first"
    finally:
        unregister_plugin("first")
    assert "dup_op" not in get_operations()


def test_unknown_op_in_a_space_names_the_closest():
    with pytest.raises(Exception, match="unknown operation 'sep_conv3x3'; did you mean 'sep_conv_3x3'"):
        nascore.create("search_space", "darts", ops=["sep_conv3x3"])
