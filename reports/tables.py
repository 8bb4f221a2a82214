"""Tables: comparison per model size at matched budgets, exponents, speed-ups; Markdown, LaTeX, CSV.

Matched budget of a size = the smallest, over methods, of the most images any of the method's
runs reached; every run is read at its last logged value at or before that budget, so no method
is compared at a longer training than another. Runs that stopped short of it are left out (and
listed). Seeds give mean ± a Student-t 95 % interval (none from a single seed).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reports.data import final_images, mean_ci, values_at
from reports.style import method_label, sort_methods


def fmt(x, digits: int = 4) -> str:
    """Compact number: 4 significant digits, scientific outside [1e-3, 1e5)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    x = float(x)
    if x != 0 and not (1e-3 <= abs(x) < 1e5):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_ci(mean, lo, hi) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt((hi - lo) / 2, 2)}"


def fmt_interval(est, lo, hi) -> str:
    if not math.isfinite(est):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt(est)
    return f"{fmt(est)} [{fmt(lo)}, {fmt(hi)}]"


# ----------------------------------------------------------------------------- comparison
def matched_budgets(runs: pd.DataFrame, history: pd.DataFrame) -> dict:
    """{size_key: budget in images} (see the module docstring)."""
    reached = runs["run_id"].map(final_images(history))
    per_method = runs.assign(reached=reached).groupby(["size_key", "method_key"])["reached"].max()
    return {s: float(g.min()) for s, g in per_method.groupby(level=0)}


def comparison(runs: pd.DataFrame, history: pd.DataFrame, level: float = 0.95):
    """(summary, per_run, excluded): summary has one row per size × method × metric.

    summary columns: size, size_key, budget_images, method_key, method, metric, n_seeds, mean,
    ci_low, ci_high, std, values (the seeds' values, ';'-separated, as logged).
    per_run: run_id, size, method_key, seed, metric, step, value (what the summary averaged).
    """
    budgets = matched_budgets(runs, history)
    reached = runs["run_id"].map(final_images(history))
    keep = reached >= runs["size_key"].map(budgets)
    excluded = runs.loc[~keep, ["run_id", "method_key", "size", "seed_key"]].assign(
        images=reached[~keep].to_numpy())
    kept = runs[keep]
    vals = values_at(history, {r: budgets[s] for r, s in zip(kept["run_id"], kept["size_key"])})
    per_run = vals.merge(kept[["run_id", "size", "size_key", "method_key", "seed_key"]], on="run_id")
    per_run = per_run.rename(columns={"seed_key": "seed"})
    rows = []
    for (size_key, method_key, metric), g in per_run.groupby(["size_key", "method_key", "metric"]):
        g = g.sort_values("seed")
        mean, lo, hi, n = mean_ci(g["value"].to_numpy(), level)
        std = float(g["value"].std(ddof=1)) if n > 1 else math.nan
        rows.append(dict(size=g["size"].iloc[0], size_key=size_key, budget_images=budgets[size_key],
                         method_key=method_key, method=method_label(method_key), metric=metric,
                         n_seeds=n, mean=mean, ci_low=lo, ci_high=hi, std=std,
                         values=";".join(repr(float(v)) for v in g["value"])))
    summary = pd.DataFrame(rows)
    if len(summary):
        order = {m: i for i, m in enumerate(sort_methods(summary["method_key"]))}
        summary = summary.sort_values(["size_key", "metric", "method_key"],
                                      key=lambda c: c.map(order) if c.name == "method_key" else c)
    cols = ["run_id", "size", "size_key", "method_key", "seed", "metric", "step", "value"]
    return summary.reset_index(drop=True), per_run[cols], excluded


def comparison_views(summary: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One (title, metric × method table of 'mean ± half-width' strings) per size."""
    views = []
    for size_key, g in summary.groupby("size_key", sort=True):
        methods = sort_methods(g["method_key"])
        table = g.assign(cell=[fmt_ci(m, lo, hi) for m, lo, hi in zip(g["mean"], g["ci_low"], g["ci_high"])])
        wide = table.pivot(index="metric", columns="method_key", values="cell").reindex(columns=methods)
        seeds = table.groupby("method_key")["n_seeds"].max().reindex(methods)
        wide.columns = [f"{method_label(m)} (n={int(seeds[m])})" for m in methods]
        wide = wide.fillna("—").reset_index()
        title = f"{g['size'].iloc[0]} — matched budget {fmt(g['budget_images'].iloc[0])} images"
        views.append((title, wide))
    return views


# ----------------------------------------------------------------------------- renderers
def to_markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_ESC = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
              "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def _tex(s) -> str:
    s = "".join(_LATEX_ESC.get(ch, ch) for ch in str(s))
    return s.replace("±", r"$\pm$").replace("—", "--").replace("×", r"$\times$")


def to_latex(df: pd.DataFrame, caption: str = "") -> str:
    """A booktabs tabular (needs \\usepackage{booktabs})."""
    spec = "l" + "r" * (len(df.columns) - 1)
    out = [r"\begin{table}[t]", r"\centering"]
    if caption:
        out.append(r"\caption{" + _tex(caption) + "}")
    out += [r"\begin{tabular}{" + spec + "}", r"\toprule",
            " & ".join(_tex(c) for c in df.columns) + r" \\", r"\midrule"]
    out += [" & ".join(_tex(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- fits, speed-ups
def exponents_table(fit_rows: list[dict]) -> pd.DataFrame:
    """fit_rows: dicts with metric, method_key, result (FitResult) -> a display table."""
    rows = []
    for r in fit_rows:
        res = r["result"]
        rows.append({
            "metric": r["metric"], "method": method_label(r["method_key"]),
            "b (exponent)": res.ci_text("b", fmt),
            "c (floor)": res.ci_text("c", fmt),
            "a": res.ci_text("a", fmt),
            "points": res.n_points,
            "interval": (f"95% bootstrap over runs ({res.groups} per size)" if res.interval == "runs"
                         else "95% bootstrap over residuals (one run per size)"),
        })
    return pd.DataFrame(rows)


def exponents_csv(fit_rows: list[dict]) -> pd.DataFrame:
    rows = []
    for r in fit_rows:
        res = r["result"]
        row = {"metric": r["metric"], "method_key": r["method_key"], "n_points": res.n_points,
               "interval": res.interval, "n_boot": len(res.samples)}
        for p in "abc":
            lo, hi = res.ci(p)
            row.update({p: getattr(res.law, p), f"{p}_low": lo, f"{p}_high": hi,
                        f"{p}_identified": res.identified(p)})
        rows.append(row)
    return pd.DataFrame(rows)


def speedup_table(sp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "metric": sp["metric"], "size": sp["size"],
        "baseline": sp["baseline"].map(method_label),
        "target (baseline final)": sp["target"].map(fmt),
        "Self-Flow images to target": sp["images_needed"].map(fmt),
        "speed-up, images": [fmt_interval(*v) for v in zip(sp["speedup_images"], sp["images_low"], sp["images_high"])],
        "speed-up, FLOPs": [fmt_interval(*v) for v in zip(sp["speedup_flops"], sp["flops_low"], sp["flops_high"])],
        "note": sp["note"],
    })


def write_all(tables: dict[str, tuple[pd.DataFrame, pd.DataFrame, str]], out_dir: Path) -> dict:
    """tables: name -> (display df, csv df, caption). Writes <name>.md/.tex/.csv; returns paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (display, raw, caption) in tables.items():
        (out_dir / f"{name}.md").write_text((f"**{caption}**\n\n" if caption else "") + to_markdown(display))
        (out_dir / f"{name}.tex").write_text(to_latex(display, caption))
        raw.to_csv(out_dir / f"{name}.csv", index=False)
        paths[name] = out_dir / f"{name}.csv"
    return paths


def terminal_summary(summary: pd.DataFrame, metrics: list[str]) -> str:
    """A plain-text table for the terminal: method × size with a few headline metrics."""
    if summary.empty:
        return "(no comparable runs)\n"
    rows = []
    order = {m: i for i, m in enumerate(sort_methods(summary["method_key"]))}
    groups = sorted(summary.groupby(["size_key", "method_key"]), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    for (size_key, mk), g in groups:
        cells = g.set_index("metric")
        row = [g["size"].iloc[0], method_label(mk), str(int(g["n_seeds"].max())), fmt(g["budget_images"].iloc[0])]
        for m in metrics:
            row.append(fmt_ci(*cells.loc[m, ["mean", "ci_low", "ci_high"]]) if m in cells.index else "—")
        rows.append(row)
    head = ["size", "method", "seeds", "images"] + metrics
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"


def headline_metrics(metrics) -> list[str]:
    """At most three metrics for the terminal: a mid-t validation loss, the first FID, a probe."""
    metrics = sorted(metrics)
    pick = []
    vals = [m for m in metrics if m.startswith("val/loss")]
    if vals:
        pick.append(min(vals, key=lambda m: abs(_t_of(m) - 0.5)))
    pick += [m for m in metrics if m.startswith("eval/fid")][:1]
    probes = [m for m in metrics if m.startswith("eval/probe_acc_block")]
    if probes:
        pick.append(max(probes, key=lambda m: int("".join(ch for ch in m if ch.isdigit()) or 0)))
    return pick or [m for m in metrics if m.startswith("train/loss")][:1]


def _t_of(metric: str) -> float:
    try:
        return float(metric.rsplit("_t", 1)[1])
    except (IndexError, ValueError):
        return np.inf
