"""Architectures as immutable values, dimensions, and the search-space base class.

An :class:`Architecture` is a space name plus a canonical genome (a mapping of
dimension names to JSON values).  A :class:`SearchSpace` declares its dimensions, which
gives every space generic sampling, mutation, crossover and a unit-cube encoding, and
provides the ``tokens`` / ``graph`` / ``build`` / ``cost`` views that make encoders,
samplers and compressors work with every space.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import numpy as np

from .errors import InvalidGenomeError

# --------------------------------------------------------------------------- dimensions


def _check_name(inst, attribute, value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"dimension name must be a non-empty string, got {value!r}")


@attrs.frozen
class Int:
    """An integer dimension ``low, low+step, ..., high``."""

    name: str = attrs.field(validator=_check_name)
    low: int
    high: int
    step: int = 1

    def __attrs_post_init__(self):
        if self.low > self.high:
            raise ValueError(f"dimension {self.name!r}: low {self.low} > high {self.high}")
        if self.step <= 0:
            raise ValueError(f"dimension {self.name!r}: step must be positive, got {self.step}")
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"dimension {self.name!r}: step {self.step} does not divide the range {self.low}..{self.high}"
            )

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def default(self):
        return self.low

    def sample(self, rng: np.random.Generator) -> int:
        return int(self.low + self.step * rng.integers(self.size))

    def contains(self, value) -> bool:
        return (
            isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and self.low <= value <= self.high and (value - self.low) % self.step == 0
        )

    def to_unit(self, value) -> float:
        return ((value - self.low) // self.step + 0.5) / self.size

    def from_unit(self, u: float) -> int:
        i = min(int(math.floor(float(u) * self.size)), self.size - 1)
        return int(self.low + self.step * max(i, 0))

    def neighbor(self, value, rng: np.random.Generator) -> int:
        """A different value, usually close to ``value`` (one or two steps)."""
        if self.size == 1:
            return value
        while True:
            delta = int(rng.choice([-2, -1, 1, 2])) * self.step
            cand = value + delta
            if self.low <= cand <= self.high:
                return int(cand)

    def describe(self) -> str:
        return f"int {self.low}..{self.high} step {self.step}"


@attrs.frozen
class Float:
    """A real dimension on ``[low, high]``, on a grid when ``step`` is given."""

    name: str = attrs.field(validator=_check_name)
    low: float
    high: float
    step: float | None = None

    def __attrs_post_init__(self):
        if self.low > self.high:
            raise ValueError(f"dimension {self.name!r}: low {self.low} > high {self.high}")
        if self.step is not None:
            if self.step <= 0:
                raise ValueError(f"dimension {self.name!r}: step must be positive, got {self.step}")
            n = (self.high - self.low) / self.step
            if abs(n - round(n)) > 1e-6:
                raise ValueError(
                    f"dimension {self.name!r}: step {self.step} does not divide the range {self.low}..{self.high}"
                )

    @property
    def size(self) -> int | None:
        return None if self.step is None else int(round((self.high - self.low) / self.step)) + 1

    def _snap(self, x: float) -> float:
        x = min(max(float(x), self.low), self.high)
        if self.step is None:
            return x
        k = round((x - self.low) / self.step)
        return round(self.low + k * self.step, 10)

    def default(self):
        return float(self.low)

    def sample(self, rng: np.random.Generator) -> float:
        if self.step is not None:
            return self._snap(self.low + self.step * rng.integers(self.size))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            return False
        if not (self.low - 1e-9 <= value <= self.high + 1e-9):
            return False
        return self.step is None or abs(self._snap(value) - value) < 1e-6

    def to_unit(self, value) -> float:
        if self.high == self.low:
            return 0.5
        if self.step is not None:
            return (round((value - self.low) / self.step) + 0.5) / self.size
        return (float(value) - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.step is not None:
            i = min(int(math.floor(u * self.size)), self.size - 1)
            return self._snap(self.low + i * self.step)
        return self.low + u * (self.high - self.low)

    def neighbor(self, value, rng: np.random.Generator) -> float:
        if self.high == self.low:
            return value
        scale = (self.high - self.low) * 0.1
        for _ in range(100):
            cand = self._snap(value + rng.normal(0.0, scale))
            if cand != value:
                return cand
        return value

    def describe(self) -> str:
        step = f" step {self.step}" if self.step is not None else ""
        return f"float {self.low}..{self.high}{step}"


@attrs.frozen
class Choice:
    """A categorical dimension over JSON-serializable ``options``."""

    name: str = attrs.field(validator=_check_name)
    options: tuple = attrs.field(converter=tuple)

    def __attrs_post_init__(self):
        if not self.options:
            raise ValueError(f"dimension {self.name!r} has no options")
        if len(set(map(_canon_json, self.options))) != len(self.options):
            raise ValueError(f"dimension {self.name!r} has duplicate options")

    @property
    def size(self) -> int:
        return len(self.options)

    def default(self):
        return self.options[0]

    def sample(self, rng: np.random.Generator):
        return self.options[int(rng.integers(len(self.options)))]

    def index(self, value) -> int:
        for i, opt in enumerate(self.options):
            if opt == value:
                return i
        raise ValueError(value)

    def contains(self, value) -> bool:
        return any(opt == value and isinstance(opt, bool) == isinstance(value, bool) for opt in self.options)

    def to_unit(self, value) -> float:
        return (self.index(value) + 0.5) / len(self.options)

    def from_unit(self, u: float):
        i = min(int(math.floor(float(u) * len(self.options))), len(self.options) - 1)
        return self.options[max(i, 0)]

    def neighbor(self, value, rng: np.random.Generator):
        if len(self.options) == 1:
            return value
        others = [o for o in self.options if o != value]
        return others[int(rng.integers(len(others)))]

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))


Dimension = Int | Float | Choice


# --------------------------------------------------------------------------- architecture


def _canon_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _freeze(value):
    """Hashable form of a genome value: lists become tuples (recursively)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        raise InvalidGenomeError("genome values must be JSON scalars or lists, not tables")
    return value


def _thaw(value):
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


#: value types stored as they are (the fast path of ``_freeze_genome``: no conversion needed)
_PLAIN = frozenset((str, int, float, bool, type(None)))


def _freeze_genome(genome) -> tuple:
    if not isinstance(genome, Mapping):
        raise InvalidGenomeError(f"a genome must be a mapping of dimension names to values, got {type(genome).__name__}")
    items = []
    for k, v in genome.items():
        if type(v) not in _PLAIN:
            v = _freeze(_jsonable(v))
        items.append((k if type(k) is str else str(k), v))
    items.sort()
    return tuple(items)


@attrs.frozen
class Architecture:
    """An immutable architecture: space name + canonical genome, hashable, JSON round trip.

    Build one through its space (``space.make(genome)``) so that the genome is validated
    and canonical; the constructor itself only freezes the mapping.
    """

    space: str
    _items: tuple = attrs.field(alias="genome", converter=_freeze_genome)
    _key: str = attrs.field(init=False, eq=False, repr=False, default="")

    @property
    def genome(self) -> dict:
        return {k: (_thaw(v) if type(v) is tuple else v) for k, v in self._items}

    def __getitem__(self, name):
        for k, v in self._items:
            if k == name:
                return _thaw(v) if type(v) is tuple else v
        raise KeyError(name)

    @property
    def key(self) -> str:
        """Stable identifier: hash of the canonical JSON of space and genome (computed on
        first use: searches build many candidates whose key they never need)."""
        key = self._key
        if not key:
            payload = _canon_json({"space": self.space, "genome": self.genome})
            key = hashlib.sha256(payload.encode()).hexdigest()[:16]
            object.__setattr__(self, "_key", key)
        return key

    def to_json(self) -> dict:
        return {"space": self.space, "genome": self.genome}

    @classmethod
    def from_json(cls, data) -> "Architecture":
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping) or "genome" not in data:
            raise InvalidGenomeError("architecture JSON needs a 'genome' mapping (and a 'space' name)")
        return cls(data.get("space", ""), data["genome"])

    def __repr__(self) -> str:
        return f"Architecture({self.space!r}, key={self.key})"


# --------------------------------------------------------------------------- search space


class SearchSpace:
    """Base class of search spaces.

    Subclasses are attrs classes (their fields are the space's parameters) that set
    ``name`` and implement :meth:`dimensions` and the views.  Constraints between
    dimensions go into :meth:`check` (return a message for an invalid genome) and
    :meth:`canonicalize` (normalize inactive dimensions); :meth:`repair` turns a decoded
    unit-cube point into a valid genome.
    """

    name: ClassVar[str] = "space"
    #: how many rejection-sampling tries ``sample`` makes before giving up
    max_tries: ClassVar[int] = 1000

    # ---- declaration ------------------------------------------------------------
    def dimensions(self) -> Sequence[Dimension]:
        raise NotImplementedError(f"{type(self).__name__} must declare its dimensions()")

    def _dims(self) -> dict[str, Dimension]:
        # a slotted space has no __dict__: it rebuilds the table each time instead of caching it
        cache = self.__dict__.get("_dims_cache") if hasattr(self, "__dict__") else None
        if cache is None:
            cache = {d.name: d for d in self.dimensions()}
            try:
                object.__setattr__(self, "_dims_cache", cache)
            except (AttributeError, TypeError):
                pass
        return cache

    def dimension(self, name: str) -> Dimension:
        return self._dims()[name]

    @property
    def num_dimensions(self) -> int:
        return len(self._dims())

    def check(self, genome: dict) -> str | None:
        """Space-specific validity rule; return an error message or None."""
        return None

    def is_active(self, genome: dict, name: str) -> bool:
        """Whether dimension ``name`` matters for this genome (inactive ones are normalized)."""
        return True

    def canonicalize(self, genome: dict) -> dict:
        """Set every inactive dimension to its default so equal networks share one key."""
        out = dict(genome)
        for name, dim in self._dims().items():
            if not self.is_active(out, name):
                out[name] = dim.default()
        return out

    def canonical(self, arch: Architecture) -> str:
        """An identifier shared by every architecture of this space that computes the same
        network (isomorphic cells, dead edges); searches use it to spend no query on an
        equivalent of one already seen.  Default: the key (no equivalences known)."""
        return arch.key

    def repair(self, genome: dict, rng: np.random.Generator | None = None) -> dict:
        """Make a decoded genome valid; the default accepts only genomes that pass ``check``."""
        msg = self.check(genome)
        if msg:
            raise InvalidGenomeError(f"{self.name}: {msg}")
        return genome

    # ---- construction and validation ---------------------------------------------
    def validate(self, genome: Mapping) -> dict:
        """Return the canonical genome or raise :class:`InvalidGenomeError` naming the problem."""
        if not isinstance(genome, Mapping):
            raise InvalidGenomeError(f"{self.name}: a genome must be a mapping, got {type(genome).__name__}")
        dims = self._dims()
        extra = [k for k in genome if k not in dims]
        if extra:
            raise InvalidGenomeError(f"{self.name}: unknown dimension {extra[0]!r}; valid: {', '.join(dims)}")
        missing = [k for k in dims if k not in genome]
        if missing:
            raise InvalidGenomeError(f"{self.name}: genome lacks dimension {missing[0]!r}")
        g = {k: _jsonable(genome[k]) for k in dims}
        for name, dim in dims.items():
            if not dim.contains(g[name]):
                raise InvalidGenomeError(
                    f"{self.name}: dimension {name!r} = {g[name]!r} is not allowed ({dim.describe()})"
                )
        g = self.canonicalize(g)
        msg = self.check(g)
        if msg:
            raise InvalidGenomeError(f"{self.name}: {msg}")
        return g

    def make(self, genome: Mapping) -> Architecture:
        return Architecture(self.name, self.validate(genome))

    # ---- generic operators ---------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        dims = self._dims()
        for _ in range(self.max_tries):
            g = self.canonicalize({n: d.sample(rng) for n, d in dims.items()})
            if self.check(g) is None:
                return Architecture(self.name, g)
        raise InvalidGenomeError(f"{self.name}: no valid genome found in {self.max_tries} random draws")

    def mutate(self, arch: Architecture, rng: np.random.Generator, rate: float | None = None) -> Architecture:
        """Change each active dimension with probability ``rate`` (default 1/#dims); at
        least one dimension changes and the result is valid and different."""
        dims = self._dims()
        names = list(dims)
        p = rate if rate is not None else 1.0 / max(len(names), 1)
        base = arch.genome
        for _ in range(self.max_tries):
            g = dict(base)
            changed = False
            for n in names:
                if rng.random() < p:
                    g[n] = dims[n].neighbor(g[n], rng)
                    changed = True
            if not changed:
                n = names[int(rng.integers(len(names)))]
                g[n] = dims[n].neighbor(g[n], rng)
            g = self.canonicalize(g)
            if g != self.canonicalize(base) and self.check(g) is None:
                return Architecture(self.name, g)
        return arch

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Uniform crossover; falls back to a parent when no valid child is found."""
        ga, gb = a.genome, b.genome
        for _ in range(100):
            g = self.canonicalize({n: (ga[n] if rng.random() < 0.5 else gb[n]) for n in self._dims()})
            if self.check(g) is None:
                return Architecture(self.name, g)
        return a if rng.random() < 0.5 else b

    def neighbors(self, arch: Architecture) -> list[Architecture]:
        """Every valid architecture one dimension away (used by local search)."""
        out, seen = [], {arch.key}
        g0 = arch.genome
        for n, d in self._dims().items():
            if not self.is_active(g0, n):
                continue
            values = d.values() if isinstance(d, Int) else (
                list(d.options) if isinstance(d, Choice) else
                ([d.from_unit((i + 0.5) / d.size) for i in range(d.size)] if d.size else [])
            )
            for v in values:
                if v == g0[n]:
                    continue
                g = self.canonicalize({**g0, n: v})
                if self.check(g) is None:
                    a = Architecture(self.name, g)
                    if a.key not in seen:
                        seen.add(a.key)
                        out.append(a)
        return out

    def to_vector(self, arch: Architecture) -> np.ndarray:
        g = arch.genome
        return np.array([d.to_unit(g[n]) for n, d in self._dims().items()], dtype=float)

    def from_vector(self, u, rng: np.random.Generator | None = None) -> Architecture:
        u = np.asarray(u, dtype=float).ravel()
        dims = self._dims()
        if u.shape[0] != len(dims):
            raise InvalidGenomeError(f"{self.name}: vector has {u.shape[0]} entries, space has {len(dims)} dimensions")
        g = self.canonicalize({n: d.from_unit(x) for (n, d), x in zip(dims.items(), u)})
        g = self.canonicalize(self.repair(g, rng))
        return Architecture(self.name, g)

    def cardinality(self) -> float:
        """Number of genomes in the box (ignoring constraints); inf with continuous dims."""
        total = 1.0
        for d in self._dims().values():
            if d.size is None:
                return math.inf
            total *= d.size
        return total

    # ---- views ----------------------------------------------------------------------
    def tokens(self, arch: Architecture) -> list[str]:
        """Canonical token sequence (one token per layer / per edge); default ``dim=value``."""
        return [f"{n}={v}" for n, v in arch.genome.items()]

    def graph(self, arch: Architecture):
        """networkx DiGraph (nodes = feature maps, edges carry ``op``); default: a path of tokens."""
        import networkx as nx

        g = nx.DiGraph()
        toks = self.tokens(arch)
        g.add_node(0, label="input")
        for i, t in enumerate(toks):
            g.add_node(i + 1, label=t)
            g.add_edge(i, i + 1, op=t)
        return g

    def build(self, arch: Architecture, task):
        raise NotImplementedError(f"space {self.name!r} cannot build networks")

    def metrics(self, arch: Architecture, model, task) -> dict:
        """Extra metrics of a trained ``model`` of ``arch`` that the ``train`` evaluator
        records with the evaluation (and that override its own ``params``/``flops`` when
        given): e.g. the weight storage in bits of a quantized network.  Nothing by default."""
        return {}

    def cost(self, arch: Architecture, task) -> dict:
        """``params`` and ``flops`` of the built network for one input of the task."""
        from .metrics import count_flops, count_params

        model = self.build(arch, task)
        return {"params": count_params(model), "flops": count_flops(model, task.input_shape)}

    def to_string(self, arch: Architecture) -> str:
        return json.dumps(arch.genome, sort_keys=True, separators=(",", ":"))

    def from_string(self, text: str) -> Architecture:
        try:
            genome = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidGenomeError(f"{self.name}: cannot parse {text!r}: {exc.msg}") from None
        return self.make(genome)

    def describe(self) -> list[tuple[str, str]]:
        return [(n, d.describe()) for n, d in self._dims().items()]
