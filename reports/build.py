"""`build_report`: MLflow runs -> tables (md/tex/csv), figures (png/svg) and one HTML page.

Layout of `out_dir`:
  report.html                     self-contained (figures embedded)
  tables/comparison.{md,tex,csv}  per size at matched budgets, every metric, seeds' mean ± 95 % CI
  tables/comparison_runs.csv      the per-run values the comparison averaged (as logged)
  tables/exponents.{md,tex,csv}   scaling-law fits with bootstrap intervals
  tables/frontier.{md,tex,csv}    compute-optimal size at each isoFLOP level
  tables/speedup.{md,tex,csv}     Self-Flow's speed-up to each baseline's final value
  tables/configs.csv              one row per run: tags and the flattened config
  figures/*.png, *.svg
Whatever the data cannot support (one size: no scaling law; no Self-Flow: no speed-up) becomes
a note on the page instead of an error.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import platform
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from reports import figures, fits, samples, tables, verdict
from reports.bench import add_cost_section
from reports.media import add_media
from reports.data import PROBE, annotate, curves, fit_metric
from reports.html import Page, table_html
from reports.mlflow_io import load_runs
from reports.style import SELFFLOW, method_label, sort_methods

# Convergence figures: losses and evaluations; training diagnostics (lr, grad norm, throughput,
# mask fractions...) stay in the tables only.
_CURVE = re.compile(r"^(train/loss|val/|eval/)")
_BOOKKEEPING = re.compile(r"^(name|run_dir|train\.run_dir|train\.runs_root|tracking\.|train\.device|train\.progress)")
PACKAGES = ("selfflow-suite", "torch", "mlflow", "numpy", "pandas", "scipy", "matplotlib")


def slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("_")


def software_versions() -> pd.DataFrame:
    rows = [("python", platform.python_version())]
    for pkg in PACKAGES:
        try:
            rows.append((pkg, _md.version(pkg)))
        except _md.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    rows.append(("platform", platform.platform()))
    return pd.DataFrame(rows, columns=["package", "version"])


def _cell(v) -> str:
    if isinstance(v, float):
        return tables.fmt(v) if not v.is_integer() or abs(v) >= 1e5 else str(int(v))
    return "" if v is None else str(v)


def mixed_cells(runs: pd.DataFrame) -> list[str]:
    """Method × size cells whose runs differ in more than the seed (an Optuna study, say): their
    seed statistics mix configurations, which the page must say."""
    keys = [c for c in runs.columns if "." in c and "/" not in c and not _BOOKKEEPING.match(c) and c != "seed"]
    out = []
    for (mk, _), g in runs.groupby(["method_key", "size_key"]):
        differ = [c for c in keys if g[c].map(str).nunique() > 1]
        if differ:
            out.append(f"{method_label(mk)} {g['size'].iloc[0]}: {', '.join(sorted(differ)[:6])}"
                       + (" …" if len(differ) > 6 else ""))
    return out


def _config_tables(runs: pd.DataFrame):
    """(per-run table of what varies, table of what all runs share)."""
    fixed = {"run_id", "experiment", "run_name", "mlflow_status", "start_time", "method_key",
             "size_key", "size", "seed_key"}
    metric_cols = {c for c in runs.columns if "/" in c}
    cols = [c for c in runs.columns if c not in fixed and c not in metric_cols]
    varying, common = [], []
    for c in cols:
        values = runs[c].map(str)
        (varying if values.nunique() > 1 and not _BOOKKEEPING.match(c) else common).append(c)
    head = ["run_name", "method_key", "size", "seed_key"]
    varying = [c for c in varying if c not in ("method", "seed")]  # shown by the head columns
    per_run = runs[head + sorted(varying)].rename(columns={"method_key": "method", "seed_key": "seed"})
    per_run = per_run.apply(lambda col: col.map(_cell))
    shared = pd.DataFrame([(c, "; ".join(sorted(runs[c].map(str).unique()))) for c in sorted(common)],
                          columns=["key", "value"])
    return per_run, shared


def _grid_captions(summary: pd.DataFrame) -> dict:
    """{(method_key, size_key): 'class consistency 0.84 · FID 3.1'} from the comparison summary."""
    out = {}
    if summary.empty:
        return out
    for (mk, sk), g in summary.groupby(["method_key", "size_key"]):
        parts = []
        for pattern, label in (("class_consistency", "class consistency"), ("eval/fid", "FID")):
            hit = g[g["metric"].str.contains(pattern, regex=False)].sort_values("metric")
            if len(hit):
                parts.append(f"{label} {tables.fmt_ci(hit['mean'].iloc[0], hit['ci_low'].iloc[0], hit['ci_high'].iloc[0])}")
        out[(mk, sk)] = " · ".join(parts)
    return out


def build_report(tracking_uri: str, out_dir, sweep: str | None = None,
                 experiment: str | None = None, *, n_boot: int = 200, seed: int = 0,
                 echo: Callable[[str], None] = print, preface: list[str] | None = None) -> Path:
    """Build the report of one sweep and/or experiment; returns the path of report.html.

    `preface`: lines shown first in the overview (the demo's wall-clock time and machine, say).
    """
    raw_runs, history = load_runs(tracking_uri, experiment=experiment, sweep=sweep)
    runs = annotate(raw_runs)
    cur = curves(history, runs)
    out = Path(out_dir)
    fig_dir, tab_dir = out / "figures", out / "tables"
    tab_dir.mkdir(parents=True, exist_ok=True)
    metrics = sorted(history["metric"].unique())
    methods = sort_methods(runs["method_key"])
    sizes = runs.drop_duplicates("size_key").sort_values("size_key")
    what = " / ".join(x for x in (experiment and f"experiment {experiment}", sweep and f"sweep {sweep}") if x)
    page = Page(f"Self-Flow suite report — {what or 'all runs'}")

    # ---------------------------------------------------------------- overview
    sec = page.section("Overview", "overview")
    for line in preface or []:
        sec.para(line)
    sec.para(f"Tracking store: {tracking_uri}. Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}.")
    sec.para(f"{len(runs)} runs; methods: {', '.join(method_label(m) for m in methods)}; "
             f"sizes: {', '.join(sizes['size'])}; {len(metrics)} metrics logged.")
    sec.para("Compute of a logged point = images seen × flops_per_image_total (forward+backward of "
             "the backbone plus auxiliary forwards: REPA's encoder, the EMA teacher of SRA/Self-Flow).")
    status = runs["status"].astype(str) if "status" in runs else pd.Series("", index=runs.index)
    unfinished = runs[(status != "finished") | (runs["mlflow_status"] != "FINISHED")]
    if len(unfinished):
        sec.note(f"{len(unfinished)} run(s) not finished (status tag / MLflow status): "
                 + ", ".join(f"{r.run_name} ({r.status}/{r.mlflow_status})" for r in unfinished.itertuples()))
    mixed = mixed_cells(runs)
    if mixed:
        sec.note("Runs grouped as one method and size differ in more than their seed, so their "
                 "'seed' means and intervals mix configurations: " + "; ".join(mixed))
    if "flops_per_image_total" not in runs or runs["flops_per_image_total"].isna().all():
        sec.note("No flops_per_image_total param logged: FLOPs axes, scaling laws and FLOP speed-ups are unavailable.")

    summary, per_run, excluded = tables.comparison(runs, history)

    # ---------------------------------------------------------------- samples (pictures first)
    sec = page.section("Samples", "samples")
    sec.para("Each method × size: the latest sample grid of its first seed (EMA model, the run's "
             "sampler), with the seeds' mean class consistency and FID at the matched budget beneath.")
    grid_html, shown = samples.grids_html(runs, tracking_uri, _grid_captions(summary))
    if shown:
        sec.raw(grid_html)
    if not add_media(sec, runs, tracking_uri) and not shown:  # video GIFs, audio players and spectrograms
        sec.note("No sample grids logged (tracking.log_samples off, or no artifacts reachable).")

    # ---------------------------------------------------------------- verdict
    sec = page.section("Verdict: the paper's claims on this run", "verdict")
    head, details = verdict.verdicts(runs, cur)
    sec.para("Effect = treatment − baseline on the metric named (FID: negative is better; probe "
             "accuracy: positive is better), mean over seeds paired by seed, with its 95 % Student-t "
             "interval. agrees / disagrees: the interval excludes 0 on the paper's side / the other "
             "side; not resolved: it contains 0, or fewer than 2 paired seeds. Headline: the largest "
             "size with both methods; equal FLOPs: both read at the smaller final training compute "
             "(auxiliary forwards included), interpolated between logged points.")
    if head.empty:
        sec.note("No claim of the paper is testable here: no method pair of a claim ran at a common size.")
    else:
        sec.table(head)
        disp = details.assign(**{
            "equal images": [verdict.effect_text(r, "img") for _, r in details.iterrows()],
            "equal FLOPs": [verdict.effect_text(r, "flops") for _, r in details.iterrows()]})
        disp = disp[["claim", "size", "metric", "images", "equal images", "img_verdict", "flops",
                     "equal FLOPs", "flops_verdict", "img_n_pairs", "note"]]
        disp = disp.assign(images=disp["images"].map(tables.fmt), flops=disp["flops"].map(tables.fmt))
        sec.details("Every size", table_html(disp))
        tables.write_all({"verdict": (head, details, "Verdict on the paper's claims")}, tab_dir)

    # ---------------------------------------------------------------- comparison
    sec = page.section("Comparison at matched budgets", "comparison")
    sec.para("Per model size, every method is read at the same number of images seen (the smallest "
             "final budget among the methods); cells are the mean over seeds ± the half-width of a "
             "Student-t 95 % interval (no interval from a single seed).")
    if len(excluded):
        sec.note("Runs that stopped before their size's matched budget are left out: "
                 + ", ".join(f"{r.method_key}/{r.size}/seed {r.seed_key} ({r.images:.0f} images)"
                             for r in excluded.itertuples()))
    views = tables.comparison_views(summary)
    md, tex = [], []
    for title, view in views:
        sec.table(view, title)
        md.append(f"### {title}\n\n" + tables.to_markdown(view))
        tex.append(tables.to_latex(view, title))
    (tab_dir / "comparison.md").write_text("\n".join(md))
    (tab_dir / "comparison.tex").write_text("\n".join(tex))
    summary.to_csv(tab_dir / "comparison.csv", index=False)
    per_run.to_csv(tab_dir / "comparison_runs.csv", index=False)

    # ---------------------------------------------------------------- convergence
    sec = page.section("Convergence", "convergence")
    curve_metrics = [m for m in metrics if _CURVE.match(m) and not PROBE.match(m)]
    for m in curve_metrics:
        png = figures.save(figures.convergence(cur, m), fig_dir, f"convergence_{slug(m)}")
        sec.figure(png, f"{m} vs images seen and vs training FLOPs", f"convergence_{slug(m)}")

    # ---------------------------------------------------------------- scaling laws
    sec = page.section("Scaling laws", "scaling")
    sec.para("metric(C) = a·C^(−b) + c, fitted per method by least squares on log residuals to the "
             "logged points on the compute-optimal frontier (constant LR + EMA: intermediate "
             "evaluations stand in for shorter runs). Intervals: 95 % bootstrap, resampling seeds "
             "within each size and refitting.")
    fit_rows, frontier_rows = [], []
    fit_metrics = [m for m in metrics if fit_metric(m)]
    if not fit_metrics:
        sec.note("No validation loss or Fréchet-distance metric logged: nothing to fit.")
    for m in fit_metrics:
        cm = cur[cur["metric"] == m]
        fitted, iso_by_method = {}, {}
        for mk in sort_methods(cm["method_key"]):
            res, front, note = fits.fit_method_law(cm[cm["method_key"] == mk], m, n_boot=n_boot, seed=seed)
            if note:
                sec.note(f"{method_label(mk)}: {note}")
            if res is not None:
                fitted[mk] = (res, front)
                fit_rows.append({"metric": m, "method_key": mk, "result": res})
            iso = fits.isoflop_profiles(cm[cm["method_key"] == mk], m)
            if not iso.empty:
                iso_by_method[mk] = iso
                for r in iso[iso["optimal"]].itertuples():
                    frontier_rows.append({"metric": m, "method_key": mk, "method": method_label(mk),
                                          "compute_flops": r.compute, "optimal_size": r.size,
                                          "optimal_n_params": r.size_key, "value": r.value})
        if fitted:
            name = f"scaling_{slug(m)}"
            sec.figure(figures.save(figures.scaling(cur, m, fitted), fig_dir, name),
                       f"Scaling law of {m} (log-log)", name)
        if iso_by_method:
            name = f"isoflop_{slug(m)}"
            sec.figure(figures.save(figures.isoflop(iso_by_method, m), fig_dir, name),
                       f"isoFLOP profiles of {m}", name)
        elif cm["size_key"].nunique() < fits.MIN_SIZES:
            sec.note(f"{m}: isoFLOP profiles and the compute-optimal frontier {fits.NOT_IDENTIFIED}: "
                     f"{cm['size_key'].nunique()} model size(s), >= {fits.MIN_SIZES} needed.")
        else:
            sec.note(f"{m}: the sizes' compute ranges do not overlap, so there are no isoFLOP profiles "
                     "(evaluate more often during training).")
    if fit_rows:
        ex = tables.exponents_table(fit_rows)
        sec.table(ex, "Exponents (95 % intervals)")
        tables.write_all({"exponents": (ex, tables.exponents_csv(fit_rows), "Scaling-law fits")}, tab_dir)
    if frontier_rows:
        fr = pd.DataFrame(frontier_rows)
        disp = fr.assign(compute_flops=fr["compute_flops"].map(tables.fmt), value=fr["value"].map(tables.fmt))
        disp = disp.drop(columns=["method_key", "optimal_n_params"])
        sec.details("Compute-optimal size at each isoFLOP level", table_html(disp))
        tables.write_all({"frontier": (disp, fr, "Compute-optimal frontier")}, tab_dir)

    # ---------------------------------------------------------------- speed-up
    sec = page.section("Speed-up to target", "speedup")
    sp_metrics = [m for m in metrics if fit_metric(m) or "class_consistency" in m]
    if SELFFLOW not in methods:
        sec.note("No Self-Flow runs: no speed-up to compute.")
    elif len(methods) < 2:
        sec.note("Only Self-Flow runs: no baseline to compare with.")
    elif not sp_metrics:
        sec.note("No validation loss, FID or class-consistency metric logged: no speed-up to compute.")
    else:
        sp = fits.speedups(cur, runs, sp_metrics, n_boot=n_boot, seed=seed)
        if sp.empty:
            sec.note("Self-Flow and the baselines share no model size: no speed-up to compute.")
        else:
            sec.para("Images (and training FLOPs incl. auxiliaries) Self-Flow needs to reach each "
                     "baseline's final value (seed mean), as baseline / Self-Flow; > 1 means Self-Flow "
                     "is faster. Interval: 95 % bootstrap over both methods' seeds.")
            view = tables.speedup_table(sp)
            sec.table(view)
            tables.write_all({"speedup": (view, sp, "Speed-up of Self-Flow to each baseline's final value")}, tab_dir)

    # ---------------------------------------------------------------- probe
    sec = page.section("Linear probe", "probe")
    if summary.empty or not summary["metric"].str.match(PROBE.pattern).any():
        sec.note("No eval/probe_acc_block<l> metrics logged: no probe figure.")
    else:
        depth = verdict._depth_of(runs)
        marks = {k: verdict.paper_block(int(d)) for k, d in zip(runs["size_key"], depth) if pd.notna(d)}
        sec.figure(figures.save(figures.probe(summary, marks), fig_dir, "probe_vs_block"),
                   "Linear-probe accuracy vs block, at the matched budget; dashed: the paper's early "
                   "block (0.3·depth, block 8 of SiT-XL's 28)", "probe_vs_block")

    # ---------------------------------------------------------------- cost
    add_cost_section(page, tracking_uri)  # the latest `suite bench` table (training step cost per method)

    # ---------------------------------------------------------------- configs, versions
    sec = page.section("Configurations", "configs")
    per_cfg, shared = _config_tables(runs)
    sec.table(per_cfg, "What differs between runs")
    sec.details(f"Shared by all runs ({len(shared)} keys)", table_html(shared))
    runs.drop(columns=[c for c in runs.columns if "/" in c]).to_csv(tab_dir / "configs.csv", index=False)
    sec = page.section("Software", "software")
    sec.table(software_versions(), "Versions used to build this report")

    html_path = out / "report.html"
    html_path.write_text(page.render(), encoding="utf-8")
    echo(tables.terminal_summary(summary, tables.headline_metrics(metrics)))
    if not head.empty:
        echo("Verdict on the paper's claims (treatment − baseline, 95 % interval over paired seeds):\n"
             + tables.to_markdown(head[["claim", "equal images", "verdict (images)", "equal FLOPs", "verdict (FLOPs)"]]))
    echo(f"report: {html_path}")
    return html_path
