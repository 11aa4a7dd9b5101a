"""Every registered optimizer that searches by evaluating architectures spends its whole
budget on distinct evaluations and reports the best one it evaluated (issue 20)."""

import pytest

from nascore.testing import check_optimizer_rules, conformance_cases


@pytest.mark.parametrize("name", [n for _, n in conformance_cases("optimizer")])
def test_optimizer_query_rules(name):
    out = check_optimizer_rules(name, budget=30)  # raises ConformanceError naming the broken rule
    assert out["used"] == 30
