"""Example nascore plugin: registers the ``latin-hypercube`` sampler."""

import nascore


@nascore.hookimpl
def register_samplers(register):
    register("latin-hypercube", nascore.lazy("nascore_lhs.sampler:LatinHypercubeSampler"),
             "stratified samples: every dimension's range is covered evenly in each batch")
