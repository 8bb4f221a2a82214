"""From the raw MLflow frames to what the report reasons about: methods, sizes, seeds, compute.

- method key: the `ablation` tag when a run carries one; else the name of the shipped ablation
  preset (`suite/configs/ablations/*.yaml`) whose every key the run's params match (the most
  specific one); else the `method` tag. So ablations are shown by their preset name even though
  their `method` tag is `selfflow`.
- size: the model's parameter count (`n_params`), labelled with depth × width when logged.
- compute of a logged point: images seen × `flops_per_image_total` (training FLOPs including
  auxiliary forwards: REPA's encoder, SRA's / Self-Flow's EMA teacher) and, separately,
  × `flops_per_image_backbone`.
"""
from __future__ import annotations

import functools
import math
import re

import numpy as np
import pandas as pd

# Metrics that are better when lower / higher; anything else has no direction (no speed-up, no fit).
_LOWER = re.compile(r"(^|/)(loss|fid|kid|fd|fad|fvd|sfid)")
_HIGHER = re.compile(r"(^|/)(probe_acc|class_consistency|caption_consistency|is\d|isc|precision|recall|acc)")
# Metrics a scaling law is fitted on: validation losses at fixed t and Fréchet distances.
_FIT = re.compile(r"^(val/loss|eval/(fid|fd|fad|fvd))")
PROBE = re.compile(r"^eval/probe_acc_block(\d+)$")


def direction(metric: str) -> int:
    """-1 when lower is better, +1 when higher is better, 0 when neither (lr, throughput...)."""
    if metric.startswith(("perf/", "train/lr", "train/grad_norm")):
        return 0
    name = metric.split("/", 1)[-1]
    if _LOWER.search(name) or _LOWER.search(metric):
        return -1
    if _HIGHER.search(name):
        return 1
    return 0


def fit_metric(metric: str) -> bool:
    return bool(_FIT.match(metric))


@functools.lru_cache(maxsize=1)
def ablation_presets() -> dict[str, dict]:
    """{preset name: its flattened keys} for the shipped ablation presets."""
    import yaml

    from suite.config import BUILTIN_CONFIG_DIR, flatten

    out = {}
    for path in sorted((BUILTIN_CONFIG_DIR / "ablations").glob("*.yaml")):
        out[path.stem] = flatten(yaml.safe_load(path.read_text()) or {})
    return out


def _same(logged, wanted) -> bool:
    """A logged param (string or number) equals a YAML value (MLflow stores str(value))."""
    if logged is None or (isinstance(logged, float) and math.isnan(logged)):
        return False
    if isinstance(wanted, bool) or isinstance(logged, bool):
        return str(logged).lower() == str(wanted).lower()
    try:
        return math.isclose(float(logged), float(wanted), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return str(logged) == str(wanted)


def match_preset(row) -> str | None:
    best, best_n = None, 0
    for name, keys in ablation_presets().items():
        if len(keys) > best_n and all(_same(row.get(k), v) for k, v in keys.items()):
            best, best_n = name, len(keys)
    return best


def _size_label(row) -> str:
    parts = []
    depth = row.get("model.depth_resolved", row.get("model.depth"))
    width = row.get("model.hidden_size_resolved", row.get("model.hidden_size"))
    if _finite(depth) and _finite(width):
        parts.append(f"d{int(depth)}×w{int(width)}")
    elif isinstance(row.get("model.preset"), str):
        parts.append(row["model.preset"])
    elif isinstance(row.get("preset"), str):
        parts.append(row["preset"])
    if _finite(row.get("n_params")):
        parts.append(f"{row['n_params'] / 1e6:.3g}M")
    return " ".join(parts) or "unknown size"


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def annotate(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `method_key`, `size_key` (a sortable number), `size` (label) and `seed_key` columns."""
    runs = runs.copy()
    abl = runs["ablation"] if "ablation" in runs else pd.Series(None, index=runs.index)
    keys = []
    for tag, (_, row) in zip(abl, runs.iterrows()):
        if isinstance(tag, str) and tag:
            keys.append(tag)
        else:
            keys.append(match_preset(row) or str(row["method"]))
    runs["method_key"] = keys
    labels = runs.apply(_size_label, axis=1)
    if "n_params" in runs and runs["n_params"].notna().all():
        runs["size_key"] = runs["n_params"].astype(float)
    else:  # no parameter count: order sizes by label, the best that can be done
        order = {lab: i for i, lab in enumerate(sorted(labels.unique()))}
        runs["size_key"] = labels.map(order).astype(float)
    runs["size"] = labels
    seed = runs["seed"] if "seed" in runs else pd.Series(np.nan, index=runs.index)
    runs["seed_key"] = [str(int(v)) if _finite(v) and float(v).is_integer() else
                        (str(v) if pd.notna(v) else r) for v, r in zip(seed, runs["run_id"])]
    return runs


def curves(history: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """History with method/size/seed and compute columns: `images`, `flops_total`, `flops_backbone`."""
    cols = ["run_id", "method_key", "size_key", "size", "seed_key"]
    per_image = {}
    for name in ("flops_per_image_total", "flops_per_image_backbone"):
        per_image[name] = runs[name] if name in runs else pd.Series(np.nan, index=runs.index)
    meta = runs[cols].assign(**per_image)
    out = history.merge(meta, on="run_id", how="inner")
    out["images"] = out["step"].astype(float)
    out["flops_total"] = out["images"] * pd.to_numeric(out["flops_per_image_total"], errors="coerce")
    out["flops_backbone"] = out["images"] * pd.to_numeric(out["flops_per_image_backbone"], errors="coerce")
    return out.drop(columns=["flops_per_image_total", "flops_per_image_backbone"])


def final_images(history: pd.DataFrame) -> pd.Series:
    """Images seen by each run: the largest step it logged anything at."""
    return history.groupby("run_id")["step"].max()


def values_at(history: pd.DataFrame, budget_by_run: dict) -> pd.DataFrame:
    """Each run's metrics at its budget: the last logged value at a step <= budget.

    Returns run_id, metric, step (the step actually used), value.
    """
    h = history[history["run_id"].isin(list(budget_by_run))]
    h = h[h["step"] <= h["run_id"].map(budget_by_run)]
    last = h.sort_values("step").groupby(["run_id", "metric"]).tail(1)
    return last[["run_id", "metric", "step", "value"]].reset_index(drop=True)


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and a Student-t interval over seeds: (mean, low, high, n); no interval from one seed."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    n = len(v)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if n == 1:
        return (m, math.nan, math.nan, 1)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return (m, m - half, m + half, n)
