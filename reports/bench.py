"""The report's "Cost" section: the latest `suite bench` table (MLflow experiment `suite-bench`)."""
from __future__ import annotations

import json

import pandas as pd

BENCH_EXPERIMENT = "suite-bench"


def latest_bench(tracking_uri: str, experiment: str = BENCH_EXPERIMENT) -> tuple[dict, str] | None:
    """(results keyed by method, run id) of the newest bench run that logged a table, or None."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=20):
        try:
            path = client.download_artifacts(run.info.run_id, "bench.json")
        except Exception:  # an older bench run without the table
            continue
        with open(path) as f:
            return json.load(f), run.info.run_id
    return None


def bench_frame(results: dict) -> pd.DataFrame:
    """One row per method, the columns of suite.train.bench.format_table, numbers rounded."""
    from suite.train.bench import COLUMNS

    rows = []
    for label, r in results.items():
        if label == "_meta":
            continue
        rows.append({"method": label, **{h: ("–" if r.get(k) is None else f.format(r[k])) for k, h, f in COLUMNS}})
    return pd.DataFrame(rows)


def add_cost_section(page, tracking_uri: str, experiment: str = BENCH_EXPERIMENT) -> None:
    """Append "Cost" to a reports.html.Page: the latest bench table, or a note how to make one."""
    sec = page.section("Cost", "cost")
    found = latest_bench(tracking_uri, experiment)
    if found is None:
        sec.note(f"No `suite bench` run in experiment {experiment!r}: run "
                 "`suite bench CONFIG --methods vanilla,repa,sra,selfflow` against this tracking store.")
        return
    results, run_id = found
    m = results.get("_meta", {})
    sec.table(bench_frame(results), f"Training step cost (bench run {run_id})")
    sec.para(f"{m.get('device', '?')}, batch {m.get('batch_size', '?')}, {m.get('precision', '?')}, "
             f"{m.get('repeats', '?')} interleaved rounds × {m.get('steps', '?')} steps after {m.get('warmup', '?')} "
             "warm-up steps; FLOPs counted with torch.utils.flop_counter (fwd + bwd + auxiliary forwards).")
