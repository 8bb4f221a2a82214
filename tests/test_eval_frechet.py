"""Fréchet distance and KID against closed forms, and against torch-fidelity / clean-fid."""
import numpy as np
import pytest
import torch

from suite.errors import SuiteError
from suite.evaluation.frechet import feature_stats, frechet_distance, kernel_inception_distance, polynomial_mmd2

torch.set_num_threads(1)


def test_identity_covariances_give_squared_mean_distance():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    eye = np.eye(16)
    assert frechet_distance(mu1, eye, mu2, eye) == pytest.approx(float(np.sum((mu1 - mu2) ** 2)), rel=1e-10, abs=1e-10)
    assert frechet_distance(mu1, eye, mu1, eye) == pytest.approx(0.0, abs=1e-10)


def test_diagonal_covariances_closed_form():
    """Σ1 = diag(a), Σ2 = diag(b): d² = ‖μ1 − μ2‖² + Σ (√a − √b)²."""
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 4.0, 12), rng.uniform(0.1, 4.0, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)


def test_rotated_gaussians_closed_form():
    """Same diagonal spectrum in a random orthonormal basis: the distance is basis independent."""
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    a, b = rng.uniform(0.5, 2.0, 10), rng.uniform(0.5, 2.0, 10)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(10), s1, np.zeros(10), s2) == pytest.approx(expected, rel=1e-8)


def test_near_singular_covariances():
    """Rank-deficient covariances (fewer samples than dims, as at 2k samples of 2048-d features):
    finite, non-negative, and equal to the closed form for a shared low-rank subspace."""
    rng = np.random.default_rng(3)
    d, r = 64, 5
    basis, _ = np.linalg.qr(rng.normal(size=(d, r)))
    a, b = rng.uniform(0.5, 2.0, r), rng.uniform(0.5, 2.0, r)
    s1 = basis @ np.diag(a) @ basis.T  # rank 5 of 64: singular
    s2 = basis @ np.diag(b) @ basis.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    got = frechet_distance(mu1, s1, mu2, s2)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)
    # An exactly singular pair (zero covariance) still gives ‖Δμ‖².
    z = np.zeros((d, d))
    assert frechet_distance(mu1, z, mu2, z) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-6)


def test_sample_stats_converge_to_population_distance():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 1.0, size=(20000, 4))
    y = rng.normal(1.0, 2.0, size=(20000, 4))
    # closed form: 4·1² (means) + 4·(1 − 2)² (stds) = 8
    assert frechet_distance(*feature_stats(x), *feature_stats(y)) == pytest.approx(8.0, rel=0.03)


def test_libraries_agree_with_suite_on_same_features():
    from cleanfid.fid import frechet_distance as cf_fd
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.3, 1.5, size=(300, 8))
    (m1, s1), (m2, s2) = feature_stats(x), feature_stats(y)
    ours = frechet_distance(m1, s1, m2, s2)
    tf = fid_statistics_to_metric({"mu": m1, "sigma": s1}, {"mu": m2, "sigma": s2}, False)["frechet_inception_distance"]
    assert ours == pytest.approx(tf, rel=1e-8)
    assert ours == pytest.approx(float(cf_fd(m1, s1, m2, s2)), rel=1e-8)


def test_shape_mismatch_is_a_suite_error():
    with pytest.raises(SuiteError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_kid_zero_for_same_distribution_and_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    rng = np.random.default_rng(6)
    x, x2, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16)), rng.normal(0.5, 1.0, size=(400, 16))
    same, _ = kernel_inception_distance(x, x2, num_subsets=20, subset_size=200)
    diff, _ = kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
    assert diff > 0.05 and abs(same) < 0.2 * diff
    # Unbiased MMD² of a set with itself vs an independent copy: the estimator is exactly 0 in expectation;
    # torch-fidelity's implementation on the same subsets gives the same number.
    tf = kid_features_to_metric(torch.from_numpy(x).float(), torch.from_numpy(y).float(), kid_subsets=20,
                                kid_subset_size=200, rng_seed=0, verbose=False)["kernel_inception_distance_mean"]
    ours, _ = kernel_inception_distance(x.astype(np.float32), y.astype(np.float32), num_subsets=20, subset_size=200, seed=0)
    assert ours == pytest.approx(tf, rel=1e-3)
    assert polynomial_mmd2(x[:50], y[:50]) > 0


def test_fast_path_from_features_equals_full_formula():
    """n < F (2k samples of 2048-d Inception features): the (n, n) eigh gives the same number as
    sqrtm on the (F, F) product, against a full-rank and against a rank-deficient reference."""
    from suite.evaluation.frechet import frechet_distance_to_features

    rng = np.random.default_rng(7)
    f1 = rng.normal(size=(20, 48)) @ rng.normal(size=(48, 48)) * 0.3
    full = feature_stats(rng.normal(1.0, 2.0, size=(500, 48)))
    low = feature_stats(rng.normal(size=(30, 48)))
    for mu2, s2 in (full, low):
        assert frechet_distance_to_features(f1, mu2, s2) == pytest.approx(frechet_distance(*feature_stats(f1), mu2, s2), rel=1e-6)
    big = rng.normal(size=(200, 8))  # n > F: the usual formula
    assert frechet_distance_to_features(big, np.zeros(8), np.eye(8)) == pytest.approx(
        frechet_distance(*feature_stats(big), np.zeros(8), np.eye(8)), rel=1e-10)
