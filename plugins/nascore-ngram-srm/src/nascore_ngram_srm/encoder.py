"""The N-gram encoder of Section 3 of the N-gram/SRM paper (after DeepArchitect).

Steps (1)-(2): every architecture becomes its token sequence (the space's ``tokens``
view: one token per layer for chains, one op per edge for cells; with ``positions`` each
token carries its index, so a cell's op says which edge it is on).  Step (3): the
vocabulary is every n-gram of length ``min_n..n`` seen in ``fit``.  Steps (4)-(5): the
feature matrix has one row per architecture and one column per n-gram, 1 where the
n-gram occurs (``binary``, the paper's choice) or its count; rows can be normalized,
which the paper (Figure 2) found to lower the variance of the predictions.

The transform is vectorized over the whole batch: token ids are concatenated, n-gram
``m`` is identified by the pair (id of its (m-1)-gram prefix, id of its last token), and
each length is one ``searchsorted`` into a table learned in ``fit`` (exact; no hashing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import numpy as np
from sklearn.base import BaseEstimator

from nascore.api import Architecture, SearchSpace
from nascore.api import ConfigError
from nascore.api import in_range, one_of, param

BOS, EOS = "<s>", "</s>"
_KIND = re.compile(r"[A-Za-z_]+")


def token_type(token: str) -> str:
    """The layer kind of a token: its leading letters (``C3-64`` -> ``C``, ``FC-128`` -> ``FC``,
    ``avg_pool_3x3`` -> ``avg_pool``)."""
    m = _KIND.match(token)
    return m.group(0).strip("_") if m else token


def has_tokens_view(space) -> bool:
    """Whether ``space`` defines its own ``tokens`` view (not the generic ``dim=value`` one)."""
    method = getattr(type(space), "tokens", None)
    return method is not None and method is not SearchSpace.tokens


def _is_token_list(item) -> bool:
    return isinstance(item, Sequence) and not isinstance(item, (str, Architecture)) and all(
        isinstance(t, str) for t in item)


@attrs.define(slots=False, eq=False)
class NGramEncoder(BaseEstimator):
    """N-gram features of token sequences (paper Section 3, steps 1-5): sparse CSR,
    binary or counts, optional row normalization."""

    conformance = {"space": "metaqnn"}

    n: int = param(3, help="longest n-gram (the paper's N)", validator=in_range(1))
    min_n: int = param(1, help="shortest n-gram; 1 gives all grams 1..n, n gives exactly n-grams",
                       validator=in_range(1))
    binary: bool = param(True, help="1 where an n-gram occurs (paper step 5); false: counts")
    normalize: str = param("none", help="row normalization: none, l1, l2 or max (paper Figure 2)",
                           validator=one_of("none", "l1", "l2", "max"))
    granularity: str = param("token", help="'token': whole tokens (C3-64); 'type': layer kind only (C, P, FC)",
                             validator=one_of("token", "type"))
    positions: bool = param(False, help="tag each token with its index (op@2): which edge an op is on for cell "
                                        "spaces whose tokens follow a fixed edge order (nb201, darts)")
    boundaries: bool = param(False, help="pad each sequence with <s> and </s> so grams see the ends")
    min_df: int = param(1, help="keep n-grams found in at least this many training architectures",
                        validator=in_range(1))

    def __attrs_post_init__(self):
        if self.min_n > self.n:
            raise ConfigError(f"ngram: min_n ({self.min_n}) must not exceed n ({self.n})")

    # ---- token sequences ---------------------------------------------------------------
    def _sequences(self, items) -> list[list[str]]:
        items = list(items)
        if items and all(_is_token_list(x) for x in items):
            seqs = [list(x) for x in items]
        else:
            bad = [x for x in items if not isinstance(x, Architecture)]
            if bad:
                raise ConfigError(f"ngram encodes Architecture objects or token lists, got {type(bad[0]).__name__}")
            seqs = self._tokens_of(items)
        if self.granularity == "type":
            seqs = [[token_type(t) for t in s] for s in seqs]
        if self.positions:
            seqs = [[f"{t}@{i}" for i, t in enumerate(s)] for s in seqs]
        if self.boundaries:
            seqs = [[BOS, *s, EOS] for s in seqs]
        return seqs

    def set_space(self, space: SearchSpace) -> "NGramEncoder":
        """Bind the space whose ``tokens`` view encodes the architectures."""
        self.space = space
        return self

    def _space(self, archs: list[Architecture]) -> SearchSpace | None:
        space = getattr(self, "space", None)
        if space is None and archs:
            from nascore import create

            space = self.space = create("search_space", archs[0].space)
        return space

    def _tokens_of(self, archs: list[Architecture]) -> list[list[str]]:
        space = self._space(archs)
        if space is None:
            return []
        if not has_tokens_view(space):
            raise ConfigError(f"space {space.name!r} has no tokens view; the ngram encoder needs a space that "
                              "defines tokens(arch) (e.g. metaqnn, resnet-chain, nb201)")
        return [space.tokens(a) for a in archs]

    @staticmethod
    def _flatten(seqs, vocab: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids (0 = unknown), row of each position, and positions left in its row."""
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        ids = np.fromiter((vocab.get(t, 0) for s in seqs for t in s), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(seqs)), lengths)
        ends = np.repeat(np.cumsum(lengths), lengths)
        left = ends - np.arange(len(ids))  # tokens from this position to the end of its row
        return ids, rows, left

    # ---- fit / transform -------------------------------------------------------------------
    def fit(self, archs, y=None):
        seqs = self._sequences(archs)
        if not seqs:
            raise ConfigError("ngram: cannot fit on an empty list of architectures")
        tokens = sorted({t for s in seqs for t in s})
        self.vocabulary_tokens_ = {t: i + 1 for i, t in enumerate(tokens)}
        ids, rows, left = self._flatten(seqs, self.vocabulary_tokens_)
        base = len(tokens) + 1
        self.tables_, self.columns_, names = [], [], []
        prev = np.full(len(ids), -1, dtype=np.int64)
        n_features = 0
        for m in range(1, self.n + 1):
            start = np.flatnonzero(left >= m) if m == 1 else np.flatnonzero((left >= m) & (prev >= 0))
            pair = ids[start] if m == 1 else prev[start] * base + ids[start + m - 1]
            table, code = np.unique(pair, return_inverse=True)
            prev = np.full(len(ids), -1, dtype=np.int64)
            prev[start] = code
            self.tables_.append(table)
            gram_names = self._gram_names(table, names[-1] if names else None, tokens, base)
            names.append(gram_names)
            cols = np.full(len(table), -1, dtype=np.int64)
            if m >= self.min_n:
                df = np.bincount(np.unique(rows[start] * len(table) + code) % len(table), minlength=len(table))
                keep = np.flatnonzero(df >= self.min_df)
                cols[keep] = n_features + np.arange(len(keep))
                n_features += len(keep)
            self.columns_.append(cols)
        self.feature_names_ = np.array([nm for m, cols in enumerate(self.columns_) for nm, c in zip(names[m], cols)
                                        if c >= 0], dtype=object)
        self.n_features_out_ = n_features
        return self

    @staticmethod
    def _gram_names(table, prefix_names, tokens, base) -> list[str]:
        if prefix_names is None:
            return [tokens[i - 1] for i in table]
        return [f"{prefix_names[p]} {tokens[t - 1]}" for p, t in zip(table // base, table % base)]

    def transform(self, archs):
        if not hasattr(self, "tables_"):  # scikit-learn convention: learned attributes exist only after fit
            raise ConfigError("ngram encoder is not fitted: call fit(archs) first")
        import scipy.sparse as sp

        seqs = self._sequences(archs)
        ids, rows, left = self._flatten(seqs, self.vocabulary_tokens_)
        base = len(self.vocabulary_tokens_) + 1
        prev = np.where(ids > 0, ids, -1)  # unigram codes are looked up below like longer grams
        out_rows, out_cols = [], []
        for m, (table, cols) in enumerate(zip(self.tables_, self.columns_), start=1):
            start = np.flatnonzero((left >= m) & (prev >= 0))
            if m == 1:
                pair = ids[start]
            else:
                nxt = ids[start + m - 1]
                start, pair = start[nxt > 0], prev[start][nxt > 0] * base + nxt[nxt > 0]
            if not len(table):
                start, pair = start[:0], pair[:0]
            pos = np.minimum(np.searchsorted(table, pair), max(len(table) - 1, 0))
            found = table[pos] == pair if len(table) else np.zeros(0, bool)
            start, code = start[found], pos[found]
            prev = np.full(len(ids), -1, dtype=np.int64)
            prev[start] = code
            col = cols[code]
            out_rows.append(rows[start][col >= 0])
            out_cols.append(col[col >= 0])
        r, c = np.concatenate(out_rows), np.concatenate(out_cols)
        X = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(seqs), self.n_features_out_))
        X.sum_duplicates()
        if self.binary:
            X.data[:] = 1.0
        return self._normalized(X)

    def _normalized(self, X):
        if self.normalize == "none":
            return X
        from sklearn.preprocessing import normalize

        return normalize(X, norm=self.normalize, copy=False)

    def fit_transform(self, archs, y=None):
        return self.fit(archs, y).transform(archs)

    def get_feature_names_out(self, input_features=None):
        if not hasattr(self, "feature_names_"):  # scikit-learn convention: learned attributes exist only after fit
            raise ConfigError("ngram encoder is not fitted: call fit(archs) first")
        return self.feature_names_.copy()


def ngram_table(sequences, ns, *, cumulative: bool = True, granularity: str = "token") -> list[dict]:
    """Table 1 of the paper: feature-matrix shape and sparsity for each N.

    ``cumulative`` counts all grams of length 1..N (else exactly N); sparsity is the
    fraction of zero entries of the binary matrix."""
    rows = []
    for n in ns:
        enc = NGramEncoder(n=n, min_n=1 if cumulative else n, granularity=granularity)
        X = enc.fit_transform(sequences)
        size = X.shape[0] * X.shape[1]
        rows.append({"n": n, "shape": list(X.shape), "nnz": int(X.nnz),
                     "sparsity": 1.0 - X.nnz / size if size else 1.0})
    return rows
