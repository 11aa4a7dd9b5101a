import attrs
import pytest

import nascore
from nascore.api import SamplerBase
from nascore.errors import ConfigError, DuplicateComponentError, UnknownComponentError
from nascore.params import describe_params, in_range, one_of, param
from nascore.plugins import get_plugin_manager, get_registry, register_plugin, unregister_plugin
from nascore.registry import Registry


@attrs.define
class Widget(SamplerBase):
    """A component with typed parameters (a sampler that proposes nothing)."""

    size: int = param(3, help="how many", validator=in_range(1, 10))
    rate: float = param(0.5, help="a rate")
    mode: str = param("fast", help="speed", validator=one_of("fast", "slow"))
    sizes: list[int] = param(factory=lambda: [1, 2], help="a list")

    def ask(self, n):
        return []


def make_registry():
    r = Registry()
    r.add("sampler", "widget", Widget, plugin="p1")
    return r


def test_create_validates_and_coerces():
    r = make_registry()
    w = r.create("sampler", "widget", size=4, rate=1)
    assert w.size == 4 and w.rate == 1.0 and isinstance(w.rate, float)
    assert r.create("sampler", "p1:widget").size == 3


@pytest.mark.parametrize("params,message", [
    ({"sise": 4}, "unknown parameter 'sise' for sampler 'widget'; did you mean 'size'? valid: size, rate, mode, sizes"),
    ({"size": "many"}, "parameter 'size' must be an integer, got 'many'"),
    ({"size": 11}, "size must be in [1, 10], got 11"),
    ({"mode": "medium"}, "mode must be one of 'fast', 'slow', got 'medium'"),
    ({"sizes": [1, "x"]}, "parameter 'sizes'[1] must be an integer"),
    ({"size": True}, "must be an integer, got True"),
])
def test_bad_parameters_are_one_clear_line(params, message):
    with pytest.raises(ConfigError) as info:
        make_registry().create("sampler", "widget", **params)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_names_suggest_and_list():
    r = make_registry()
    with pytest.raises(UnknownComponentError, match="unknown sampler 'widgt'; did you mean 'widget'\\? installed: widget"):
        r.get("sampler", "widgt")
    with pytest.raises(UnknownComponentError, match="unknown component kind 'samplr'"):
        r.get("samplr", "widget")
    with pytest.raises(UnknownComponentError):
        r.get("sampler", "p2:widget")


def test_duplicates_name_both_plugins():
    r = make_registry()
    with pytest.raises(DuplicateComponentError, match="registered by both plugin 'p1' and plugin 'p2'"):
        r.add("sampler", "widget", Widget, plugin="p2")


def test_describe_lists_fields_with_help():
    info = {p.name: p for p in describe_params(Widget)}
    assert info["size"].default == 3 and info["size"].help == "how many" and info["size"].type == "int"
    assert info["sizes"].default == [1, 2]


def test_builtins_are_registered_by_the_default_plugins():
    comps = {(c.kind, c.name): c for c in nascore.components()}
    for kind, name in [("sampler", "random"), ("optimizer", "random-search"), ("optimizer", "regularized-evolution"),
                       ("optimizer", "local-search"), ("encoder", "vector"), ("encoder", "onehot"),
                       ("predictor", "random-forest"), ("predictor", "gaussian-process"),
                       ("predictor", "gradient-boosting"), ("executor", "local"), ("executor", "process")]:
        assert comps[(kind, name)].plugin == "nascore"
    get_plugin_manager().check_pending()


def test_in_process_plugin_registers_and_unregisters():
    class P:
        @nascore.hookimpl
        def register_samplers(self, register):
            register("widget-sampler", Widget)

    register_plugin(P(), name="widget-plugin")
    try:
        assert get_registry().get("sampler", "widget-plugin:widget-sampler").plugin == "widget-plugin"
        get_plugin_manager().check_pending()
    finally:
        unregister_plugin("widget-plugin")
    with pytest.raises(UnknownComponentError):
        get_registry().get("sampler", "widget-sampler")


def test_plugin_that_duplicates_a_builtin_is_refused_whole():
    class Clash:
        @nascore.hookimpl
        def register_samplers(self, register):
            register("random", Widget)

    with pytest.raises(DuplicateComponentError, match="'nascore' and plugin 'clash'"):
        register_plugin(Clash(), name="clash")
    assert get_plugin_manager().get_plugin("clash") is None
    assert get_registry().get("sampler", "random").plugin == "nascore"
