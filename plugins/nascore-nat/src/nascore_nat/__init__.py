"""nascore-nat: the Neural Architecture Transformer (Guo et al., NeurIPS 2019).

Registers the ``nat`` compressor (works on the best cell of any ``darts``-space run), the
operations the published input cells need beyond the core's (MobileNetV2 and NAONet ops)
and the ``nascore nat`` commands.  The compressor module imports no torch; the modules that
do (policy, supernet, transformer) are imported when a compression runs.
"""

from __future__ import annotations

import nascore


@nascore.hookimpl
def register_compressors(register):
    from .compressor import NATCompressor

    register("nat", NATCompressor,
             description="NAT: a GCN policy trained by policy gradient turns redundant ops of a cell into "
                         "skip/none; never more params or MAdds")


#: NAT's extra operations (name, pooling, description); the builders are in :mod:`nascore_nat.ops`
OPERATIONS = (
    ("inverted_residual_3x3", False, "MobileNetV2 bottleneck without its shortcut (expansion 6)"),
    ("conv_1x3_3x1", False, "factorized 1x3 then 3x1 convolution (NAO)"),
    ("conv_1x7_7x1", False, "factorized 1x7 then 7x1 convolution (NAO)"),
    ("max_pool_2x2", True, "2x2 max pooling, padded bottom/right (NAO)"),
    ("avg_pool_2x2", True, "2x2 average pooling, padded bottom/right (NAO)"),
    ("avg_pool_5x5", True, "5x5 average pooling (NAO)"),
)


@nascore.hookimpl
def register_operations(register):
    for name, pooling, description in OPERATIONS:
        register(name, f"nascore_nat.ops:{name}", description, pooling=pooling)


@nascore.hookimpl
def register_commands(cli):
    from .cli import make_group

    cli.add_command(make_group())
