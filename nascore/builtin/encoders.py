"""Built-in encoders (a default plugin)."""

from ..hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    from ..encoders import OneHotEncoder, VectorEncoder

    register("vector", VectorEncoder, description="unit-cube coordinates of every dimension")
    register("onehot", OneHotEncoder, description="one-hot of categorical dimensions (ops, inputs)")
