"""Built-in datasets (a default plugin): scikit-learn's bundled sets, torchvision sets
read from a local root, image folders and CSV files (see :mod:`nascore.data`)."""

from ..hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from ..data import BUILTIN_DATASETS

    for cls in BUILTIN_DATASETS:
        register(cls.name, cls)
