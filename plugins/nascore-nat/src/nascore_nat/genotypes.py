"""Published cells NAT is applied to (NAT Sections 4.2-4.3), shipped as package data.

``data/published.json`` holds, each with its ``source``: DARTS (V1 first order, V2 second
order), ENAS, the hand-crafted VGG and ResNet blocks written as cells with null
connections and NAT's own optimized versions (``NAT_*``) -- copied from this project's
``../shared/data/genotypes/published.json`` (DARTS: quark0/darts; the rest: the NAT code
release guoyongcs/NAT) -- plus NAONet (NAONet-A from the NAO code release) and a
MobileNetV2 stage (Sandler et al., 2018) which that file lacks.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from nascore.api import ConfigError, did_you_mean

from .cell import CellPair

#: short names -> published keys (the six cells of NAT's Tables 1-3)
ALIASES = {
    "DARTS": "DARTS_V2", "RESNET": "ResBlock", "RESBLOCK": "ResBlock", "VGG": "VGG",
    "ENAS": "ENAS", "NAONET": "NAONet", "MOBILENETV2": "MobileNetV2",
    "NAT_DARTS": "NAT_DARTS_V2", "NAT_RESNET": "NAT_ResBlock",
}
#: the six input cells of the paper's experiments (Tables 1 and 2), hand-crafted first
PAPER_CELLS = ("VGG", "ResBlock", "MobileNetV2", "DARTS_V2", "ENAS", "NAONet")


@functools.cache
def _data() -> dict:
    text = resources.files(__package__).joinpath("data/published.json").read_text()
    return json.loads(text)["genotypes"]


def names() -> list[str]:
    """Keys of every published genotype."""
    return sorted(_data())


def resolve_name(name: str) -> str | None:
    """The published key for ``name`` (case-insensitive, aliases) or None."""
    table = _data()
    if name in table:
        return name
    lowered = {k.lower(): k for k in table}
    if name.lower() in lowered:
        return lowered[name.lower()]
    return ALIASES.get(name.upper())


def published(name: str) -> CellPair:
    """The published genotype ``name`` (e.g. ``DARTS_V2``, ``ResNet``, ``NAONet``) as cells."""
    key = resolve_name(name)
    if key is None:
        raise ConfigError(
            f"no published genotype {name!r};{did_you_mean(name, names())} available: {', '.join(names())}"
        )
    return CellPair.from_json(_data()[key])


def source(name: str) -> str:
    """Where the published genotype ``name`` comes from."""
    key = resolve_name(name)
    if key is None:
        raise ConfigError(f"no published genotype {name!r}; available: {', '.join(names())}")
    return _data()[key]["source"]
