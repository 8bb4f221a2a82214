"""The verdict: does this run agree with each claim of the paper it can test?

Each claim compares a treatment with a baseline on one metric, in an expected direction.
For every model size the effect is measured twice:

- at equal images seen: both methods read at the size's matched budget (the last logged value at
  or before it, as in the comparison table);
- at equal training FLOPs (auxiliary forwards included): both read at the same compute, the
  smaller of the two methods' final computes, by log-x interpolation between logged points.

The effect is treatment − baseline, paired by seed (only seeds both methods ran), with a
Student-t 95 % interval over the seed differences. One word sums it up:

- "agrees": the interval excludes 0 on the side the paper predicts;
- "disagrees": it excludes 0 on the other side;
- "not resolved": it contains 0, or fewer than 2 paired seeds give no interval, or either method's
  mean class consistency at that point is below MIN_CLASS_CONSISTENCY (untrained models: the
  row's note says so).

The headline row of a claim is the largest size that has the two methods (the paper's claims are
about its largest models); the other sizes are in the details table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.data import PROBE, mean_ci
from reports.fits import _interp_logx
from reports.tables import fmt, matched_budgets

AGREES, DISAGREES, UNRESOLVED = "agrees", "disagrees", "not resolved"
# Below this class consistency (chance: 1 / classes) a model's samples are not yet its class's:
# comparing such models compares noise, so the verdict is "not resolved" whatever the interval says.
MIN_CLASS_CONSISTENCY = 0.5


@dataclass(frozen=True)
class Claim:
    key: str
    text: str  # what the paper claims, in a few words
    source: str  # where in the paper
    treatment: str  # method key
    baseline: str  # method key
    metric: str  # "gen" (the primary generation metric), "probe" (early-block probe) or a metric name
    better: int  # +1: the treatment should be higher; -1: lower
    paper: str  # the paper's own numbers


CLAIMS = (
    Claim("sf_vs_vanilla", "Self-Flow beats vanilla flow matching", "Table 1", "selfflow", "vanilla", "gen", -1,
          "FID 5.70 vs 8.3 (vanilla at 7M steps), SiT-XL/2"),
    Claim("sf_vs_repa", "Self-Flow beats REPA", "Table 1", "selfflow", "repa", "gen", -1,
          "FID 5.70 vs 5.89 at 4M steps (REPA leads before ~3M)"),
    Claim("sf_vs_sra", "Self-Flow beats SRA", "Table 1", "selfflow", "sra", "gen", -1,
          "FID 5.70 vs 7.27 at 4M steps"),
    Claim("dts_vs_vanilla", "Dual timesteps alone (no L_rep) beat vanilla", "Fig. 2b", "selfflow-no-rep", "vanilla",
          "gen", -1, "FID ≈ 12 vs 14 at 600K (read off the figure)"),
    Claim("no_rep_costs", "Removing L_rep hurts", "§4.4", "selfflow-no-rep", "selfflow", "gen", +1,
          "> 4 FID worse"),
    Claim("no_mask_costs", "Removing masking hurts", "§4.4", "selfflow-no-mask", "selfflow", "gen", +1,
          "> 1 FID worse"),
    Claim("no_rep_worse_than_no_mask", "No L_rep costs more than no masking", "§4.4", "selfflow-no-rep",
          "selfflow-no-mask", "gen", +1, "> 4 vs > 1 FID"),
    Claim("probe_early_block", "Self-Flow's early-block probe beats vanilla's", "Fig. 4b", "selfflow", "vanilla",
          "probe", +1, "block 8 of 28: ≈ 55 % vs 15 % top-1 at 2M steps"),
)


def generation_metric(metrics) -> str | None:
    """The metric generation claims are judged on: a FID if logged (the paper's), else the
    validation loss at fixed t."""
    metrics = sorted(metrics)
    for prefix in ("eval/fid", "eval/fd", "val/loss"):
        hit = [m for m in metrics if m.startswith(prefix)]
        if hit:
            return min(hit, key=len)
    return None


def paper_block(depth: int) -> int:
    """The paper's early block, 0.3·depth (block 8 of SiT-XL's 28), 1-indexed, as Self-Flow aligns."""
    from suite.models.presets import default_layers

    return default_layers(int(depth))[0]


def _depth_of(runs: pd.DataFrame) -> pd.Series:
    for col in ("model.depth_resolved", "model.depth"):
        if col in runs and pd.to_numeric(runs[col], errors="coerce").notna().all():
            return pd.to_numeric(runs[col], errors="coerce")
    return pd.Series(np.nan, index=runs.index)


def probe_metric(runs: pd.DataFrame, metrics) -> str | None:
    """eval/probe_acc_block<l> at the paper's block for these runs' depth (or the nearest probed)."""
    depth = _depth_of(runs).dropna()
    probed = sorted(int(PROBE.match(m).group(1)) for m in metrics if PROBE.match(m))
    if depth.empty or not probed:
        return None
    want = paper_block(int(depth.iloc[0]))
    best = min(probed, key=lambda b: (abs(b - want), b))
    return f"eval/probe_acc_block{best}"


def judge(diffs, better: int, level: float = 0.95) -> dict:
    """Effect (mean of paired differences), its interval and the one-word verdict."""
    mean, lo, hi, n = mean_ci(diffs, level)
    if n < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        word = UNRESOLVED
    elif lo > 0 or hi < 0:
        word = AGREES if (mean > 0) == (better > 0) else DISAGREES
    else:
        word = UNRESOLVED
    return dict(effect=mean, ci_low=lo, ci_high=hi, n_pairs=n, verdict=word)


def _value_at(g: pd.DataFrame, x: str, at: float) -> float:
    """One run's metric at compute `at` (log-x interpolation; nan outside its logged range)."""
    g = g.dropna(subset=[x]).sort_values(x)
    g = g[g[x] > 0]
    if g.empty or at < g[x].iloc[0] * (1 - 1e-9) or at > g[x].iloc[-1] * (1 + 1e-9):
        return math.nan
    if len(g) == 1:
        return float(g["value"].iloc[0])
    return float(_interp_logx(g[x].to_numpy(float), g["value"].to_numpy(float), at))


def _paired(a: dict, b: dict) -> list[float]:
    return [a[s] - b[s] for s in sorted(set(a) & set(b)) if math.isfinite(a[s]) and math.isfinite(b[s])]


def claim_rows(claim: Claim, runs: pd.DataFrame, cur: pd.DataFrame, level: float = 0.95) -> list[dict]:
    """One row per size that has both methods: the effect at equal images and at equal FLOPs."""
    rows = []
    budgets = matched_budgets(runs, cur)  # cur has the run_id and step columns of a history
    for size_key, rs in runs.groupby("size_key"):
        t_runs, b_runs = rs[rs["method_key"] == claim.treatment], rs[rs["method_key"] == claim.baseline]
        if t_runs.empty or b_runs.empty:
            continue
        metrics = cur.loc[cur["run_id"].isin(rs["run_id"]), "metric"].unique()
        metric = (generation_metric(metrics) if claim.metric == "gen" else
                  probe_metric(rs, metrics) if claim.metric == "probe" else claim.metric)
        if metric is None:
            continue
        cm = cur[(cur["metric"] == metric) & cur["run_id"].isin(rs["run_id"])]
        by_run = {r: g for r, g in cm.groupby("run_id")}

        def at_images(sel):
            out = {}
            for r, seed in zip(sel["run_id"], sel["seed_key"]):
                g = by_run.get(r)
                if g is None:
                    continue
                g = g[g["step"] <= budgets.get(size_key, math.inf)]
                if len(g):
                    out[seed] = float(g.sort_values("step")["value"].iloc[-1])
            return out

        def final_flops(sel):
            return [float(by_run[r]["flops_total"].max()) for r in sel["run_id"] if r in by_run]

        def at_flops(sel, f):
            return {seed: _value_at(by_run[r], "flops_total", f)
                    for r, seed in zip(sel["run_id"], sel["seed_key"]) if r in by_run}

        eq_img = judge(_paired(at_images(t_runs), at_images(b_runs)), claim.better, level)
        cc = [m for m in cur.loc[cur["run_id"].isin(rs["run_id"]), "metric"].unique() if "class_consistency" in m]
        trained = math.nan
        if cc:
            ccm = cur[(cur["metric"] == sorted(cc)[0]) & cur["run_id"].isin(rs["run_id"])]
            cc_by_run = dict(tuple(ccm.groupby("run_id")))
            means = []
            for sel in (t_runs, b_runs):
                vals = []
                for r in sel["run_id"]:
                    g = cc_by_run.get(r)
                    if g is not None:
                        g = g[g["step"] <= budgets.get(size_key, math.inf)].sort_values("step")
                        if len(g):
                            vals.append(float(g["value"].iloc[-1]))
                means.append(float(np.mean(vals)) if vals else math.nan)
            trained = min(means)
        fl = final_flops(t_runs) + final_flops(b_runs)
        flops = min(fl) if fl and all(math.isfinite(v) for v in fl) else math.nan
        eq_flops = (judge(_paired(at_flops(t_runs, flops), at_flops(b_runs, flops)), claim.better, level)
                    if math.isfinite(flops) else judge([], claim.better, level))
        note = ""
        if math.isfinite(trained) and trained < MIN_CLASS_CONSISTENCY:
            note = (f"untrained: class consistency {trained:.2f} < {MIN_CLASS_CONSISTENCY} "
                    "(a comparison of noise)")
            eq_img["verdict"] = eq_flops["verdict"] = UNRESOLVED
        rows.append(dict(claim=claim.key, size_key=size_key, size=rs["size"].iloc[0], metric=metric,
                         class_consistency=trained, note=note,
                         images=budgets.get(size_key, math.nan), flops=flops,
                         **{f"img_{k}": v for k, v in eq_img.items()},
                         **{f"flops_{k}": v for k, v in eq_flops.items()}))
    return rows


def verdicts(runs: pd.DataFrame, cur: pd.DataFrame, claims=CLAIMS, level: float = 0.95):
    """(headline, details): headline has one row per testable claim (its largest size), details
    one row per claim × size. Claims whose two methods never ran at a common size are left out."""
    details = pd.DataFrame([r for c in claims for r in claim_rows(c, runs, cur, level)])
    if details.empty:
        return details, details
    last = details.sort_values("size_key").groupby("claim").tail(1).set_index("claim")
    by_key = {c.key: c for c in claims}
    head = []
    for key in [c.key for c in claims if c.key in last.index]:
        c, r = by_key[key], last.loc[key]
        head.append({
            "claim": f"{c.text} ({c.source})",
            "paper": c.paper,
            "metric (size)": f"{r['metric']} ({r['size']})",
            "equal images": effect_text(r, "img"),
            "verdict (images)": r["img_verdict"],
            "equal FLOPs": effect_text(r, "flops"),
            "verdict (FLOPs)": r["flops_verdict"],
            "seeds": int(r["img_n_pairs"]),
            "note": r["note"],
        })
    return pd.DataFrame(head), details


def effect_text(row, which: str) -> str:
    """'+1.23 [0.4, 2.1]' (treatment − baseline, 95 % interval over paired seeds)."""
    e, lo, hi = row[f"{which}_effect"], row[f"{which}_ci_low"], row[f"{which}_ci_high"]
    if not math.isfinite(e):
        return "n/a"
    s = f"{e:+.3g}"
    if math.isfinite(lo) and math.isfinite(hi):
        s += f" [{fmt(lo, 3)}, {fmt(hi, 3)}]"
    return s
