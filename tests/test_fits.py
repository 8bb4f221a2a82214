"""Scaling-law fits, bootstrap intervals, frontier and speed-ups on synthetic data with known truth."""
import math

import numpy as np
import pandas as pd
import pytest

from reports import fits

TRUE = fits.PowerLaw(a=4000.0, b=0.35, c=0.8)  # y: 3.6 at C = 1e9 down to 0.92
COMPUTE = np.geomspace(1e9, 1e13, 12)


def _seeds(rng, n_seeds=6, sigma=0.03):
    """n_seeds noisy runs of the true law (multiplicative noise, independent per point)."""
    C = np.tile(COMPUTE, n_seeds)
    y = TRUE(C) * np.exp(rng.normal(0, sigma, C.shape))
    groups = np.repeat(np.arange(n_seeds), len(COMPUTE))
    return C, y, groups


def test_fit_recovers_exact_law_without_noise():
    law, _, _ = fits.fit_power_law(COMPUTE, TRUE(COMPUTE))
    assert law.a == pytest.approx(TRUE.a, rel=1e-4)
    assert law.b == pytest.approx(TRUE.b, rel=1e-5)
    assert law.c == pytest.approx(TRUE.c, rel=1e-5)


def test_fit_recovers_law_from_noisy_seeds():
    C, y, _ = _seeds(np.random.default_rng(1))
    law, _, _ = fits.fit_power_law(C, y)
    assert law.b == pytest.approx(TRUE.b, rel=0.1)
    assert law.c == pytest.approx(TRUE.c, abs=0.1)
    # a and b trade off; the curve itself must be close everywhere in the fitted range.
    np.testing.assert_allclose(law(COMPUTE), TRUE(COMPUTE), rtol=0.03)


def test_huber_fit_shrugs_off_an_outlier():
    y = TRUE(COMPUTE) * np.exp(np.random.default_rng(2).normal(0, 0.01, len(COMPUTE)))
    y[5] *= 3.0  # one broken evaluation
    plain, _, _ = fits.fit_power_law(COMPUTE, y)
    robust, _, _ = fits.fit_power_law(COMPUTE, y, loss="huber")
    assert abs(robust.b - TRUE.b) < abs(plain.b - TRUE.b)
    assert robust.b == pytest.approx(TRUE.b, rel=0.1)


def test_bootstrap_intervals_cover_the_truth():
    """Over 20 independent data sets of 10 seeds, the 95 % run-bootstrap interval covers each true
    parameter in at least 80 % of them, and the intervals are not absurdly wide."""
    rng = np.random.default_rng(123)
    hits = {"a": 0, "b": 0, "c": 0}
    widths = []
    reps = 20
    for rep in range(reps):
        C, y, groups = _seeds(rng, n_seeds=10)
        res = fits.bootstrap_power_law(C, y, groups, n_boot=60, seed=rep)
        assert res.interval == "runs" and len(res.samples) >= 50
        for name in hits:
            lo, hi = res.ci(name)
            hits[name] += lo <= getattr(TRUE, name) <= hi
        widths.append(np.subtract(*res.ci("b")[::-1]))
        assert all(res.identified(n) for n in "abc"), res.ci_text("b", str)
    for name, h in hits.items():
        assert h / reps >= 0.8, f"coverage of {name}: {h}/{reps}"
    assert np.median(widths) < 0.3  # b = 0.35: an interval of [0, 1] would "cover" trivially


def test_single_run_falls_back_to_residual_bootstrap():
    C, y, _ = _seeds(np.random.default_rng(3), n_seeds=1, sigma=0.02)
    res = fits.bootstrap_power_law(C, y, None, n_boot=40)
    assert res.interval == "residuals"
    lo, hi = res.ci("b")
    assert lo < hi and lo <= TRUE.b + 0.1 and hi >= TRUE.b - 0.1


def test_parameters_the_data_cannot_pin_are_not_identified():
    """Five points of a curve that barely bends: the floor trades off with the exponent, the
    bootstrap runs into the bounds, and the table says "not identified" instead of numbers."""
    rng = np.random.default_rng(5)
    C = np.tile(np.geomspace(1e9, 3e9, 5), 2)
    y = 50.0 * np.exp(rng.normal(0, 0.05, C.shape))  # flat within noise: no exponent to see
    res = fits.bootstrap_power_law(C, y, np.repeat([0, 1], 5), n_boot=40)
    assert not res.identified("b") or not res.identified("c")
    assert not res.identified("a")
    text = " ".join(res.ci_text(n, fits_fmt) for n in "abc")
    assert fits.NOT_IDENTIFIED in text


def fits_fmt(x):
    return f"{x:.3g}"


def test_fit_refuses_too_few_points():
    with pytest.raises(ValueError, match="power law needs"):
        fits.fit_power_law(COMPUTE[:3], TRUE(COMPUTE[:3]))


# ----------------------------------------------------------------------------- speed-up
def _base(x):
    return 0.5 + 20.0 * np.power(x, -0.4)


def test_speedup_of_a_curve_compressed_twofold_is_two():
    x = np.geomspace(1e3, 1e5, 25)
    assert fits.speedup_ratio(x, _base(x), x, _base(2 * x)) == pytest.approx(2.0, rel=0.02)
    # and a curve compressed 3x on a coarser grid of its own
    x2 = np.geomspace(1e3, 1e5, 9)
    assert fits.speedup_ratio(x, _base(x), x2, _base(3 * x2)) == pytest.approx(3.0, rel=0.03)


def test_speedup_higher_is_better_and_never_reached():
    x = np.geomspace(1e3, 1e5, 25)
    acc = lambda z: 1 - _base(z)
    assert fits.speedup_ratio(x, acc(x), x, acc(2 * x), sign=+1) == pytest.approx(2.0, rel=0.02)
    assert math.isnan(fits.speedup_ratio(x, _base(x), x, _base(0.5 * x)))


def test_images_to_reach_uses_running_best():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    y = np.array([5.0, 2.0, 3.0, 1.0])  # dips to 2 at x=2, then noise
    assert fits.images_to_reach(x, y, 2.0) == pytest.approx(2.0)
    # crossing between (1, 5) and (2, 2), interpolated in log x
    assert fits.images_to_reach(x, y, 2.5) == pytest.approx(2.0 ** (2.5 / 3.0))
    assert fits.images_to_reach(x, y, 0.5) != fits.images_to_reach(x, y, 0.5)  # never: nan


# ----------------------------------------------------------------------------- frontier
def _curves_frame(sizes, flops_per_image, seeds=(0, 1), noise=0.0, method="selfflow"):
    """Runs whose loss follows L(N, D) = E + A/N^α + B/D^β (Chinchilla form), D = images."""
    rng = np.random.default_rng(0)
    rows = []
    images = np.geomspace(2e3, 2e5, 15)
    for n, f in zip(sizes, flops_per_image):
        for s in seeds:
            loss = 0.5 + 30 / n ** 0.3 + 60 / images ** 0.4
            loss = loss * np.exp(rng.normal(0, noise, len(images)))
            for d, v in zip(images, loss):
                rows.append(dict(run_id=f"{method}-{n}-{s}", method_key=method, size_key=float(n),
                                 size=f"{n}", seed_key=str(s), metric="val/loss_t0.5", step=int(d),
                                 value=v, images=d, flops_total=d * f, flops_backbone=d * f))
    return pd.DataFrame(rows)


def test_isoflop_optimum_moves_to_bigger_models_with_compute():
    sizes = [1e4, 1e5, 1e6]
    cur = _curves_frame(sizes, [6 * n for n in sizes])
    iso = fits.isoflop_profiles(cur, "val/loss_t0.5", n_levels=4)
    opt = iso[iso["optimal"]].sort_values("compute")
    assert len(opt) >= 3
    assert opt["size_key"].is_monotonic_increasing
    assert opt["size_key"].nunique() >= 2
    # the optimum is the minimum of its profile
    for c, prof in iso.groupby("compute"):
        assert prof.loc[prof["optimal"], "value"].iloc[0] == prof["value"].min()


def test_frontier_fit_and_notes():
    sizes = [1e4, 1e5, 1e6]
    cur = _curves_frame(sizes, [6 * n for n in sizes], noise=0.01)
    res, front, note = fits.fit_method_law(cur, "val/loss_t0.5", n_boot=30)
    assert note is None and res.interval == "runs"
    # frontier points are not beaten by any size at their compute
    assert len(front) >= 6 and front["size_key"].nunique() >= 2
    curves = {s: fits.mean_curve(g, "flops_total") for s, g in cur.groupby("size_key")}
    for p in front.itertuples():
        for s, (cx, cy) in curves.items():
            if cx[0] <= p.x <= cx[-1]:
                assert p.y <= np.interp(np.log(p.x), np.log(cx), cy) + 1e-12
    # and a point that some size beats is not on it: the smallest size's last point
    small_x, small_y = curves[1e4]
    assert not ((front["size_key"] == 1e4) & (front["x"] == small_x[-1])).any()
    lo, hi = res.ci("b")
    assert lo <= res.law.b <= hi
    one = cur[cur["size_key"] == 1e5]
    res1, _, note1 = fits.fit_method_law(one, "val/loss_t0.5")
    assert res1 is None and "only 1 model size" in note1
    two = cur[cur["size_key"] != 1e6]
    res2, _, note2 = fits.fit_method_law(two, "val/loss_t0.5")
    assert res2 is None and fits.NOT_IDENTIFIED in note2 and "only 2 model size" in note2
    assert fits.isoflop_profiles(two, "val/loss_t0.5").empty
    _, _, note3 = fits.fit_method_law(cur.assign(metric="eval/probe_acc_block2"), "eval/probe_acc_block2")
    assert "not lower-is-better" in note3


def test_speedups_frame_with_seed_intervals():
    sizes = [1e5]
    base = _curves_frame(sizes, [6e5], seeds=(0, 1, 2), method="repa", noise=0.005)
    ref = _curves_frame(sizes, [6e5], seeds=(0, 1, 2), method="selfflow", noise=0.005)
    # Self-Flow: the same curve compressed 2x along images
    ref["value"] = 0.5 + 30 / 1e5 ** 0.3 + 60 / (2 * ref["images"]) ** 0.4
    cur = pd.concat([base, ref])
    runs = pd.DataFrame({"run_id": cur["run_id"].unique()}).assign(flops_per_image_total=6e5)
    runs.loc[runs["run_id"].str.startswith("selfflow"), "flops_per_image_total"] = 9e5
    sp = fits.speedups(cur, runs, ["val/loss_t0.5"], n_boot=50)
    row = sp.iloc[0]
    assert row["baseline"] == "repa"
    assert row["speedup_images"] == pytest.approx(2.0, rel=0.05)
    # Self-Flow's teacher forward costs FLOPs: 2x fewer images is 2·6/9 in FLOPs
    assert row["speedup_flops"] == pytest.approx(2.0 * 6 / 9, rel=0.05)
    assert row["images_low"] <= row["speedup_images"] <= row["images_high"]
