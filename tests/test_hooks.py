"""Every hook: a plugin implementing it is honoured, and it is documented (meta-test)."""

import re
from pathlib import Path

import attrs
import click
import pytest
from click.testing import CliRunner

import nascore
from nascore import hookspecs
from nascore.errors import PluginError
from nascore.plugins import get_registry, register_plugin, unregister_plugin
from nascore.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("register_"))


@attrs.define
class Thing:
    """a do-nothing component"""

    level: int = nascore.param(1, help="a level")


class EveryHook:
    """Implements every registration hook with one tiny component each."""


for _kind, _hook in KINDS.items():
    def _impl(register, _k=_kind):
        register(f"hooktest-{_k.replace('_', '-')}", Thing)
    _impl.__name__ = _hook
    setattr(EveryHook, _hook, staticmethod(nascore.hookimpl(_impl)))


def _register_commands(cli):
    @cli.command("hooktest")
    def hooktest():
        """added by a plugin"""
        click.echo("hello from a plugin command")


EveryHook.register_commands = staticmethod(nascore.hookimpl(specname="register_commands")(_register_commands))


def _rectified_conv_1x1(C_in, C_out, stride, affine=True):
    """a 1x1 ReLU-conv-BN followed by a ReLU"""
    import torch

    from nascore.nn import make_op

    return torch.nn.Sequential(make_op("conv_1x1", C_in, C_out, stride, affine), torch.nn.ReLU())


def _register_operations(register):
    register("hooktest-rectified", _rectified_conv_1x1)


EveryHook.register_operations = staticmethod(nascore.hookimpl(specname="register_operations")(_register_operations))


@pytest.fixture
def every_hook():
    register_plugin(EveryHook(), name="every-hook")
    yield
    unregister_plugin("every-hook")


def test_hook_list_matches_kinds():
    assert set(HOOKS) == set(KINDS.values()) | {"register_commands", "register_operations"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_registration_hook_registers(every_hook, kind):
    comp = get_registry().get(kind, f"hooktest-{kind.replace('_', '-')}")
    assert comp.plugin == "every-hook" and comp.kind == kind
    # the registry builds it, then holds the product to its kind's protocol: a do-nothing
    # class is refused with an error naming the plugin and the protocol
    with pytest.raises(PluginError, match=r"of plugin 'every-hook'.*does not implement the \w+Protocol"):
        nascore.create(kind, f"every-hook:{comp.name}", level=3)


def test_register_commands_adds_a_cli_command(every_hook):
    from nascore.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    try:
        res = CliRunner().invoke(cli, ["hooktest"])
        assert res.exit_code == 0 and "hello from a plugin command" in res.output
    finally:
        cli.commands.pop("hooktest", None)


def test_register_operations_adds_a_buildable_op(every_hook):
    import torch

    from nascore.nn import make_op
    from nascore.plugins import get_operations

    assert get_operations().get("hooktest-rectified").plugin == "every-hook"
    op = make_op("hooktest-rectified", 3, 5, 2)
    y = op(torch.randn(2, 3, 7, 7))
    # ceil(7 / 2) = 4; the final ReLU makes every output >= 0; params: 1x1 conv 3*5 + BN 2*5
    assert y.shape == (2, 5, 4, 4) and float(y.detach().min()) >= 0.0
    assert sum(p.numel() for p in op.parameters()) == 3 * 5 + 2 * 5


def test_unregistering_a_plugin_drops_its_ops(every_hook):
    from nascore.plugins import get_operations

    unregister_plugin("every-hook")
    assert "hooktest-rectified" not in get_operations()
    register_plugin(EveryHook(), name="every-hook")  # the fixture unregisters it again


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook):
    docs = (ROOT / "docs" / "hooks.md").read_text()
    assert re.search(rf"^### `{hook}`$", docs, re.M), f"docs/hooks.md lacks a section for {hook}"
    spec = getattr(hookspecs, hook)
    assert spec.__doc__ and len(spec.__doc__) > 40, f"{hook} needs a docstring"
    # exercised above: registration hooks through test_each_registration_hook_registers
    assert hook in KINDS.values() or hook in ("register_commands", "register_operations")
