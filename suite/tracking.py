"""MLflow for every run: one MLflow run per run directory, resumed by id, no duplicated steps.

Default store: SQLite at <runs_root>/mlflow.db (artifacts beside it); `MLFLOW_TRACKING_URI` or
`tracking.uri` overrides (use an `mlflow server` with many concurrent writers). Metric steps are
images seen. SQLite "database is locked" errors are retried, so a few concurrent jobs lose nothing.
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Callable, TypeVar

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

T = TypeVar("T")
_RETRYABLE = ("database is locked", "database table is locked", "unable to open database", "disk i/o error",
              "connection refused", "temporarily unavailable", "max retries")


def with_retry(fn: Callable[[], T], attempts: int = 12, base_delay: float = 0.2) -> T:
    """Run fn, retrying with jittered back-off on transient store errors (SQLite locks, server restarts)."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as e:  # mlflow wraps sqlalchemy/requests errors in its own types
            msg = str(e).lower()
            if i == attempts - 1 or not any(r in msg for r in _RETRYABLE):
                raise
            time.sleep(base_delay * (2 ** min(i, 5)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def resolve_tracking_uri(tracking_cfg, runs_root: str | Path) -> str:
    if tracking_cfg.uri:
        return tracking_cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(runs_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """For a SQLite store, keep artifacts beside the database instead of ./mlruns of the CWD."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


# INFO lines MLflow / alembic print when a SQLite store is created or migrated: noise in every demo and sweep
_QUIET_LOGGERS = ("mlflow.store.db.utils", "mlflow.store.sqlalchemy_store", "alembic", "alembic.runtime.migration")


def quiet_store_logging() -> None:
    import logging

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def get_client(uri: str):
    from mlflow.tracking import MlflowClient

    quiet_store_logging()
    return MlflowClient(tracking_uri=uri)


def ensure_experiment(client, name: str, uri: str) -> str:
    """Experiment id by name, created if needed (safe when several processes race)."""

    def get_or_create():
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return client.create_experiment(name, artifact_location=_artifact_root(uri))
        except Exception:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    return with_retry(get_or_create)


def init_store(uri: str, experiment: str) -> str:
    """Create the store and experiment once, before workers start (concurrent SQLite migrations crash)."""
    return ensure_experiment(get_client(uri), experiment, uri)


class Tracker:
    """The MLflow side of one run. Rank 0 only; other ranks get a `NullTracker`."""

    def __init__(self, uri: str, experiment: str, run_id: str | None, run_name: str, tags: dict[str, str]):
        from mlflow.entities import Metric, Param, RunTag

        self._Metric, self._Param, self._RunTag = Metric, Param, RunTag
        self.uri = uri
        self.client = get_client(uri)
        self.experiment_id = ensure_experiment(self.client, experiment, uri)
        self.resumed = run_id is not None
        if run_id is None:
            run = with_retry(lambda: self.client.create_run(self.experiment_id, run_name=run_name, tags=tags))
            run_id = run.info.run_id
        else:
            with_retry(lambda: self.client.update_run(run_id, status="RUNNING"))
        self.run_id = run_id
        self._last_step: dict[str, int] = {}

    def skip_logged_steps(self) -> None:
        """After a resume: remember the last step already logged per key so nothing is logged twice."""
        keys = with_retry(lambda: self.client.get_run(self.run_id)).data.metrics.keys()
        for k in keys:
            hist = with_retry(lambda k=k: self.client.get_metric_history(self.run_id, k))
            if hist:
                self._last_step[k] = max(m.step for m in hist)

    def last_logged_step(self, key: str) -> int:
        return self._last_step.get(key, -1)

    def log_params(self, params: dict) -> None:
        items = [self._Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            chunk = items[i:i + 100]
            with_retry(lambda chunk=chunk: self.client.log_batch(self.run_id, params=chunk))

    def set_tags(self, tags: dict) -> None:
        items = [self._RunTag(k, str(v)) for k, v in tags.items()]
        if items:
            with_retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        items = [self._Metric(k, float(v), now, int(step)) for k, v in metrics.items() if step > self._last_step.get(k, -1)]
        for i in range(0, len(items), 500):
            chunk = items[i:i + 500]
            with_retry(lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk))
        for m in items:
            self._last_step[m.key] = int(step)

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        with_retry(lambda: self.client.log_artifact(self.run_id, str(path), subdir))

    def finish(self, status: str = "FINISHED") -> None:
        with_retry(lambda: self.client.set_terminated(self.run_id, status=status))


class NullTracker:
    """Tracking disabled (or a non-zero rank): every call does nothing."""

    run_id = None
    resumed = False

    def __getattr__(self, name):
        return lambda *a, **k: -1 if name == "last_logged_step" else None


def open_tracker(cfg, run_dir: Path, run_id: str | None, tags: dict[str, str], is_main: bool):
    if not (cfg.tracking.enabled and is_main):
        return NullTracker()
    uri = resolve_tracking_uri(cfg.tracking, cfg.train.runs_root)
    all_tags = {**tags, **cfg.tracking.tags, "run_dir": str(run_dir)}
    if cfg.tracking.parent_run_id:
        all_tags["mlflow.parentRunId"] = cfg.tracking.parent_run_id
    return Tracker(uri, cfg.tracking.experiment, run_id, cfg.name, all_tags)
