"""The conformance kit over every registered component: built-ins and installed plugins."""

import pytest

from nascore.testing import check_component, conformance_cases

SLOW_KINDS = {"executor"}  # executors start worker pools; they have their own tests too


@pytest.mark.parametrize("kind,name", [c for c in conformance_cases() if c[0] not in SLOW_KINDS])
def test_component_conforms(kind, name):
    check_component(kind, name)


@pytest.mark.parametrize("name", ["local", "process"])
def test_executor_conforms(name):
    check_component("executor", name)
