"""Built-in cell operations (a default plugin): the NASNet/DARTS and NAS-Bench-201 op sets.

The factories live in :mod:`nascore.nn.ops` and are named by ``"module:function"`` so that
registering them imports no torch.
"""

from __future__ import annotations

from ..hookspecs import hookimpl

_OPS = "nascore.nn.ops:"


@hookimpl
def register_operations(register):
    # DARTS, Section 3.1 (and NASNet): the eight candidate ops of a DARTS edge
    register("none", _OPS + "zero", "the zero op: no connection")
    register("skip_connect", _OPS + "skip_connect",
             "identity (a factorized reduce when strided, a 1x1 conv on a channel change)")
    register("max_pool_3x3", _OPS + "max_pool_3x3", "3x3 max pooling", pooling=True)
    register("avg_pool_3x3", _OPS + "avg_pool_3x3", "3x3 average pooling (padding excluded)", pooling=True)
    register("sep_conv_3x3", _OPS + "sep_conv_3x3", "3x3 separable convolution, applied twice")
    register("sep_conv_5x5", _OPS + "sep_conv_5x5", "5x5 separable convolution, applied twice")
    register("dil_conv_3x3", _OPS + "dil_conv_3x3", "3x3 dilated (rate 2) separable convolution")
    register("dil_conv_5x5", _OPS + "dil_conv_5x5", "5x5 dilated (rate 2) separable convolution")
    # hand-crafted VGG/ResNet cells written as cells (NAT, Section 4.2)
    register("conv_3x3", _OPS + "conv_3x3", "ReLU-conv 3x3-BN")
    register("conv_1x1", _OPS + "conv_1x1", "ReLU-conv 1x1-BN")
    # NAS-Bench-201, Section 2.1 (same modules as conv_3x3 / conv_1x1, the benchmark's names)
    register("nor_conv_3x3", _OPS + "conv_3x3", "ReLU-conv 3x3-BN (NAS-Bench-201 name)")
    register("nor_conv_1x1", _OPS + "conv_1x1", "ReLU-conv 1x1-BN (NAS-Bench-201 name)")
