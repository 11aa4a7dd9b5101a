"""nascore-tnas: TNAS (transformer-VAE architecture sampling) for nascore.

Registers the ``tnas`` sampler and the ``tnas-oneshot`` and ``tnas-gradient`` optimizers.
Component modules are imported only when a component is built (``nascore.lazy``).
"""

from __future__ import annotations

import nascore


@nascore.hookimpl
def register_samplers(register):
    register("tnas", nascore.lazy("nascore_tnas.sampler:TNASSampler"),
             description="TNAS: eps-mixture (Eq. 11) of uniform sampling and a transformer VAE learned from results")


@nascore.hookimpl
def register_optimizers(register):
    register("tnas-oneshot", nascore.lazy("nascore_tnas.oneshot:TNASOneShot"),
             description="TNAS-OS: SPOS supernet trained on TNAS paths, VAE-seeded evolution, retrain the best")
    register("tnas-gradient", nascore.lazy("nascore_tnas.gradient:TNASGradient"),
             description="TNAS-G: paths from the VAE (Eq. 12) update supernet weights and multinomial parameters")
