"""Scaling laws, isoFLOP profiles, compute-optimal frontiers and speed-ups (measuring.md §6).

- `fit_power_law`: metric(C) = a·C^(−b) + c by scipy least squares on log-space residuals
  (relative errors: FID at 10 and at 100 weigh alike), optionally with a Huber loss.
- `bootstrap_power_law`: intervals from resampling runs (seeds) and refitting; with a single run
  per curve there is nothing to resample, so residuals are resampled instead (labelled as such).
- Constant LR + EMA lets intermediate evaluations stand in for shorter runs (Chinchilla approach 1):
  every logged point of every size is a (compute, metric) sample; at each compute the best size
  is the compute-optimal one. `frontier_points` keeps the logged points that lie on that
  envelope; the law of a method is fitted on them. `isoflop_profiles` reads every size at a few
  fixed computes.
- `speedup`: how many images (and FLOPs) Self-Flow needs to reach a baseline's final value.
- Identifiability: a frontier law and isoFLOP profiles need >= MIN_SIZES (3) model sizes (with two,
  the "frontier" is two curves' envelope and the optimum one of two points); a parameter whose
  bootstrap interval reaches the fit's bounds (b at 0 or B_MAX, c at 0 or the largest value, a over
  more than A_DECADES decades) is reported as "not identified", not as a number.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from reports.data import direction
from reports.style import SELFFLOW, method_label, sort_methods

LEVEL = 0.95
MIN_SIZES = 3  # a law over the compute-optimal frontier, isoFLOP profiles: at least this many sizes
B_MAX = 10.0  # upper bound of the exponent in the fit; an interval that reaches it pins nothing
A_DECADES = 3.0  # an interval of a wider than this many decades is "not identified"
NOT_IDENTIFIED = "not identified"


# ----------------------------------------------------------------------------- power law
@dataclass(frozen=True)
class PowerLaw:
    """metric(C) = a·C^(−b) + c."""

    a: float
    b: float
    c: float

    def __call__(self, C) -> np.ndarray:
        return self.a * np.power(np.asarray(C, dtype=float), -self.b) + self.c


def _theta_to_law(theta, c0: float) -> PowerLaw:
    log_a_scaled, b, c = theta
    # y = A·(C/C0)^(−b) + c  =>  a = A·C0^b; kept in logs to stay finite for huge C0.
    return PowerLaw(float(math.exp(log_a_scaled + b * math.log(c0))), float(b), float(c))


def _solve(logx, logy, theta0, loss: str):
    def resid(theta):
        log_a, b, c = theta
        return np.log(np.exp(log_a - b * logx) + c) - logy

    y_max = float(np.exp(logy.max()))
    lo, hi = [-60.0, 0.0, 0.0], [60.0, B_MAX, y_max]
    theta0 = np.clip(theta0, [l + 1e-9 for l in lo], [h - 1e-9 for h in hi])
    return least_squares(resid, theta0, bounds=(lo, hi), loss=loss, f_scale=0.05, x_scale="jac")


def _starts(logx, y) -> list[np.ndarray]:
    """Initial guesses: c at a few fractions of min(y), then a log-log line through y − c."""
    starts = []
    for q in (0.0, 0.5, 0.9, 0.98):
        c0 = q * y.min()
        slope, icpt = np.polyfit(logx, np.log(y - c0), 1)
        starts.append(np.array([icpt, max(-slope, 1e-3), c0]))
    return starts


def fit_power_law(C, y, loss: str = "linear", theta0: np.ndarray | None = None):
    """Least-squares fit of y = a·C^(−b) + c on log residuals; returns (PowerLaw, theta, c0).

    `loss` is scipy's: "linear" (plain least squares) or "huber"/"soft_l1" (robust, scale 0.05 in
    log units, i.e. ~5 %). Needs >= 4 points at >= 3 distinct C, all y > 0.
    """
    C, y = np.asarray(C, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(C) & np.isfinite(y) & (C > 0)
    C, y = C[ok], y[ok]
    if len(C) < 4 or len(np.unique(C)) < 3:
        raise ValueError(f"a power law needs >= 4 points at >= 3 compute values, got {len(C)}")
    if (y <= 0).any():
        raise ValueError("a power law on log residuals needs positive metric values")
    c0 = float(np.exp(np.log(C).mean()))
    logx, logy = np.log(C / c0), np.log(y)
    best = None
    for start in ([theta0] if theta0 is not None else _starts(logx, y)):
        res = _solve(logx, logy, start, loss)
        if best is None or res.cost < best.cost:
            best = res
    return _theta_to_law(best.x, c0), best.x, c0


@dataclass
class FitResult:
    law: PowerLaw
    n_points: int
    samples: np.ndarray  # (n_boot, 3): a, b, c of each bootstrap refit
    interval: str  # "runs" (seeds resampled) or "residuals"
    groups: int = 0  # how many runs were resampled (per size for a frontier fit)
    level: float = LEVEL
    y_max: float = math.inf  # the fit's upper bound on c (the largest metric value fitted)

    def identified(self, name: str) -> bool:
        """Whether the data pin parameter `name`: its interval exists and stays off the fit's bounds
        (b in [0, B_MAX], c in [0, y_max]); a needs b pinned and an interval within A_DECADES."""
        lo, hi = self.ci(name)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        est = getattr(self.law, name)
        if name == "b":
            tol = 1e-6 * B_MAX
            return lo > tol and hi < B_MAX - tol and 0 < est < B_MAX - tol
        if name == "c":
            tol = 1e-6 * max(self.y_max, 1e-12)
            return lo > tol and hi < self.y_max - tol
        return self.identified("b") and lo > 0 and math.log10(hi / lo) <= A_DECADES

    def ci_text(self, name: str, fmt) -> str:
        """'est [lo, hi]' with `fmt` for numbers, or 'not identified (est, interval [lo, hi])'."""
        est, (lo, hi) = getattr(self.law, name), self.ci(name)
        if self.identified(name):
            return f"{fmt(est)} [{fmt(lo)}, {fmt(hi)}]"
        return f"{NOT_IDENTIFIED} (fit {fmt(est)}, interval [{fmt(lo)}, {fmt(hi)}])"

    @property
    def _inflate(self) -> float:
        """Resampling G runs underestimates the spread by sqrt((G − 1)/G): undo it (G = 2: ×1.41)."""
        g = self.groups
        return math.sqrt(g / (g - 1)) if self.interval == "runs" and g >= 2 else 1.0

    def ci(self, name: str) -> tuple[float, float]:
        """Percentile interval of the bootstrap refits, widened for few runs about the estimate."""
        col = {"a": 0, "b": 1, "c": 2}[name]
        if len(self.samples) < 2:
            return (math.nan, math.nan)
        q = (1 - self.level) / 2
        lo, hi = np.quantile(self.samples[:, col], [q, 1 - q])
        est, k = getattr(self.law, name), self._inflate
        # widening must not leave the parameter's domain (a, b, c >= 0 in this parametrisation)
        return max(float(est + (lo - est) * k), 0.0), float(est + (hi - est) * k)

    def band(self, C, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise interval of the fitted curve over the bootstrap refits."""
        C = np.asarray(C, dtype=float)
        if len(self.samples) < 2:
            return np.full_like(C, np.nan), np.full_like(C, np.nan)
        curves = self.samples[:, :1] * np.power(C[None, :], -self.samples[:, 1:2]) + self.samples[:, 2:3]
        q = (1 - (level or self.level)) / 2
        est, k = self.law(C), self._inflate
        lo, hi = np.quantile(curves, q, axis=0), np.quantile(curves, 1 - q, axis=0)
        return np.maximum(est + (lo - est) * k, 0.0), est + (hi - est) * k


def _bootstrap(make_xy: Callable[[np.random.Generator], tuple], theta0, c0_ref, n_boot: int,
               rng: np.random.Generator, loss: str) -> np.ndarray:
    out = []
    for _ in range(n_boot):
        try:
            C, y = make_xy(rng)
            law, _, _ = fit_power_law(C, y, loss=loss, theta0=_rescale(theta0, c0_ref, C))
        except (ValueError, np.linalg.LinAlgError):
            continue
        out.append((law.a, law.b, law.c))
    return np.asarray(out, dtype=float).reshape(-1, 3)


def _rescale(theta, c0_ref, C):
    """Express a fit made with scale c0_ref as a start for data whose scale differs."""
    C = np.asarray(C, dtype=float)
    c0 = float(np.exp(np.log(C[C > 0]).mean()))
    log_a, b, c = theta
    return np.array([log_a + b * (math.log(c0_ref) - math.log(c0)), b, c])


def bootstrap_power_law(C, y, groups=None, n_boot: int = 200, seed: int = 0,
                        loss: str = "linear", level: float = LEVEL) -> FitResult:
    """Fit, then refit on `n_boot` resamples of the groups (runs/seeds) for intervals.

    `groups[i]` names the run point i came from. With fewer than 2 groups, log residuals are
    resampled instead (the interval then says how well the curve is pinned by its points, not
    how much it varies between seeds).
    """
    C, y = np.asarray(C, dtype=float), np.asarray(y, dtype=float)
    law, theta, c0 = fit_power_law(C, y, loss=loss)
    rng = np.random.default_rng(seed)
    labels = np.asarray(groups if groups is not None else np.zeros(len(C)))
    uniq = np.unique(labels)
    if len(uniq) >= 2:
        members = [np.flatnonzero(labels == g) for g in uniq]

        def make_xy(r):
            pick = np.concatenate([members[i] for i in r.integers(0, len(uniq), len(uniq))])
            return C[pick], y[pick]

        kind = "runs"
    else:
        fitted = law(C)
        resid = np.log(y) - np.log(fitted)

        def make_xy(r):
            return C, fitted * np.exp(r.choice(resid, size=len(resid), replace=True))

        kind = "residuals"
    samples = _bootstrap(make_xy, theta, c0, n_boot, rng, loss)
    return FitResult(law=law, n_points=len(C), samples=samples, interval=kind,
                     groups=len(uniq) if kind == "runs" else 0, level=level, y_max=float(y.max()))


# ----------------------------------------------------------------------------- curves
def _interp_logx(x, y, xq):
    """Linear interpolation in log x (power-law curves are close to straight there)."""
    return np.interp(np.log(xq), np.log(x), y)


def _mean_by_step(steps, xs, ys) -> tuple[np.ndarray, np.ndarray]:
    _, inv = np.unique(steps, return_inverse=True)
    cnt = np.bincount(inv)
    mx, my = np.bincount(inv, xs) / cnt, np.bincount(inv, ys) / cnt
    ok = np.isfinite(mx) & (mx > 0) & np.isfinite(my)
    order = np.argsort(mx[ok], kind="stable")
    return mx[ok][order], my[ok][order]


def _arrays(df: pd.DataFrame, x: str):
    return (df["step"].to_numpy(), pd.to_numeric(df[x], errors="coerce").to_numpy(float),
            df["value"].to_numpy(float))


def _mean_of_runs(runs: list) -> tuple[np.ndarray, np.ndarray]:
    """Seed mean of several runs given as (steps, x, values) arrays."""
    return _mean_by_step(*(np.concatenate(parts) for parts in zip(*runs)))


def mean_curve(df: pd.DataFrame, x: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of one (method, size) curve at each step, sorted by x (x > 0 only)."""
    return _mean_by_step(*_arrays(df, x))


def frontier_points(curves_by_size: dict, sign: int = -1) -> pd.DataFrame:
    """Logged points that no other size beats at the same compute (the compute-optimal envelope).

    `curves_by_size`: {size_key: (x, y)} with x increasing. A point of size s at compute x is kept
    when every other size whose curve covers x is no better there.
    """
    rows = []
    for s, (x, y) in curves_by_size.items():
        for xi, yi in zip(x, y):
            beaten = False
            for s2, (x2, y2) in curves_by_size.items():
                if s2 == s or len(x2) == 0 or xi < x2[0] or xi > x2[-1]:
                    continue
                other = _interp_logx(x2, y2, xi)
                if (other < yi) if sign < 0 else (other > yi):
                    beaten = True
                    break
            if not beaten:
                rows.append((s, xi, yi))
    return pd.DataFrame(rows, columns=["size_key", "x", "y"]).sort_values("x").reset_index(drop=True)


def fit_method_law(cur: pd.DataFrame, metric: str, x: str = "flops_total", n_boot: int = 200,
                   seed: int = 0, loss: str = "linear", min_sizes: int = MIN_SIZES):
    """Fit one method's law on its compute-optimal frontier; returns (FitResult, frontier) or a note.

    `cur`: the `reports.data.curves` rows of ONE method and ONE metric. The bootstrap resamples
    seeds within every size, recomputes the mean curves and the frontier, and refits.
    """
    sign = direction(metric)
    if sign >= 0:
        return None, None, f"{metric}: no power-law fit for a metric that is not lower-is-better"
    sizes = sorted(cur["size_key"].unique())
    if len(sizes) < min_sizes:
        return None, None, (f"{metric}: scaling law {NOT_IDENTIFIED}: only {len(sizes)} model size(s); "
                            f"a law over the compute-optimal frontier needs >= {min_sizes} sizes")
    if cur[x].isna().all():
        return None, None, f"{metric}: no FLOPs per image logged, so no compute axis"
    cells = {s: {r: _arrays(g, x) for r, g in cur[cur["size_key"] == s].groupby("run_id")} for s in sizes}

    def frontier_of(choice) -> pd.DataFrame:
        by_size = {s: _mean_of_runs(runs) for s, runs in choice.items()}
        return frontier_points(by_size, sign)

    full = frontier_of({s: list(c.values()) for s, c in cells.items()})
    try:
        law, theta, c0 = fit_power_law(full["x"], full["y"], loss=loss)
    except ValueError as e:
        return None, full, f"{metric}: {e} on the frontier"
    rng = np.random.default_rng(seed)
    if any(len(c) >= 2 for c in cells.values()):
        def make_xy(r):
            choice = {}
            for s, c in cells.items():
                runs = list(c.values())
                choice[s] = [runs[i] for i in r.integers(0, len(runs), len(runs))]
            f = frontier_of(choice)
            return f["x"].to_numpy(), f["y"].to_numpy()

        samples, kind = _bootstrap(make_xy, theta, c0, n_boot, rng, loss), "runs"
        groups = min(len(c) for c in cells.values())
    else:
        res = bootstrap_power_law(full["x"], full["y"], None, n_boot=n_boot, seed=seed, loss=loss)
        samples, kind, groups = res.samples, res.interval, 0
    return FitResult(law=law, n_points=len(full), samples=samples, interval=kind,
                     groups=groups, y_max=float(full["y"].max())), full, None


def isoflop_profiles(cur: pd.DataFrame, metric: str, x: str = "flops_total",
                     n_levels: int = 5, min_sizes: int = MIN_SIZES) -> pd.DataFrame:
    """Metric vs model size at a few fixed computes, for ONE method (`cur` as in fit_method_law).

    Levels are log-spaced where at least two sizes have logged points on both sides; each size is
    read by log-x interpolation of its seed-mean curve. Columns: compute, size_key, size, value,
    optimal (the best size at that compute).
    """
    sign = direction(metric) or -1
    by_size = {s: mean_curve(g, x) for s, g in cur.groupby("size_key")}
    labels = cur.groupby("size_key")["size"].first().to_dict()
    by_size = {s: c for s, c in by_size.items() if len(c[0]) >= 2}
    if len(by_size) < max(min_sizes, 2):  # with two sizes the "optimum" is one of two points
        return pd.DataFrame(columns=["compute", "size_key", "size", "value", "optimal"])
    los = sorted(c[0][0] for c in by_size.values())
    his = sorted(c[0][-1] for c in by_size.values())
    lo, hi = los[1], his[-2]  # between these at least two sizes cover every compute
    if not lo < hi:
        return pd.DataFrame(columns=["compute", "size_key", "size", "value", "optimal"])
    rows = []
    for level in np.geomspace(lo, hi, n_levels):
        vals = {s: float(_interp_logx(cx, cy, level)) for s, (cx, cy) in by_size.items()
                if cx[0] <= level <= cx[-1]}
        if len(vals) < 2:
            continue
        best = (min if sign < 0 else max)(vals, key=vals.get)
        rows += [(float(level), s, labels[s], v, s == best) for s, v in sorted(vals.items())]
    return pd.DataFrame(rows, columns=["compute", "size_key", "size", "value", "optimal"])


# ----------------------------------------------------------------------------- speed-up
def images_to_reach(x, y, target: float, sign: int = -1) -> float:
    """First x at which the curve's running best reaches `target` (log-x interpolation); nan if never.

    The running best makes a noisy curve that dips below the target once count from that dip,
    as an early-stopped run would.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    best = np.minimum.accumulate(y) if sign < 0 else np.maximum.accumulate(y)
    hit = np.flatnonzero(best <= target) if sign < 0 else np.flatnonzero(best >= target)
    if len(hit) == 0:
        return math.nan
    i = int(hit[0])
    if i == 0 or best[i] == best[i - 1]:
        return float(x[i])
    frac = (best[i - 1] - target) / (best[i - 1] - best[i])
    return float(np.exp(np.log(x[i - 1]) + frac * (np.log(x[i]) - np.log(x[i - 1]))))


def speedup_ratio(base_x, base_y, fast_x, fast_y, sign: int = -1) -> float:
    """base's final x / the x at which `fast` first reaches base's final value."""
    bx = np.asarray(base_x, dtype=float)
    order = np.argsort(bx)
    target = float(np.asarray(base_y, dtype=float)[order][-1])
    need = images_to_reach(fast_x, fast_y, target, sign)
    return float(bx[order][-1] / need) if np.isfinite(need) and need > 0 else math.nan


def speedups(cur: pd.DataFrame, runs: pd.DataFrame, metrics: Sequence[str], n_boot: int = 200,
             seed: int = 0, level: float = LEVEL, reference: str = SELFFLOW) -> pd.DataFrame:
    """Speed-up of `reference` over every other method, per size and metric, in images and FLOPs.

    Target = the baseline's final value (seed mean). Interval: percentiles over `n_boot`
    resamples of both methods' seeds (n/a when each has one seed). Ratios > 1 mean Self-Flow is
    faster; nan means it never reached the target within its budget.
    """
    cols = ["metric", "size_key", "size", "baseline", "target", "baseline_images",
            "images_needed", "speedup_images", "images_low", "images_high",
            "speedup_flops", "flops_low", "flops_high", "n_seeds_baseline", "n_seeds_ref", "note"]
    rows = []
    fpi = runs.set_index("run_id").get("flops_per_image_total")
    rng = np.random.default_rng(seed)
    q = (1 - level) / 2
    for metric in metrics:
        sign = direction(metric)
        if sign == 0:
            continue
        m = cur[cur["metric"] == metric]
        for size_key, ms in m.groupby("size_key"):
            ref_runs = {r: _arrays(g, "images") for r, g in ms[ms["method_key"] == reference].groupby("run_id")}
            if not ref_runs:
                continue
            for base in sort_methods(set(ms["method_key"]) - {reference}):
                # each baseline run's final (images, value)
                base_runs = {r: tuple(g.sort_values("step")[["images", "value"]].iloc[-1])
                             for r, g in ms[ms["method_key"] == base].groupby("run_id")}
                ratio = functools.partial(_speedup_once, base_runs, ref_runs, fpi, sign)
                b_ids, r_ids = list(base_runs), list(ref_runs)
                img, flp, target, b_images, need = ratio(b_ids, r_ids)
                lo_i = hi_i = lo_f = hi_f = math.nan
                note = "" if np.isfinite(img) else f"{method_label(reference)} did not reach the target"
                if max(len(b_ids), len(r_ids)) >= 2:
                    boot = np.array([ratio(list(rng.choice(b_ids, len(b_ids))),
                                           list(rng.choice(r_ids, len(r_ids))))[:2]
                                     for _ in range(n_boot)], dtype=float)
                    reached = np.isfinite(boot[:, 0])
                    if reached.mean() < 1:
                        note = (note + "; " if note else "") + \
                            f"target not reached in {100 * (1 - reached.mean()):.0f}% of resamples"
                    if reached.any():
                        # An unreached resample is a ratio below any reached one: count it as 0.
                        bi = np.where(reached, boot[:, 0], 0.0)
                        bf = np.where(reached, boot[:, 1], 0.0)
                        lo_i, hi_i = np.quantile(bi, [q, 1 - q])
                        lo_f, hi_f = np.quantile(bf, [q, 1 - q])
                else:
                    note = (note + "; " if note else "") + "one seed each: no interval"
                rows.append((metric, size_key, ms["size"].iloc[0], base, target, b_images, need,
                             img, lo_i, hi_i, flp, lo_f, hi_f, len(b_ids), len(r_ids), note))
    return pd.DataFrame(rows, columns=cols)


def _speedup_once(base_runs: dict, ref_runs: dict, fpi, sign: int, b_ids, r_ids):
    """(images ratio, FLOPs ratio, target, baseline images, reference images needed) for one
    choice of baseline runs `b_ids` and reference runs `r_ids` (with repeats in a resample)."""
    target = float(np.mean([base_runs[i][1] for i in b_ids]))
    b_images = float(np.mean([base_runs[i][0] for i in b_ids]))
    rx, ry = _mean_of_runs([ref_runs[i] for i in r_ids])
    need = images_to_reach(rx, ry, target, sign)
    img = b_images / need if np.isfinite(need) and need > 0 else math.nan
    return img, img * _mean_fpi(fpi, b_ids) / _mean_fpi(fpi, r_ids), target, b_images, need


def _mean_fpi(fpi, ids) -> float:
    if fpi is None:
        return math.nan
    v = pd.to_numeric(fpi.reindex(ids), errors="coerce")
    return float(v.mean())
