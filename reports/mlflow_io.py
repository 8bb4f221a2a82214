"""MLflow -> pandas: the only place the report touches the tracking store.

`load_runs` returns two frames:
- `runs`: one row per run: `run_id`, `experiment`, `run_name`, `mlflow_status`, the suite's tags
  (`method`, `preset`, `dataset`, `seed`, `sweep`, `config_hash`, `status`, plus any other
  non-`mlflow.` tag), the params (the flattened resolved config such as `model.depth`, plus
  `n_params`, `flops_per_image_backbone`, `flops_per_image_total`; numeric columns converted)
  and the last value of every metric (columns named like the metric, `val/loss_t0.5`).
- `history`: long format, one row per logged point: `run_id`, `metric`, `step` (images seen),
  `value`, `timestamp`.
Runs without a `method` tag (a sweep's parent run, say) are not points of any curve and are left out.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from suite.errors import SuiteError

TAGS = ("method", "preset", "dataset", "seed", "sweep", "config_hash", "status")
_PAGE = 1000


def _client(tracking_uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if tracking_uri.startswith("sqlite:///"):
        # MLflow would silently create an empty store at a mistyped path.
        path = Path(tracking_uri[len("sqlite:///"):])
        if not path.is_file():
            raise SuiteError(f"no MLflow store at {path} (tracking URI {tracking_uri})")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _experiments(client, experiment: str | None):
    if experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = sorted(e.name for e in client.search_experiments())
            raise SuiteError(f"no MLflow experiment named {experiment!r}; known: {', '.join(names) or 'none'}")
        return [exp]
    return list(client.search_experiments())


def _search(client, experiment_ids, filter_string):
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string,
                                  max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _numeric(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Params arrive as strings: make a column numeric when every present value parses."""
    for col in columns:
        values = frame[col]
        present = values.notna() & (values != "None")
        parsed = pd.to_numeric(values[present], errors="coerce")
        if present.any() and parsed.notna().all():
            frame[col] = pd.to_numeric(values.where(present), errors="coerce")
    return frame


def load_runs(tracking_uri: str, experiment: str | None = None,
              sweep: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the runs of one experiment and/or one sweep (tag `sweep`) with their metric histories."""
    client = _client(tracking_uri)
    exps = _experiments(client, experiment)
    exp_names = {e.experiment_id: e.name for e in exps}
    filter_string = ""
    if sweep is not None:
        filter_string = "tags.sweep = '{}'".format(sweep.replace("'", "\\'"))
    found = _search(client, list(exp_names), filter_string) if exp_names else []
    found = [r for r in found if r.data.tags.get("method")]
    if not found:
        what = " and ".join(x for x in (experiment and f"experiment {experiment!r}",
                                         sweep and f"sweep {sweep!r}") if x) or "any experiment"
        raise SuiteError(f"no runs with a 'method' tag found for {what} in {tracking_uri}")

    rows, points, param_cols, metric_cols = [], [], set(), set()
    for run in found:
        info, data = run.info, run.data
        row = {"run_id": info.run_id, "experiment": exp_names.get(info.experiment_id),
               "run_name": info.run_name, "mlflow_status": info.status,
               "start_time": info.start_time}
        tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
        row.update({t: None for t in TAGS})
        row.update(tags)
        for key, value in data.params.items():
            if key not in row:  # a tag of the same name (seed) wins; it holds the same value
                row[key] = value
                param_cols.add(key)
        row.update(data.metrics)
        metric_cols.update(data.metrics)
        rows.append(row)
        for key in data.metrics:
            for m in client.get_metric_history(info.run_id, key):
                points.append((info.run_id, key, int(m.step), float(m.value), int(m.timestamp)))

    runs = pd.DataFrame(rows)
    runs = _numeric(runs, sorted(param_cols) + ["seed"])
    history = pd.DataFrame(points, columns=["run_id", "metric", "step", "value", "timestamp"])
    # A resumed run may re-log a step: the later write is the one that counts.
    history = (history.sort_values(["run_id", "metric", "step", "timestamp"])
               .drop_duplicates(["run_id", "metric", "step"], keep="last")
               .reset_index(drop=True))
    return runs.sort_values(["method", "run_id"]).reset_index(drop=True), history
