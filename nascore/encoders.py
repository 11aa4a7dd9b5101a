"""Encoders: architectures -> feature matrices (scikit-learn transformer contract).

:class:`ArchitectureEncoder` is the base any encoder can use: it binds to a search space
(``set_space``; inferred from the architectures' space name with default parameters when
not set) and supplies ``fit_transform``.  Built-ins: ``vector`` (unit-cube coordinates)
and ``onehot`` (one column per option of every categorical dimension).
"""

from __future__ import annotations

import attrs
import numpy as np

from .arch import Choice, SearchSpace
from .errors import ConfigError


@attrs.define
class ArchitectureEncoder:
    """Base class: binds a space; subclasses implement ``_fit`` and ``_transform``."""

    space_: SearchSpace | None = attrs.field(default=None, init=False, repr=False)

    def set_space(self, space: SearchSpace) -> "ArchitectureEncoder":
        self.space_ = space
        return self

    def _bind(self, archs) -> SearchSpace:
        if self.space_ is None:
            if not archs:
                raise ConfigError(f"{type(self).__name__} needs a space: call set_space(space) or pass architectures")
            from . import create

            self.space_ = create("search_space", archs[0].space)
        return self.space_

    def fit(self, archs, y=None):
        archs = list(archs)
        self._fit(self._bind(archs), archs)
        return self

    def transform(self, archs):
        archs = list(archs)
        return self._transform(self._bind(archs), archs)

    def fit_transform(self, archs, y=None):
        return self.fit(archs, y).transform(archs)

    def _fit(self, space, archs) -> None:
        """Learn a vocabulary or scaling; stateless encoders need nothing."""


@attrs.define
class VectorEncoder(ArchitectureEncoder):
    """Unit-cube coordinates of every dimension (``SearchSpace.to_vector``)."""

    def _transform(self, space, archs):
        if not archs:
            return np.zeros((0, space.num_dimensions))
        return np.stack([space.to_vector(a) for a in archs])

    def get_feature_names_out(self, input_features=None):
        if self.space_ is None:
            raise ConfigError("encoder is not bound to a space yet: fit it first")
        return np.array([d.name for d in self.space_.dimensions()], dtype=object)


@attrs.define
class OneHotEncoder(ArchitectureEncoder):
    """One-hot of every categorical dimension (op and input choices of cell spaces:
    adjacency and op one-hot); numeric dimensions keep their unit-cube value."""

    def _layout(self, space):
        cols, blocks = [], []
        for d in space.dimensions():
            if isinstance(d, Choice):
                blocks.append((d, len(cols)))
                cols += [f"{d.name}={o}" for o in d.options]
            else:
                blocks.append((d, len(cols)))
                cols.append(d.name)
        return cols, blocks

    def _transform(self, space, archs):
        cols, blocks = self._layout(space)
        X = np.zeros((len(archs), len(cols)))
        for i, a in enumerate(archs):
            g = a.genome
            for d, start in blocks:
                if isinstance(d, Choice):
                    X[i, start + d.index(g[d.name])] = 1.0
                else:
                    X[i, start] = d.to_unit(g[d.name])
        return X

    def get_feature_names_out(self, input_features=None):
        if self.space_ is None:
            raise ConfigError("encoder is not bound to a space yet: fit it first")
        return np.array(self._layout(self.space_)[0], dtype=object)
