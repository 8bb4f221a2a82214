"""Fréchet distance and kernel inception distance on feature sets — the maths, no models.

Both torch-fidelity and clean-fid compute these too; the suite keeps one numerically careful
version so that reference statistics read from an ADM batch (`mu`, `sigma` only, no features)
and statistics computed here meet in the same function.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from suite.errors import SuiteError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) features → mean (F,) and unbiased covariance (F, F), in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise SuiteError(f"feature_stats needs an (N, F) array with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)   (Dowson & Landau 1982; Heusel et al. 2017).

    As in pytorch-fid / the ADM evaluator: when sqrtm of Σ1Σ2 is not finite (near-singular
    covariances, e.g. fewer samples than feature dimensions) it is recomputed with eps·I added
    to both covariances; a tiny imaginary part from rounding is dropped, a large one is an error.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise SuiteError(
            f"frechet_distance: shapes do not match (mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape})"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are expected and handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"frechet_distance: singular product; adding {eps} to the covariance diagonals")
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise SuiteError(f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def polynomial_mmd2(f1: np.ndarray, f2: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD² with the kernel k(x, y) = (γ·xᵀy + c)^d, γ = 1/F (Bińkowski et al. 2018)."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    gamma = 1.0 / f1.shape[1] if gamma is None else gamma
    k11 = (gamma * f1 @ f1.T + coef0) ** degree  # (m, m)
    k22 = (gamma * f2 @ f2.T + coef0) ** degree  # (n, n)
    k12 = (gamma * f1 @ f2.T + coef0) ** degree  # (m, n)
    m, n = f1.shape[0], f2.shape[0]
    a = (k11.sum() - np.trace(k11)) / (m * (m - 1))
    b = (k22.sum() - np.trace(k22)) / (n * (n - 1))
    return float(a + b - 2.0 * k12.mean())


def kernel_inception_distance(
    f1: np.ndarray, f2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0, **kernel
) -> tuple[float, float]:
    """KID: mean and std of the polynomial MMD² over random equal-size subsets of both sets.

    The subset size is capped at the smaller set (so small evaluations still work); the seed
    makes the number reproducible.
    """
    f1, f2 = np.asarray(f1), np.asarray(f2)
    size = min(subset_size, f1.shape[0], f2.shape[0])
    if size < 2:
        raise SuiteError(f"KID needs at least 2 features per set, got {f1.shape[0]} and {f2.shape[0]}")
    rng = np.random.RandomState(seed)
    vals = [
        polynomial_mmd2(f1[rng.choice(f1.shape[0], size, replace=False)], f2[rng.choice(f2.shape[0], size, replace=False)], **kernel)
        for _ in range(num_subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))


def frechet_distance_to_features(f1: np.ndarray, mu2, sigma2) -> float:
    """Fréchet distance of features f1 (n, F) to a reference (μ2, Σ2), exact and fast when n ≤ F.

    With A = f1 − μ1 (n, F), Σ1 = AᵀA/(n − 1), the non-zero eigenvalues of Σ1Σ2 are those of the
    symmetric PSD (n, n) matrix A Σ2 Aᵀ/(n − 1), so Tr (Σ1Σ2)^½ = Σ √eig — an O(F²n + n³) eigh
    instead of an O(F³) sqrtm/eigvals of a non-symmetric product (2k Inception samples: seconds,
    not half a minute on a core). With n > F the usual formula is used.
    """
    f1 = np.asarray(f1, np.float64)
    n, d = f1.shape
    mu2, s2 = np.asarray(mu2, np.float64), np.asarray(sigma2, np.float64)
    if n - 1 >= d:
        return frechet_distance(*feature_stats(f1), mu2, s2)
    if mu2.shape != (d,) or s2.shape != (d, d):
        raise SuiteError(f"frechet_distance: features have {d} dims, reference mu {mu2.shape} sigma {s2.shape}")
    mu1 = f1.mean(axis=0)
    a = f1 - mu1  # (n, F)
    m = a @ s2 @ a.T / (n - 1)  # (n, n)
    ev = np.linalg.eigvalsh(0.5 * (m + m.T)).clip(min=0.0)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.sum(a * a) / (n - 1) + np.trace(s2) - 2.0 * np.sqrt(ev).sum())
