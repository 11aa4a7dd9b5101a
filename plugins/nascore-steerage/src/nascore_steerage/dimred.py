"""The eleven dimensionality-reduction (DR) methods of STEERAGE's FFNN search (section 4.2.1).

Each method is *fitted on the training split only* and returned as a torch module, the
front-end of the network the space builds: valid and test samples only ever go through
the fitted transform, so nothing about them leaks into the fit.  All fitted state lives
in buffers (saved with the ``state_dict``, moved with ``.to(device)``).

Methods, in the order of the paper (DR method 1..11 of Table 2):

1-4. random projections ``z = x R^T`` (Johnson-Lindenstrauss) with i.i.d. entries drawn
     from N(0, 1/k), N(0, 1), {+1, -1} with probability 1/2 each, and Achlioptas'
     sqrt(3/k) * {+1, 0, -1} with probabilities 1/6, 2/3, 1/6;
5.   PCA; 6-7. kernel PCA with a polynomial / Gaussian (RBF) kernel; 8. factor analysis;
9.   Isomap; 10. independent component analysis (FastICA); 11. spectral embedding.

PCA, ICA, kernel PCA and Isomap are fitted with scikit-learn (as in the paper), factor
analysis with scikit-learn's own iteration computed on a QR factor (the same steps and
answer, a fraction of the time on 784 features), and their out-of-sample transforms are
rewritten in torch from the fitted public attributes (tested against scikit-learn's own
``transform``). Spectral embedding has no out-of-sample transform in scikit-learn: it is
fitted here (eigenvectors of the normalized RBF affinity, like
``sklearn.manifold.SpectralEmbedding``) and extended to new points with the Nyström formula
of Bengio et al. (NIPS 2003, "Out-of-sample extensions for LLE, Isomap, MDS, Eigenmaps, and
spectral clustering"):
``e_k(x) = (1/lambda_k) * sum_j W(x, x_j) / d(x) * e_k(x_j)``, which reproduces the
training embedding exactly at the training points.  Kernel methods keep at most
``fit_samples`` training rows (an O(n^2) kernel), drawn with a seeded generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nascore.api import ConfigError

#: DR methods in the paper's order (Table 2: "DR method 1-11")
METHODS = (
    "gaussian-rp", "normal-rp", "sign-rp", "sparse-rp", "pca", "poly-kpca", "rbf-kpca",
    "factor-analysis", "isomap", "ica", "spectral",
)


def reduced_features(features: int, ratio: float) -> int:
    """``k = floor(d / ratio)`` features kept by a DR ratio (feature compression ratio);
    a ratio that leaves fewer than one feature is a ConfigError."""
    if ratio < 1:
        raise ConfigError(f"DR ratio must be >= 1, got {ratio}")
    k = int(math.floor(features / ratio + 1e-9))
    if k < 1:
        raise ConfigError(f"DR ratio {ratio} leaves {features}/{ratio} < 1 feature; use a ratio <= {features}")
    return k


# --------------------------------------------------------------------------- front-ends


def _buffer(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=torch.float32).clone()


class LinearReduction(nn.Module):
    """``z = (x - mean) @ matrix``: random projections, PCA, factor analysis, ICA."""

    def __init__(self, mean, matrix):
        super().__init__()
        self.register_buffer("mean", _buffer(mean))
        self.register_buffer("matrix", _buffer(matrix))

    @property
    def out_features(self) -> int:
        return int(self.matrix.shape[1])

    def forward(self, x):
        return (x - self.mean) @ self.matrix


class KernelCentering(nn.Module):
    """Shared out-of-sample step of kernel PCA: centre a kernel row against the fit
    statistics (scikit-learn's ``KernelCenterer``) and project on ``alphas``."""

    def __init__(self, K_fit, alphas):
        super().__init__()
        K_fit = np.asarray(K_fit, dtype=np.float64)
        self.register_buffer("K_fit_rows", _buffer(K_fit.mean(axis=0)))
        self.register_buffer("K_fit_all", _buffer(K_fit.mean()))
        self.register_buffer("alphas", _buffer(alphas))

    @property
    def out_features(self) -> int:
        return int(self.alphas.shape[1])

    def project(self, K):
        Kc = K - self.K_fit_rows - K.mean(dim=1, keepdim=True) + self.K_fit_all
        return Kc @ self.alphas


def _alphas(eigenvectors, eigenvalues, k: int):
    """Eigenvectors divided by sqrt(eigenvalue); components with (numerically) zero
    eigenvalues give a constant-zero feature instead of an infinite one."""
    vals = np.asarray(eigenvalues, dtype=np.float64)[:k]
    vecs = np.asarray(eigenvectors, dtype=np.float64)[:, :k]
    keep = vals > 1e-10 * max(float(vals.max(initial=0.0)), 1e-300)
    out = np.zeros((vecs.shape[0], k))
    out[:, : len(vals)][:, keep] = vecs[:, keep] / np.sqrt(vals[keep])
    return out


class KernelPCAReduction(KernelCentering):
    """Kernel PCA with ``kernel`` ``"poly"`` ((gamma <x,y> + coef0)^degree) or ``"rbf"``
    (exp(-gamma |x-y|^2)) over the stored training rows."""

    def __init__(self, X_fit, kernel: str, gamma: float, degree: int, coef0: float, K_fit, alphas):
        super().__init__(K_fit, alphas)
        self.kernel, self.gamma, self.degree, self.coef0 = kernel, float(gamma), int(degree), float(coef0)
        self.register_buffer("X_fit", _buffer(X_fit))

    def kernel_matrix(self, x):
        if self.kernel == "poly":
            return (self.gamma * (x @ self.X_fit.T) + self.coef0) ** self.degree
        return torch.exp(-self.gamma * torch.cdist(x, self.X_fit).square())

    def forward(self, x):
        return self.project(self.kernel_matrix(x))


class IsomapReduction(KernelCentering):
    """Isomap's out-of-sample map: geodesic distance of ``x`` to every training row
    through its ``n_neighbors`` nearest training rows, then kernel PCA of -G^2/2."""

    def __init__(self, X_fit, geodesic, n_neighbors: int, alphas):
        geodesic = np.asarray(geodesic, dtype=np.float64)
        super().__init__(-0.5 * geodesic ** 2, alphas)
        self.n_neighbors = int(n_neighbors)
        self.register_buffer("X_fit", _buffer(X_fit))
        self.register_buffer("geodesic", _buffer(geodesic))

    def forward(self, x):
        dist, idx = torch.cdist(x, self.X_fit).topk(self.n_neighbors, dim=1, largest=False)
        G = (dist.unsqueeze(-1) + self.geodesic[idx]).amin(dim=1)
        return self.project(-0.5 * G.square())


class SpectralReduction(nn.Module):
    """Laplacian-eigenmap (spectral) embedding with the Nyström out-of-sample extension
    ``e(x) = (W(x, X) / d(x)) @ E / lambda`` (see the module docstring); a stored row
    equal to ``x`` gets affinity 0, as the fit's zero diagonal gives it."""

    def __init__(self, X_fit, gamma: float, embedding, eigenvalues):
        super().__init__()
        self.gamma = float(gamma)
        self.register_buffer("X_fit", _buffer(X_fit))
        self.register_buffer("eigenvalues", _buffer(eigenvalues))
        self.register_buffer("weights", _buffer(np.asarray(embedding) / np.asarray(eigenvalues)[None, :]))

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[1])

    def forward(self, x):
        d2 = torch.cdist(x, self.X_fit, compute_mode="donot_use_mm_for_euclid_dist").square()
        W = torch.where(d2 > 0, torch.exp(-self.gamma * d2), torch.zeros_like(d2))  # no self-affinity
        P = W / W.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return P @ self.weights


# --------------------------------------------------------------------------- fitting


def _random_projection(method: str, d: int, k: int, rng: np.random.Generator):
    """The k×d projection matrix of the four random-projection methods (section 4.2.1)."""
    if method == "gaussian-rp":
        R = rng.normal(0.0, math.sqrt(1.0 / k), size=(k, d))
    elif method == "normal-rp":
        R = rng.normal(0.0, 1.0, size=(k, d))
    elif method == "sign-rp":
        R = rng.choice([1.0, -1.0], size=(k, d))
    else:  # Achlioptas: sqrt(3/k) * {+1 w.p. 1/6, 0 w.p. 2/3, -1 w.p. 1/6}
        R = math.sqrt(3.0 / k) * rng.choice([1.0, 0.0, -1.0], size=(k, d), p=[1 / 6, 2 / 3, 1 / 6])
    return LinearReduction(np.zeros(d), R.T)


def _fit_pca(X, k, seed):
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, random_state=seed).fit(X)
    return LinearReduction(pca.mean_, pca.components_.T)


def factor_analysis(X, k: int, *, max_iter: int = 1000, tol: float = 1e-2):
    """Maximum-likelihood factor analysis: scikit-learn's ``FactorAnalysis`` SVD iteration
    (``svd_method="lapack"``: same start, update and stopping rule) on the d×d triangle
    of a QR decomposition instead of the N×d data.  Each step needs the singular values
    and right vectors of ``X_c Psi^-1/2 / sqrt(N)``; with ``X_c / sqrt(N) = Q R`` (one QR,
    before the loop) they are those of ``R Psi^-1/2`` (Q has orthonormal columns), so a
    step costs one min(N, d)×d SVD instead of an N×d one (MNIST-784 at 3,600 rows: about
    4x less).  The same answer up to rounding (tested against scikit-learn).  Returns
    ``(mean, components (k×d), noise_variance (d,), steps, loglike)``."""
    from scipy.linalg import qr, svd

    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    mean = X.mean(axis=0)
    Xc = X - mean
    var = Xc.var(axis=0)
    R = qr(Xc / math.sqrt(n), mode="r", check_finite=False)[0][: min(n, d)] if n > d else Xc / math.sqrt(n)
    llconst = d * math.log(2.0 * math.pi) + k
    psi, old_ll, small = np.ones(d), -np.inf, 1e-12
    for step in range(1, max_iter + 1):
        sqrt_psi = np.sqrt(psi) + small
        _, s, Vt = svd(R / sqrt_psi, full_matrices=False, check_finite=False)
        s, Vt, unexp = s[:k] ** 2, Vt[:k], float(np.square(s[k:]).sum())
        W = np.sqrt(np.maximum(s - 1.0, 0.0))[:, None] * Vt * sqrt_psi
        ll = -n / 2.0 * (llconst + np.log(s).sum() + unexp + np.log(psi).sum())
        if ll - old_ll < tol:
            break
        old_ll = ll
        psi = np.maximum(var - (W ** 2).sum(axis=0), small)
    return mean, W, psi, step, ll


def _fit_factor_analysis(X, k, seed):
    """Factor analysis (:func:`factor_analysis`); its posterior-mean transform is linear:
    z = (x - mean) Psi^-1 W^T (I + W Psi^-1 W^T)^-1."""
    mean, W, psi, _, _ = factor_analysis(X, k)
    Wpsi = W / psi
    cov_z = np.linalg.inv(np.eye(k) + Wpsi @ W.T)
    return LinearReduction(mean, Wpsi.T @ cov_z)


def _fit_ica(X, k, seed):
    import warnings

    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica = FastICA(n_components=k, whiten="unit-variance", random_state=seed, max_iter=400).fit(X)
    return LinearReduction(ica.mean_, ica.components_.T)


def _fit_kpca(X, k, kernel, seed):
    """scikit-learn's KernelPCA with its default kernel parameters (gamma = 1/d; poly:
    degree 3, coef0 1); the centering statistics are recomputed from the fit kernel."""
    from sklearn.decomposition import KernelPCA
    from sklearn.metrics.pairwise import pairwise_kernels

    d = X.shape[1]
    params = {"gamma": 1.0 / d, "degree": 3, "coef0": 1.0}
    kp = KernelPCA(n_components=k, kernel=kernel, random_state=seed, **params).fit(X)
    K = pairwise_kernels(X, metric=kernel, filter_params=True, **params)
    return KernelPCAReduction(X, kernel, K_fit=K, alphas=_alphas(kp.eigenvectors_, kp.eigenvalues_, k), **params)


def _fit_isomap(X, k, seed):
    """scikit-learn's Isomap (5 neighbours; a disconnected neighbour graph is completed
    by scikit-learn, which warns)."""
    import warnings

    from sklearn.manifold import Isomap

    n_neighbors = min(5, len(X) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iso = Isomap(n_neighbors=n_neighbors, n_components=k).fit(X)
    kp = iso.kernel_pca_
    return IsomapReduction(X, iso.dist_matrix_, n_neighbors, _alphas(kp.eigenvectors_, kp.eigenvalues_, k))


def fit_spectral(X, k: int, gamma: float | None = None):
    """Spectral embedding: the k leading non-trivial eigenvectors of the normalized
    affinity D^-1/2 W D^-1/2 (W = RBF), mapped back by D^-1/2 as scikit-learn does, each
    scaled to unit standard deviation over the training rows.  W has a zero diagonal
    (as scikit-learn's graph Laplacian); the Nystrom map likewise ignores a stored row
    identical to its input, so it reproduces the embedding exactly at training rows."""
    from scipy.linalg import eigh
    from scipy.spatial.distance import cdist

    n, d = X.shape
    if k > n - 1:
        raise ConfigError(f"spectral embedding of {n} samples has at most {n - 1} components, asked for {k}")
    gamma = 1.0 / d if gamma is None else gamma
    W = np.exp(-gamma * cdist(X, X, "sqeuclidean"))
    np.fill_diagonal(W, 0.0)
    deg = np.maximum(W.sum(axis=1), 1e-30)
    M = W / np.sqrt(deg)[:, None] / np.sqrt(deg)[None, :]
    vals, vecs = eigh(M, subset_by_index=[n - k - 1, n - 1])
    vals, vecs = vals[::-1][1:], vecs[:, ::-1][:, 1:]  # drop the trivial eigenvector (lambda = 1)
    E = vecs / np.sqrt(deg)[:, None]
    E = E / np.maximum(E.std(axis=0), 1e-30)
    signs = np.sign(E[np.abs(E).argmax(axis=0), np.arange(k)])  # deterministic sign, as sklearn
    vals = np.where(np.abs(vals) > 1e-12, vals, 1e-12)
    return SpectralReduction(X, gamma, E * signs, vals)


def fit_reduction(method: str, X, k: int, *, seed: int = 0, fit_samples: int = 1000) -> nn.Module:
    """Fit DR ``method`` to the training matrix ``X`` (N×d) keeping ``k`` features and
    return the torch front-end (an ``nn.Module`` mapping N×d to N×k)."""
    if method not in METHODS:
        raise ConfigError(f"unknown DR method {method!r}; valid: {', '.join(METHODS)}")
    X = np.asarray(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
    n, d = X.shape
    if not 1 <= k <= d:
        raise ConfigError(f"DR keeps k={k} features but the input has {d}; k must be in 1..{d}")
    rng = np.random.default_rng(seed)
    if method.endswith("-rp"):
        return _random_projection(method, d, k, rng)
    if method in ("poly-kpca", "rbf-kpca", "isomap", "spectral") and n > fit_samples:
        X = X[np.sort(rng.choice(n, size=fit_samples, replace=False))]
    if k > len(X) - 1:
        raise ConfigError(f"DR method {method!r} fitted on {len(X)} samples cannot keep {k} features")
    if method == "pca":
        return _fit_pca(X, k, seed)
    if method == "factor-analysis":
        return _fit_factor_analysis(X, k, seed)
    if method == "ica":
        return _fit_ica(X, k, seed)
    if method in ("poly-kpca", "rbf-kpca"):
        return _fit_kpca(X, k, method.split("-")[0], seed)
    if method == "isomap":
        return _fit_isomap(X, k, seed)
    return fit_spectral(X, k)
