"""The token view of a space, the transformer VAE (Eqs. 2-8) and the learned distribution (Eq. 1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import nascore
from nascore.errors import ConfigError, InvalidGenomeError
from nascore_tnas.distribution import EmptyHistoryError, LearnedDistribution, training_weights
from nascore_tnas.vae import ArchitectureVAE, TransformerBlock
from nascore_tnas.vocabulary import ArchitectureVocabulary
from tnas_helpers import MixedSpace, PairSpace, TinySpace


def test_vocabulary_of_nb201_shares_tokens_across_edges():
    vocab = ArchitectureVocabulary(nascore.create("search_space", "nb201"))
    assert (vocab.length, vocab.size) == (6, 5)
    assert vocab.mask.all()
    arch = nascore.create("search_space", "nb201").sample(np.random.default_rng(0))
    ids = vocab.encode([arch])
    assert vocab.decode(ids[0]) == arch


def test_vocabulary_masks_options_per_position_on_darts():
    space = nascore.create("search_space", "darts")
    vocab = ArchitectureVocabulary(space)
    assert vocab.length == 2 * 4 * 4  # 2 cells x 4 nodes x 2 edges x (input, op)
    for p, name in enumerate(vocab.names):
        allowed = {vocab.tokens[t] for t in np.flatnonzero(vocab.mask[p])}
        if "_in" in name:  # node j reads one of the nodes 0..j-1
            j = int(name.split("node")[1].split("_")[0])
            assert allowed == {str(i) for i in range(j)}
        else:
            assert allowed == {f'"{op}"' for op in space.op_names}


def test_vocabulary_refuses_continuous_dimensions_and_bad_values():
    with pytest.raises(ConfigError, match="non-choice dimension 'lr'"):
        ArchitectureVocabulary(MixedSpace())
    vocab = ArchitectureVocabulary(TinySpace())
    with pytest.raises(InvalidGenomeError, match="not an option of 'p0'"):
        vocab.encode([{"p0": "c", "p1": "a", "p2": "a", "p3": "a"}])
    with pytest.raises(InvalidGenomeError, match="not allowed at position 'p0'"):
        vocab.genome([2, 0, 0, 0])


def test_transformer_block_is_permutation_equivariant():
    """Self-attention without positional terms (Eqs. 3-8) commutes with permuting positions."""
    torch.manual_seed(0)
    block = TransformerBlock(16, 4, 32).eval()
    h = torch.randn(3, 5, 16)
    perm = torch.tensor([4, 2, 0, 1, 3])
    assert torch.allclose(block(h)[:, perm], block(h[:, perm]), atol=1e-5)


def test_loss_is_reconstruction_plus_beta_kl():
    torch.manual_seed(0)
    vae = ArchitectureVAE(torch.ones(4, 3, dtype=torch.bool), d_model=16, latent_dim=4)
    ids = torch.randint(0, 3, (8, 4))
    total0, rec0, kl0 = vae.loss(ids, beta=0.0, generator=torch.Generator().manual_seed(1))
    total1, rec1, kl1 = vae.loss(ids, beta=2.0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(total0, rec0) and torch.allclose(rec0, rec1)
    assert torch.allclose(total1, rec1 + 2.0 * kl1, atol=1e-5)
    # an untrained decoder is close to uniform: about log(3) nats per position
    assert abs(float(rec0) - 4 * math.log(3)) < 1.5
    # the KL term is the closed form of KL(N(mu, sigma^2) || N(0, 1)) summed over the latent
    # dimensions, batch-averaged; torch.distributions computes it independently
    mu, logvar = vae.encode(ids)
    q, prior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0.0, 1.0)
    expected = torch.distributions.kl_divergence(q, prior).sum(dim=1).mean()
    assert torch.allclose(kl0, expected, atol=1e-5) and torch.allclose(kl1, kl0)


def test_masked_logits_only_ever_sample_allowed_tokens():
    mask = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    vae = ArchitectureVAE(mask, d_model=8, latent_dim=2)
    ids = vae.sample(2000, generator=torch.Generator().manual_seed(0))
    assert mask[torch.arange(3), ids].all()
    assert set(ids[:, 0].tolist()) == {0, 3} and set(ids[:, 1].tolist()) == {1, 2}


def test_vae_round_trip_reaches_near_perfect_reconstruction():
    space = TinySpace()
    vocab = ArchitectureVocabulary(space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(24)]
    dist = LearnedDistribution(vocab, d_model=32, latent_dim=8, beta=0.01, lr=3e-3, steps=600,
                               batch_size=24, top_fraction=1.0, seed=0)
    assert dist.reconstruction_accuracy(archs) < 0.8
    dist.update(archs, [0.0] * len(archs))
    assert dist.reconstruction_accuracy(archs) >= 0.97


def test_decoded_samples_are_always_valid_genomes():
    pair = PairSpace()
    dist = LearnedDistribution(ArchitectureVocabulary(pair), d_model=8, latent_dim=2, seed=3)
    for arch in dist.sample(200):
        pair.validate(arch.genome)  # the cross-dimension rule holds: rejected rows are redrawn
    darts = nascore.create("search_space", "darts")
    dist = LearnedDistribution(ArchitectureVocabulary(darts), d_model=16, latent_dim=4, seed=0)
    samples = dist.sample(50)
    assert len(samples) == 50
    for arch in samples:
        assert darts.make(arch.genome) == arch


def test_training_weights_known_answers():
    m = [5.0, 1.0, 3.0, 4.0, 2.0]
    w = training_weights(m, top_fraction=0.4, weighting="top")
    assert np.allclose(w, [0.5, 0, 0, 0.5, 0])
    w = training_weights(m, top_fraction=0.2, weighting="top", min_train=3)
    assert np.allclose(w, [1 / 3, 0, 1 / 3, 1 / 3, 0])
    w = training_weights(m, top_fraction=0.2, weighting="rank")  # exp(-rank / 1)
    ranks = np.array([0, 4, 2, 1, 3])
    assert np.allclose(w, np.exp(-ranks) / np.exp(-ranks).sum())
    with pytest.raises(EmptyHistoryError, match="at least one evaluated architecture"):
        training_weights([], 0.2, "top")


def test_learned_distribution_shifts_toward_high_metric_architectures():
    """Synthetic objective: the number of positions holding token "a".  Uniform draws
    score (1/2 + 3 * 1/3) = 1.5 on average; after rounds of Eq. 1 on the top 20%, p_theta's
    draws must score far higher."""
    space = TinySpace(length=4)
    vocab = ArchitectureVocabulary(space)
    score = lambda a: sum(v == "a" for v in a.genome.values())  # noqa: E731
    all_archs = [space.make(dict(zip(vocab.names, combo)))
                 for combo in itertools.product("ab", "abc", "abc", "abc")]
    assert np.mean([score(a) for a in all_archs]) == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    history = [space.sample(rng) for _ in range(40)]
    dist = LearnedDistribution(vocab, d_model=16, latent_dim=4, beta=0.5, steps=60, top_fraction=0.2, seed=0)
    for _ in range(4):
        dist.update(history, [score(a) for a in history])
        history += dist.sample(20)
    drawn = dist.sample(300)
    assert np.mean([score(a) for a in drawn]) > 3.0


def test_grouped_training_weights_cut_within_each_round():
    """Three weight-sharing rounds of ten paths.  Round 1 has two equal best paths (z-score
    2.0 each), round 2 one far-out best (z = 3.0), round 3 a linear spread (best z =
    4.5 / 2.87 = 1.57).  Pooling z-scores and cutting the top 10% of 30 (three) keeps
    round 1's two and round 2's one, never round 3; the within-round cut keeps each
    round's best: one of round 1's pair (the first), round 2's, round 3's."""
    r1 = [0.0] * 8 + [10.0, 10.0]
    r2 = [0.0] * 9 + [10.0]
    r3 = [float(i) for i in range(10)]
    z = np.concatenate([(np.array(r) - np.mean(r)) / np.std(r) for r in (r1, r2, r3)])
    assert np.allclose(sorted(z)[-3:], [2.0, 2.0, 3.0])
    pooled = training_weights(z, top_fraction=0.1, weighting="top", min_train=1)
    assert set(np.flatnonzero(pooled)) == {8, 9, 19}
    groups = [0] * 10 + [1] * 10 + [2] * 10
    raw = r1 + r2 + r3
    w = training_weights(raw, top_fraction=0.1, weighting="top", min_train=1, groups=groups)
    assert set(np.flatnonzero(w)) == {8, 19, 29} and np.allclose(w[[8, 19, 29]], 1 / 3)
    # an increasing transformation of one round (z-scoring it, shifting it) changes nothing
    shifted = r1 + [100.0 + 5 * v for v in r2] + r3
    assert np.array_equal(training_weights(shifted, 0.1, "top", 1, groups), w)
    assert np.allclose(training_weights(z, 0.1, "rank", 1, groups), training_weights(raw, 0.1, "rank", 1, groups))
    # min_train fills with the next quantile (q = 0.1), the latest round first: round 3's
    # 8 (index 28), then round 2's first 0 (index 10) before round 1's second 10 (index 9)
    w5 = training_weights(raw, top_fraction=0.1, weighting="top", min_train=5, groups=groups)
    assert set(np.flatnonzero(w5)) == {8, 19, 29, 28, 10}
    # one group is the ungrouped rule
    m = [5.0, 1.0, 3.0, 4.0, 2.0]
    for weighting, tf, k in (("top", 0.4, 1), ("top", 0.2, 3), ("rank", 0.2, 1)):
        assert np.allclose(training_weights(m, tf, weighting, k, groups=[7] * 5), training_weights(m, tf, weighting, k))


def test_weight_sharing_rounds_are_told_as_groups():
    """score_round tells raw supernet accuracies labelled by the round; the sampler refuses
    to mix labelled and unlabelled results."""
    from nascore.errors import ConfigError
    from nascore.results import OK, Evaluation
    from nascore_tnas.sampler import TNASSampler
    from nascore_tnas.weight_sharing import score_round

    space = nascore.create("search_space", "nb201", C=4, N=1)

    class FakeTrainer:
        step_count = 40

        def valid_indices(self, n, rng):
            return None

        def accuracy(self, arch, idx):
            return float(sum(space.to_path(arch)))

    sampler = TNASSampler(d_model=16, vae_layers=1, latent_dim=4, vae_steps=2, retrain_every=100).setup(
        space, np.random.default_rng(0))
    paths = [space.sample(np.random.default_rng(i)) for i in range(4)]
    accs = score_round(FakeTrainer(), sampler, paths, np.random.default_rng(0), None)
    assert accs == [float(sum(space.to_path(a))) for a in paths]
    assert [(m, g) for _, m, g in sampler.history] == [(a, 40) for a in accs]
    with pytest.raises(ConfigError, match="cannot be mixed"):
        sampler.tell([Evaluation(paths[0].key, paths[0].space, paths[0].genome, OK, {"valid_accuracy": 1.0})])


def test_a_small_vae_trains_and_samples_on_one_thread_whatever_the_callers_count():
    """The VAE's kernels are too small to gain from intra-op threads (which spin on a busy
    machine): update and sampling run on one thread and restore the caller's count, so
    the weights and samples no longer depend on the machine's core count (one and two
    threads differ by ~1e-3 after a few Adam steps without it)."""
    space = nascore.create("search_space", "nb201")
    vocab = ArchitectureVocabulary(space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    metrics = rng.random(30)
    prev = torch.get_num_threads()
    try:
        runs = []
        for threads in (2, 1):
            torch.set_num_threads(threads)
            dist = LearnedDistribution(vocab, d_model=16, latent_dim=4, steps=5, seed=1)
            assert dist._small  # ~10^4 parameters
            seen = []
            loss = dist.vae.loss
            dist.vae.loss = lambda *a, **k: (seen.append(torch.get_num_threads()), loss(*a, **k))[1]
            dist.update(archs, metrics)
            assert set(seen) == {1} and torch.get_num_threads() == threads
            runs.append(([p.detach().clone() for p in dist.vae.parameters()], dist.sample_ids(8)))
            assert torch.get_num_threads() == threads
        assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0]))
        assert np.array_equal(runs[0][1], runs[1][1])
    finally:
        torch.set_num_threads(prev)
