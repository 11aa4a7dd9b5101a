"""The component protocols (nascore.protocols) and the read-only search context."""

from __future__ import annotations

import attrs
import pytest

import nascore
from nascore.api import ContextReadOnlyError, EvaluatorBase, SamplerBase, StopperBase
from nascore.errors import PluginError
from nascore.plugins import register_plugin, unregister_plugin
from nascore.protocols import PROTOCOLS, missing_members, protocol_members
from nascore.registry import KINDS
from nascore.testing import synthetic_context


@attrs.define
class NoSetupSampler:
    """Asks and tells, but leaves out setup (no SamplerBase)."""

    def ask(self, n):
        return []

    def tell(self, evaluations):
        pass


@attrs.define
class BaseSampler(SamplerBase):
    """Gets setup and tell from SamplerBase."""

    def ask(self, n):
        return [self.space.sample(self.rng) for _ in range(n)]


@attrs.define
class FixedStopper(StopperBase):
    def should_stop(self, curve, epochs=None):
        return False, None


@attrs.define
class LookupEvaluator(EvaluatorBase):
    def evaluate(self, arch, space, task, *, seed=0, stopper=None):
        raise NotImplementedError


class ContractPlugin:
    @nascore.hookimpl
    def register_samplers(self, register):
        register("no-setup", NoSetupSampler)
        register("base-sampler", BaseSampler)

    @nascore.hookimpl
    def register_stoppers(self, register):
        register("fixed", FixedStopper)

    @nascore.hookimpl
    def register_evaluators(self, register):
        register("lookup", LookupEvaluator)


@pytest.fixture
def contract_plugin():
    register_plugin(ContractPlugin(), name="contract-plugin")
    yield
    unregister_plugin("contract-plugin")


def test_every_kind_has_a_protocol_with_members():
    assert set(PROTOCOLS) == set(KINDS)
    assert protocol_members(PROTOCOLS["sampler"]) == ["setup", "ask", "tell"]
    assert protocol_members(PROTOCOLS["stopper"]) == ["update", "should_stop"]
    assert protocol_members(PROTOCOLS["evaluator"]) == ["needs_task", "evaluate"]
    assert protocol_members(PROTOCOLS["executor"]) == ["max_workers", "submit", "each", "shutdown"]


def test_the_registry_refuses_a_product_missing_a_protocol_member(contract_plugin):
    with pytest.raises(PluginError, match=r"sampler 'no-setup'.*SamplerProtocol: missing setup \(inherit the default from nascore.api.SamplerBase\)"):
        nascore.create("sampler", "no-setup")


def test_base_classes_supply_the_optional_members(contract_plugin):
    sampler = nascore.create("sampler", "base-sampler")
    stopper = nascore.create("stopper", "fixed")
    evaluator = nascore.create("evaluator", "lookup")
    assert missing_members(sampler, "sampler") == missing_members(stopper, "stopper") == []
    assert stopper.update([]) is None and evaluator.needs_task is True
    ctx = synthetic_context(nascore.create("search_space", "nb201"), sampler=sampler, seed=3)
    assert sampler.space is ctx.space and sampler.rng is ctx.rng
    assert len({a.key for a in sampler.ask(4)}) >= 2


def test_every_registered_component_conforms():
    from nascore.params import build_component
    from nascore.plugins import get_registry

    checked = 0
    for comp in get_registry().components():
        if any(p.required for p in comp.params()):
            continue  # needs a path or root to be built
        assert missing_members(build_component(comp.factory, {}, what=comp.name), comp.kind) == [], comp
        checked += 1
    assert checked >= 30


def test_the_context_is_read_only_and_gives_each_plugin_a_state_area():
    ctx = synthetic_context(nascore.create("search_space", "nb201"), budget=4)
    for name in ("sampler", "predictor", "encoder", "budget", "history", "_steerage_featurizer"):
        with pytest.raises(ContextReadOnlyError, match=f"cannot set '{name}'.*ctx.state"):
            setattr(ctx, name, None)
    with pytest.raises(ContextReadOnlyError):
        del ctx.space
    area = ctx.state("steerage")
    area["predictor"] = "mine"
    assert ctx.state("steerage") is area and ctx.state("tnas") == {} and ctx.state("tnas") is not area
    # the context's own bookkeeping still works: 4 evaluations fill the budget of 4
    evals = ctx.evaluate(ctx.sampler.ask(6))
    assert len(evals) == 4 and ctx.used == 4 and ctx.remaining == 0
    assert ctx.known(evals[0].key) is evals[0] and ctx.known("0" * 16) is None
