import numpy as np

import nascore
from nascore.testing import check_component, synthetic_context


def test_conformance():
    check_component("sampler", "latin-hypercube")


def test_batches_are_stratified():
    space = nascore.create("search_space", "nb201")
    sampler = nascore.create("sampler", "latin-hypercube")
    synthetic_context(space, sampler=sampler)
    archs = sampler.ask(5)
    # 5 options per edge and 5 points: every op appears exactly once on every edge
    for d in space.dimensions():
        assert sorted(a.genome[d.name] for a in archs) == sorted(d.options)
