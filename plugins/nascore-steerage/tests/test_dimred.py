"""The 11 FFNN dimensionality-reduction methods (section 4.2.1)."""

import math
import warnings

import numpy as np
import pytest
import torch

from nascore.errors import ConfigError
from nascore_steerage.dimred import METHODS, fit_reduction, fit_spectral, reduced_features


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(float)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    return X[:400], X[400:600]


def _t(X):
    return torch.tensor(X, dtype=torch.float32)


def _aligned_error(a, b):
    """Max error relative to the scale of ``b`` after flipping column signs (eigen
    solvers fix signs arbitrarily)."""
    s = np.sign((a * b).sum(0))
    s[s == 0] = 1
    return np.abs(a * s - b).max() / np.abs(b).max()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_maps_d_to_k_features(method, data):
    Xtr, Xte = data
    front = fit_reduction(method, Xtr, 6, seed=0, fit_samples=300)
    z = front(_t(Xte))
    assert z.shape == (len(Xte), 6)
    assert torch.isfinite(z).all()
    assert not any(p.requires_grad for p in front.parameters())  # fitted, frozen


@pytest.mark.parametrize("method", METHODS)
def test_fit_never_sees_held_out_rows(method, data):
    """The transform depends on the training rows only: refitting with different
    held-out data is impossible by construction; here the fitted state is identical
    whatever the other rows are, and equals a fit on the training rows alone."""
    Xtr, _ = data
    a = fit_reduction(method, Xtr, 5, seed=1, fit_samples=300)
    b = fit_reduction(method, Xtr.copy(), 5, seed=1, fit_samples=300)
    for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.allclose(ta, tb)


def test_space_fits_dr_on_train_split_only(digits_tabular):
    """Poisoning valid and test with NaN leaves the fitted front-end finite and equal."""
    import copy

    import nascore

    space = nascore.create("search_space", "ffnn", neurons_low=8, neurons_high=16, neurons_step=8, max_layers=1)
    arch = space.make({"layers": 1, "n1": 8, "dr_method": "pca", "dr_ratio": 4.0, "quant_bits": 32})
    clean = space.build(arch, digits_tabular).front
    poisoned = copy.copy(digits_tabular)
    poisoned.valid = copy.copy(digits_tabular.valid)
    poisoned.test = copy.copy(digits_tabular.test)
    poisoned.valid.X = torch.full_like(digits_tabular.valid.X, float("nan"))
    poisoned.test.X = torch.full_like(digits_tabular.test.X, float("nan"))
    front = space.build(arch, poisoned).front
    for t_clean, t_front in zip(clean.state_dict().values(), front.state_dict().values()):
        assert torch.isfinite(t_front).all() and torch.equal(t_clean, t_front)


def test_random_projection_entry_distributions():
    d, k = 400, 50
    X = np.zeros((5, d))
    gauss = fit_reduction("gaussian-rp", X, k, seed=0).matrix.numpy()
    normal = fit_reduction("normal-rp", X, k, seed=0).matrix.numpy()
    sign = fit_reduction("sign-rp", X, k, seed=0).matrix.numpy()
    sparse = fit_reduction("sparse-rp", X, k, seed=0).matrix.numpy()
    n = d * k  # 20,000 entries: standard errors of a few 1e-3
    assert gauss.var() == pytest.approx(1 / k, rel=0.05)
    assert normal.var() == pytest.approx(1.0, rel=0.05)
    assert set(np.unique(sign)) == {-1.0, 1.0} and abs((sign > 0).mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    values = np.unique(sparse)
    assert np.allclose(values, [-math.sqrt(3 / k), 0.0, math.sqrt(3 / k)])
    assert abs((sparse == 0).mean() - 2 / 3) < 4 * math.sqrt(2 / 9 / n)
    assert sparse.var() == pytest.approx(1 / k, rel=0.05)  # E[phi^2] = 3/k * 1/3


def test_linear_methods_equal_scikit_learn(data):
    from sklearn.decomposition import PCA, FactorAnalysis, FastICA

    Xtr, Xte = data
    k = 6
    pca = PCA(n_components=k, random_state=0).fit(Xtr)
    assert _aligned_error(fit_reduction("pca", Xtr, k)(_t(Xte)).numpy(), pca.transform(Xte)) < 1e-4
    fa = FactorAnalysis(n_components=k, svd_method="lapack", random_state=0).fit(Xtr)
    assert _aligned_error(fit_reduction("factor-analysis", Xtr, k)(_t(Xte)).numpy(), fa.transform(Xte)) < 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica = FastICA(n_components=k, whiten="unit-variance", random_state=0, max_iter=400).fit(Xtr)
    assert _aligned_error(fit_reduction("ica", Xtr, k)(_t(Xte)).numpy(), ica.transform(Xte)) < 1e-4


@pytest.mark.parametrize("k, steps", [(10, 38), (20, 56)])
def test_factor_analysis_takes_scikit_learns_steps(k, steps):
    """The QR form runs scikit-learn's lapack FA iteration: the same number of steps to
    the same log-likelihood and model (digits has constant pixels, as MNIST does)."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import FactorAnalysis

    from nascore_steerage.dimred import factor_analysis

    X = load_digits().data.astype(float)[:600]
    fa = FactorAnalysis(n_components=k, svd_method="lapack").fit(X)
    mean, W, psi, n, loglike = factor_analysis(X, k)
    assert fa.n_iter_ == steps and n == steps
    assert loglike == pytest.approx(fa.loglike_[-1], abs=1e-6)
    assert np.allclose(mean, fa.mean_)
    assert np.abs(psi - fa.noise_variance_).max() < 1e-6 * fa.noise_variance_.max()
    assert np.abs(W.T @ W - fa.components_.T @ fa.components_).max() < 1e-6 * np.abs(W.T @ W).max()


@pytest.mark.parametrize("kernel", ["poly", "rbf"])
def test_kernel_pca_out_of_sample_equals_scikit_learn(kernel, data):
    from sklearn.decomposition import KernelPCA

    Xtr, Xte = data
    ref = KernelPCA(n_components=6, kernel=kernel, gamma=1 / 64, degree=3, coef0=1, random_state=0).fit(Xtr)
    ours = fit_reduction(f"{kernel}-kpca", Xtr, 6)(_t(Xte)).numpy()
    assert _aligned_error(ours, ref.transform(Xte)) < 1e-4


def test_isomap_out_of_sample_equals_scikit_learn(data):
    from sklearn.manifold import Isomap

    Xtr, Xte = data
    ref = Isomap(n_neighbors=5, n_components=6).fit(Xtr)
    assert _aligned_error(fit_reduction("isomap", Xtr, 6)(_t(Xte)).numpy(), ref.transform(Xte)) < 1e-4


def test_spectral_embedding_eigen_relation_and_nystrom_extension(data):
    """The fitted embedding E satisfies P E = E Lambda (P = D^-1 W, zero diagonal); the
    Nystrom map reproduces E at the training rows; E matches scikit-learn's
    SpectralEmbedding up to sign."""
    from scipy.spatial.distance import cdist
    from sklearn.manifold import SpectralEmbedding

    Xtr, _ = data
    front = fit_spectral(Xtr, 4)
    lam = front.eigenvalues.double().numpy()
    E = front.weights.double().numpy() * lam
    W = np.exp(-cdist(Xtr, Xtr, "sqeuclidean") / 64)
    np.fill_diagonal(W, 0.0)
    P = W / W.sum(1, keepdims=True)
    assert np.abs(P @ E - E * lam).max() < 1e-4 * np.abs(E).max()
    z = front(_t(Xtr)).double().numpy()
    assert np.abs(z - E).max() < 1e-4 * np.abs(E).max()
    ref = SpectralEmbedding(n_components=4, affinity="rbf", gamma=1 / 64, random_state=0).fit_transform(Xtr)
    assert min(abs(np.corrcoef(E[:, i], ref[:, i])[0, 1]) for i in range(2)) > 0.95


def test_reduced_features_and_bad_ratios():
    assert reduced_features(64, 1.0) == 64
    assert reduced_features(64, 3.0) == 21
    assert reduced_features(13, 13.0) == 1
    with pytest.raises(ConfigError, match="< 1 feature"):
        reduced_features(13, 13.5)
    with pytest.raises(ConfigError, match="unknown DR method"):
        fit_reduction("tsne", np.zeros((10, 4)), 2)
    with pytest.raises(ConfigError, match="k must be"):
        fit_reduction("pca", np.zeros((10, 4)), 5)
