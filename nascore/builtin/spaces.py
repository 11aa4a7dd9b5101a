"""Built-in spaces (a default plugin): the NAS-Bench-201 and DARTS cell spaces."""

from ..hookspecs import hookimpl
from ..spaces import DartsSpace, NB201Space


@hookimpl
def register_search_spaces(register):
    register("nb201", NB201Space,
             description="NAS-Bench-201 cell: 6 edges x 5 ops (15,625 cells), benchmark string form")
    register("darts", DartsSpace,
             description="DARTS/NASNet normal + reduction cells, two (input, op) edges per node")
