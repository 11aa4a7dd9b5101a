"""Architectures as token sequences for the TNAS VAE (Section 3.2 of the TNAS paper).

The paper writes an architecture as a sequence of operations ``alpha = {o_i}``.  Here
every dimension of a space whose dimensions are all :class:`nascore.Choice` is one
position and every option one token.  Options equal across dimensions (the same
operation on two edges) share one token, so their embedding is shared; a per-position
mask marks the tokens a position may take, which is what keeps decoded samples valid.
"""

from __future__ import annotations

import json

import numpy as np

from nascore.api import Architecture, Choice, SearchSpace
from nascore.api import ConfigError, InvalidGenomeError


def _token_name(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ArchitectureVocabulary:
    """Positions (= dimensions), tokens (= option values) and the validity mask of a space."""

    def __init__(self, space: SearchSpace):
        dims = list(space.dimensions())
        bad = [d.name for d in dims if not isinstance(d, Choice)]
        if bad:
            raise ConfigError(
                f"TNAS needs a space whose dimensions are all Choice; space {space.name!r} has "
                f"non-choice dimension {bad[0]!r} (Int/Float are not token sequences)"
            )
        if not dims:
            raise ConfigError(f"space {space.name!r} has no dimensions to model")
        self.space = space
        self.names = [d.name for d in dims]
        self.tokens: list[str] = []
        index: dict[str, int] = {}
        self._position_ids: list[list[int]] = []
        for d in dims:
            ids = []
            for opt in d.options:
                name = _token_name(opt)
                if name not in index:
                    index[name] = len(self.tokens)
                    self.tokens.append(name)
                ids.append(index[name])
            self._position_ids.append(ids)
        self._options = [list(d.options) for d in dims]
        self._token_index = index
        self.mask = np.zeros((len(dims), len(self.tokens)), dtype=bool)
        for p, ids in enumerate(self._position_ids):
            self.mask[p, ids] = True

    @property
    def length(self) -> int:
        """Number of positions n of the sequence ``alpha = {o_i}_1^n``."""
        return len(self.names)

    @property
    def size(self) -> int:
        """Number of distinct tokens over all positions."""
        return len(self.tokens)

    def encode(self, archs) -> np.ndarray:
        """Token ids, shape ``(len(archs), length)``."""
        out = np.empty((len(archs), self.length), dtype=np.int64)
        for i, arch in enumerate(archs):
            genome = arch.genome if isinstance(arch, Architecture) else arch
            for p, name in enumerate(self.names):
                if name not in genome:
                    raise InvalidGenomeError(f"{self.space.name}: genome lacks dimension {name!r}")
                tok = self._token_index.get(_token_name(genome[name]))
                if tok is None or not self.mask[p, tok]:
                    raise InvalidGenomeError(
                        f"{self.space.name}: value {genome[name]!r} is not an option of {name!r}"
                    )
                out[i, p] = tok
        return out

    def genome(self, ids) -> dict:
        """The genome of one row of token ids (ids must respect the mask)."""
        ids = np.asarray(ids).ravel()
        genome = {}
        for p, name in enumerate(self.names):
            tok = int(ids[p])
            if not self.mask[p, tok]:
                raise InvalidGenomeError(
                    f"{self.space.name}: token {self.tokens[tok]} is not allowed at position {name!r}"
                )
            genome[name] = self._options[p][self._position_ids[p].index(tok)]
        return genome

    def decode(self, ids, rng: np.random.Generator | None = None) -> Architecture | None:
        """A valid architecture from token ids.  The mask makes every position valid; a
        genome that breaks the space's cross-dimension rule (``check``) goes through the
        space's ``repair`` (DARTS: a node reading one input twice gets another), and is
        None when the space cannot repair it (the caller redraws)."""
        genome = self.space.canonicalize(self.genome(ids))
        if self.space.check(genome) is not None:
            try:
                genome = self.space.canonicalize(self.space.repair(genome, rng))
            except InvalidGenomeError:
                return None
            if self.space.check(genome) is not None:
                return None
        return Architecture(self.space.name, genome)
