"""The ``ngram`` encoder: n-gram counts on hand-written chains, options, errors."""

from __future__ import annotations

import pickle
from collections import Counter

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

import nascore
from nascore.arch import Int, SearchSpace
from nascore.errors import ConfigError
from nascore.testing import check_component
from nascore_ngram_srm.encoder import NGramEncoder, ngram_table, token_type

CHAINS = [["C3-64", "P2", "C3-64", "P2", "FC-128"], ["C3-64", "P2", "FC-128"]]


def as_dicts(enc, X):
    names = enc.get_feature_names_out()
    dense = X.toarray()
    return [{names[j]: dense[i, j] for j in np.flatnonzero(dense[i])} for i in range(dense.shape[0])]


def test_conformance():
    check_component("encoder", "ngram")


def test_counts_on_hand_written_chains():
    enc = NGramEncoder(n=2, binary=False)
    X = enc.fit_transform(CHAINS)
    assert X.format == "csr" and X.shape == (2, 6)
    assert as_dicts(enc, X) == [
        {"C3-64": 2, "P2": 2, "FC-128": 1, "C3-64 P2": 2, "P2 C3-64": 1, "P2 FC-128": 1},
        {"C3-64": 1, "P2": 1, "FC-128": 1, "C3-64 P2": 1, "P2 FC-128": 1},
    ]


def test_binary_exact_trigrams_and_boundaries():
    enc = NGramEncoder(n=3, min_n=3)
    assert as_dicts(enc, enc.fit_transform(CHAINS)) == [
        {"C3-64 P2 C3-64": 1, "P2 C3-64 P2": 1, "C3-64 P2 FC-128": 1}, {"C3-64 P2 FC-128": 1}]
    enc = NGramEncoder(n=2, min_n=2, boundaries=True)
    rows = as_dicts(enc, enc.fit_transform(CHAINS))
    assert rows[1] == {"<s> C3-64": 1, "C3-64 P2": 1, "P2 FC-128": 1, "FC-128 </s>": 1}


def test_type_granularity_min_df_and_unknown_tokens():
    enc = NGramEncoder(n=2, granularity="type", binary=False)
    assert as_dicts(enc, enc.fit_transform(CHAINS))[1] == {"C": 1, "P": 1, "FC": 1, "C P": 1, "P FC": 1}
    assert token_type("nor_conv_3x3") == "nor_conv" and token_type("GAP") == "GAP"
    enc = NGramEncoder(n=2, min_df=2).fit(CHAINS)
    assert sorted(enc.get_feature_names_out()) == sorted(["C3-64", "P2", "FC-128", "C3-64 P2", "P2 FC-128"])
    # grams through a token never seen in fit are dropped, the rest still count
    row = as_dicts(enc, enc.transform([["C3-64", "P2", "C5-32", "P2", "FC-128"]]))[0]
    assert row == {"C3-64": 1, "P2": 1, "FC-128": 1, "C3-64 P2": 1, "P2 FC-128": 1}


def test_l2_normalization_gives_unit_rows():
    X = NGramEncoder(n=3, binary=False, normalize="l2").fit_transform(CHAINS)
    assert np.allclose(np.sqrt(X.multiply(X).sum(axis=1)).A.ravel(), 1.0)
    X = NGramEncoder(n=3, normalize="max").fit_transform(CHAINS)
    assert np.allclose(X.max(axis=1).toarray().ravel(), 1.0)


def test_vectorized_transform_matches_brute_force():
    space = nascore.create("search_space", "metaqnn")
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(200)]
    enc = NGramEncoder(n=4, min_n=2, binary=False).set_space(space).fit(archs[:120])
    X = enc.transform(archs).toarray()
    col = {name: j for j, name in enumerate(enc.get_feature_names_out())}
    for i, a in enumerate(archs):
        toks = space.tokens(a)
        expect = Counter(" ".join(toks[s:s + m]) for m in range(2, 5) for s in range(len(toks) - m + 1))
        expect = {k: v for k, v in expect.items() if k in col}
        assert {k: X[i, j] for k, j in col.items() if X[i, j]} == expect


def test_works_on_nb201_tokens_and_pickles():
    space = nascore.create("search_space", "nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(50)]
    enc = nascore.create("encoder", "ngram", n=2).set_space(space)
    X = enc.fit_transform(archs)
    assert X.shape[0] == 50 and 5 <= X.shape[1] <= 5 + 25
    again = pickle.loads(pickle.dumps(enc))
    assert (again.transform(archs) != X).nnz == 0


@attrs.define(slots=False)
class NoTokensSpace(SearchSpace):
    name = "no-tokens"

    def dimensions(self):
        return [Int("x", 0, 3)]


def test_errors():
    with pytest.raises(ConfigError, match="n must be in"):
        nascore.create("encoder", "ngram", n=0)
    with pytest.raises(ConfigError, match="min_n"):
        NGramEncoder(n=2, min_n=3)
    with pytest.raises(ConfigError, match="empty"):
        NGramEncoder().fit([])
    with pytest.raises(ConfigError, match="not fitted"):
        NGramEncoder().transform(CHAINS)
    space = NoTokensSpace()
    with pytest.raises(ConfigError, match="no tokens view"):
        NGramEncoder().set_space(space).fit([space.sample(np.random.default_rng(0))])
    with pytest.raises(ConfigError, match="Architecture objects or token lists"):
        NGramEncoder().fit(["C3-64 P2"])


def test_table_and_cli():
    space = nascore.create("search_space", "metaqnn")
    rng = np.random.default_rng(0)
    seqs = [space.tokens(space.sample(rng)) for _ in range(100)]
    rows = ngram_table(seqs, [2, 3, 4])
    assert [r["shape"][0] for r in rows] == [100] * 3
    assert rows[0]["shape"][1] < rows[1]["shape"][1] < rows[2]["shape"][1]
    assert all(0.9 < r["sparsity"] < 1 for r in rows)
    from nascore_ngram_srm.cli import ngram

    res = CliRunner().invoke(ngram, ["table", "--archs", "100", "--n", "2-4", "--json"])
    assert res.exit_code == 0, res.output
    import json

    assert json.loads(res.output)["rows"] == rows
    res = CliRunner().invoke(ngram, ["table", "--n", "0"])
    assert res.exit_code == 2 and "--n needs values >= 1" in res.output


def test_positions_tag_each_token_with_its_edge():
    seqs = [["conv", "skip", "conv"], ["skip", "conv", "conv"]]
    enc = NGramEncoder(n=2, positions=True, binary=False).fit(seqs)
    names = list(enc.get_feature_names_out())
    assert names == ["conv@0", "conv@1", "conv@2", "skip@0", "skip@1",
                     "conv@0 skip@1", "conv@1 conv@2", "skip@0 conv@1", "skip@1 conv@2"]
    X = enc.transform(seqs + [["conv", "conv", "conv"]]).toarray()
    assert X[0].tolist() == [1, 0, 1, 0, 1, 1, 0, 0, 1]
    assert X[2].tolist() == [1, 1, 1, 0, 0, 0, 1, 0, 0]  # conv@0 conv@1 is unseen: dropped
    # on nb201 positional 1-grams are the one-hot op of each of the 6 edges
    space = nascore.create("search_space", "nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(200)]
    X = NGramEncoder(n=1, positions=True).set_space(space).fit_transform(archs)
    assert X.shape == (200, 30) and np.all(np.asarray(X.sum(axis=1)).ravel() == 6)
