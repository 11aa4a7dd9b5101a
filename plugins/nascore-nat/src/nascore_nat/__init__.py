"""nascore-nat: the Neural Architecture Transformer (Guo et al., NeurIPS 2019).

Registers the ``nat`` compressor (works on the best cell of any ``darts``-space run) and
the ``nascore nat`` commands.  The compressor module imports no torch; the modules that
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


@nascore.hookimpl
def register_commands(cli):
    from .cli import make_group

    cli.add_command(make_group())
