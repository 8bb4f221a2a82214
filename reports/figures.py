"""Figures (matplotlib, Agg): convergence, scaling-law fits, isoFLOP profiles, probe vs block.

Every figure takes method names and colours from `reports.style`, labels its axes with units, and
uses log axes where the law is a power. `save` writes PNG and SVG and returns the PNG bytes the
HTML page embeds.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.data import PROBE, direction
from reports.fits import mean_curve
from reports.style import method_color, method_label, sort_methods
from reports.tables import fmt

X_LABELS = {"images": "images seen", "flops_total": "training FLOPs (incl. auxiliary forwards)",
            "flops_backbone": "training FLOPs (backbone only)"}


def y_label(metric: str) -> str:
    if metric.startswith("eval/probe_acc") or "class_consistency" in metric or "caption_consistency" in metric:
        return f"{metric} (accuracy, 0–1)"
    return metric


def _compact(v, _pos=None) -> str:
    if v == 0:
        return "0"
    if 1e-2 <= abs(v) < 1e5:
        return f"{v:.3g}"
    exp = math.floor(math.log10(abs(v)))
    return f"{v / 10 ** exp:.2g}e{exp}"


def log_axis(ax, which: str) -> None:
    """Short labels on a log axis; under ~1.5 decades, about five rounded ticks instead of
    decades (which would leave one tick or none). Call after the data are plotted."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    lo, hi = min(lo, hi), max(lo, hi)
    if lo > 0 and hi / lo < 30:
        ticks = sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 6)[1:-1]})
        axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    else:
        axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_compact))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _log_y(metric: str, values) -> bool:
    v = np.asarray(values, dtype=float)
    return direction(metric) < 0 and len(v) > 0 and bool(np.all(v[np.isfinite(v)] > 0))


def save(fig, out_dir: Path, name: str) -> bytes:
    """Write <name>.png and <name>.svg; return the PNG bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    (out_dir / f"{name}.png").write_bytes(buf.getvalue())
    fig.savefig(out_dir / f"{name}.svg", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _seed_band(g: pd.DataFrame, x: str):
    """Seed-mean curve with the min–max over seeds at each step."""
    agg = g.groupby("step").agg(x=(x, "mean"), y=("value", "mean"), lo=("value", "min"),
                                hi=("value", "max"), n=("value", "size")).sort_values("x")
    return agg[np.isfinite(agg["x"]) & (agg["x"] > 0)]


def convergence(cur: pd.DataFrame, metric: str):
    """Metric vs images seen (left) and vs training FLOPs (right); one row per size, one line per method."""
    m = cur[cur["metric"] == metric]
    sizes = sorted(m["size_key"].unique())
    fig, axes = plt.subplots(len(sizes), 2, figsize=(10, 3.2 * len(sizes)), squeeze=False)
    log_y = _log_y(metric, m["value"])
    for row, size_key in enumerate(sizes):
        ms = m[m["size_key"] == size_key]
        for col, x in enumerate(("images", "flops_total")):
            ax = axes[row, col]
            for mk in sort_methods(ms["method_key"]):
                band = _seed_band(ms[ms["method_key"] == mk], x)
                if band.empty:
                    continue
                n = int(ms[ms["method_key"] == mk]["run_id"].nunique())
                ax.plot(band["x"], band["y"], color=method_color(mk), lw=1.8, marker="o" if len(band) < 8 else None, ms=4,
                        label=f"{method_label(mk)} ({n} seed{'s' if n > 1 else ''})")  # markers: sparse evaluations stay visible
                if n > 1:
                    ax.fill_between(band["x"], band["lo"], band["hi"], color=method_color(mk), alpha=0.2, lw=0)
            ax.set_xscale("log")
            log_axis(ax, "x")
            if log_y:
                ax.set_yscale("log")
                log_axis(ax, "y")
            ax.set_xlabel(X_LABELS[x])
            ax.set_ylabel(y_label(metric))
            ax.set_title(f"{ms['size'].iloc[0]}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle(f"{metric} during training (mean over seeds, band: min–max)", fontsize=11)
    fig.tight_layout()
    return fig


def scaling(cur: pd.DataFrame, metric: str, fits_by_method: dict, x: str = "flops_total"):
    """Log-log: every size's curve (thin), the frontier points, the fitted law and its 95 % band."""
    m = cur[cur["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for mk in sort_methods(m["method_key"]):
        color = method_color(mk)
        mm = m[m["method_key"] == mk]
        for _, g in mm.groupby("size_key"):
            cx, cy = mean_curve(g, x)
            ax.plot(cx, cy, color=color, lw=0.8, alpha=0.35)
        entry = fits_by_method.get(mk)
        if entry is None:
            continue
        res, front = entry
        ax.scatter(front["x"], front["y"], color=color, s=18, zorder=3)
        grid = np.geomspace(front["x"].min(), front["x"].max(), 100)
        lo, hi = res.band(grid)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.18, lw=0)
        blo, bhi = res.ci("b")
        ci = f" [{blo:.3g}, {bhi:.3g}]" if math.isfinite(blo) else ""
        ax.plot(grid, res.law(grid), color=color, lw=2,
                label=f"{method_label(mk)}: b = {res.law.b:.3g}{ci}, c = {res.law.c:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel(X_LABELS[x])
    ax.set_ylabel(y_label(metric))
    ax.set_title(f"{metric}: fit a·C^(−b) + c on the compute-optimal frontier\n"
                 "(thin: each size; dots: frontier points; band: 95 % bootstrap)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def isoflop(iso_by_method: dict, metric: str):
    """One panel per method: metric vs parameters at fixed compute; stars mark the best size."""
    methods = [mk for mk in sort_methods(iso_by_method) if not iso_by_method[mk].empty]
    fig, axes = plt.subplots(1, max(len(methods), 1), figsize=(4.5 * max(len(methods), 1), 3.8),
                             squeeze=False, sharey=True)
    for ax, mk in zip(axes[0], methods):
        iso = iso_by_method[mk]
        levels = sorted(iso["compute"].unique())
        for i, level in enumerate(levels):
            prof = iso[iso["compute"] == level].sort_values("size_key")
            alpha = 0.35 + 0.65 * (i + 1) / len(levels)
            ax.plot(prof["size_key"], prof["value"], "-o", color=method_color(mk), alpha=alpha,
                    ms=4, label=f"C = {level:.2e} FLOPs")
            best = prof[prof["optimal"]]
            ax.scatter(best["size_key"], best["value"], marker="*", s=140, color=method_color(mk),
                       edgecolor="black", zorder=4)
        ax.set_xscale("log")
        log_axis(ax, "x")
        if _log_y(metric, iso["value"]):
            ax.set_yscale("log")
            log_axis(ax, "y")
        ax.set_xlabel("model size (parameters)")
        ax.set_title(method_label(mk), color=method_color(mk))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(y_label(metric))
    fig.suptitle(f"isoFLOP profiles of {metric} (★: compute-optimal size)", fontsize=11)
    fig.tight_layout()
    return fig


def probe(summary: pd.DataFrame, paper_blocks: dict | None = None):
    """Linear-probe accuracy vs block (1-indexed) per method, one panel per size, at the matched budget.

    `paper_blocks`: {size_key: block} marks the paper's early block (0.3·depth) with a dashed line.
    """
    p = summary[summary["metric"].str.match(PROBE.pattern)].copy()
    p["block"] = p["metric"].str.extract(PROBE.pattern)[0].astype(int)
    sizes = sorted(p["size_key"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.8), squeeze=False, sharey=True)
    for ax, size_key in zip(axes[0], sizes):
        ps = p[p["size_key"] == size_key]
        for mk in sort_methods(ps["method_key"]):
            g = ps[ps["method_key"] == mk].sort_values("block")
            err = np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.errorbar(g["block"], g["mean"], yerr=err, color=method_color(mk), marker="o",
                        capsize=3, label=method_label(mk))
        if paper_blocks and size_key in paper_blocks:
            ax.axvline(paper_blocks[size_key], color="k", ls="--", lw=0.8, alpha=0.6)
            ax.annotate("paper's block (0.3·depth)", (paper_blocks[size_key], 0.02), xycoords=("data", "axes fraction"),
                        fontsize=7, rotation=90, ha="right", va="bottom")
        ax.set_xlabel("block (1-indexed)")
        ax.set_title(f"{ps['size'].iloc[0]} — {fmt(ps['budget_images'].iloc[0])} images", fontsize=10)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("linear-probe accuracy (0–1)")
    fig.suptitle("Linear probe per block (mean over seeds ± 95 % interval)", fontsize=11)
    fig.tight_layout()
    return fig
