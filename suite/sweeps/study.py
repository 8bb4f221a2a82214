"""Optuna studies as jobs: one job = one trial, trials share the study storage.

Each trial job owns a *slot* (0..n_trials-1). The slot file (`trials/slot-NNN.json`) records which
Optuna trial the slot is running, so a requeued or resubmitted job resumes that same trial (same
params, same run directory, the trainer resumes from its checkpoint) instead of asking a new one.
A slot whose trial failed asks a fresh trial on resubmission; the failed one stays FAIL in the study.

Intermediate values reach the pruner through a trainer callback: every time the trainer logs the
study metric (`on_log` for `val/...`, `on_eval` for `eval/...`), it is reported at step = images
seen; `should_prune` raises `optuna.TrialPruned`, which the trainer turns into a checkpointed run
with status `pruned` before re-raising.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import optuna

from suite.errors import ConfigError, SuiteError

STUDY_JOURNAL = "optuna.journal"


class JobGridSampler(optuna.samplers.GridSampler):
    """GridSampler for ask/tell from jobs: the sweep, not the sampler, decides how many trials run.
    (Optuna's `after_trial` calls `study.stop()`, which raises outside `study.optimize`.)"""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def slot_seed(study_spec, slot: int, attempt: int = 0) -> int:
    """The sampler seed of a trial slot: one per slot (and per retry of a failed slot). Every job
    builds its own sampler, so identical seeds would make parallel jobs ask the same point."""
    return study_spec.seed + slot + 1000 * attempt


# ----------------------------------------------------------------------------- samplers, pruners
def make_sampler(study_spec, seed: int, where: str = "study"):
    s = study_spec
    try:
        if s.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **s.sampler_args)
        if s.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed, **s.sampler_args)
        return JobGridSampler(grid_search_space(s), seed=seed, **s.sampler_args)
    except TypeError as e:
        raise ConfigError(f"{where}: study.sampler_args: {e}") from None


def make_pruner(study_spec, where: str = "study"):
    s = study_spec
    try:
        if s.pruner == "median":
            return optuna.pruners.MedianPruner(**s.pruner_args)
        if s.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(**s.pruner_args)
        if s.pruner_args:
            raise ConfigError(f"{where}: study.pruner_args: pruner none takes no arguments")
        return optuna.pruners.NopPruner()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: study.pruner_args: {e}") from None


def grid_search_space(study_spec) -> dict[str, list]:
    out = {}
    for k, p in study_spec.space.items():
        if p.type == "categorical":
            out[k] = list(p.choices)
        elif p.type == "int":
            step = int(p.step or 1)
            out[k] = list(range(int(p.low), int(p.high) + 1, step))
        else:
            n = int(math.floor((p.high - p.low) / p.step + 1e-9)) + 1
            out[k] = [p.low + i * p.step for i in range(n)]
    return out


def distributions(study_spec) -> dict:
    import optuna.distributions as D

    out = {}
    for k, p in study_spec.space.items():
        if p.type == "categorical":
            out[k] = D.CategoricalDistribution(list(p.choices))
        elif p.type == "int":
            out[k] = D.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        else:
            out[k] = D.FloatDistribution(float(p.low), float(p.high), log=p.log or p.type == "log", step=p.step)
    return out


# ----------------------------------------------------------------------------- storage
def storage_url(spec, sweep_dir: Path) -> str:
    return spec.study.storage or f"journal://{Path(sweep_dir) / STUDY_JOURNAL}"


def open_storage(url: str):
    """`journal://PATH` (or a plain path): Optuna's journal file; anything else: an RDB URL."""
    if url.startswith("journal://") or "://" not in url:
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal://"):] if url.startswith("journal://") else url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return optuna.storages.RDBStorage(url)


def create_study(spec, sweep_dir: Path):
    """Create the study once, in the dispatcher, before any worker starts (concurrent creation of
    a new SQLite study crashes some of the creators)."""
    direction = spec.study.direction
    return optuna.create_study(study_name=spec.name, storage=open_storage(storage_url(spec, sweep_dir)),
                               direction=direction, load_if_exists=True)


def load_study(spec, storage, seed: int):
    return optuna.load_study(study_name=spec.name, storage=storage,
                             sampler=make_sampler(spec.study, seed), pruner=make_pruner(spec.study))


# ----------------------------------------------------------------------------- slots
def slot_path(sweep_dir: Path, slot: int) -> Path:
    return Path(sweep_dir) / "trials" / f"slot-{slot:03d}.json"


def read_slot(sweep_dir: Path, slot: int) -> dict:
    p = slot_path(sweep_dir, slot)
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_slot(sweep_dir: Path, slot: int, rec: dict) -> None:
    p = slot_path(sweep_dir, slot)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec, indent=1, default=str))
    os.replace(tmp, p)


def trial_states(spec, sweep_dir: Path) -> dict[int, str]:
    """Optuna trial number → state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    try:
        study = optuna.load_study(study_name=spec.name, storage=open_storage(storage_url(spec, sweep_dir)))
    except KeyError:  # no such study yet
        return {}
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


# ----------------------------------------------------------------------------- the pruning callback
class PruningCallback:
    """Trainer callback: report the study metric at step = images seen; prune when Optuna says so.

    In a multi-process (DDP) trial only rank 0 holds the trial (`trial=None` elsewhere); it decides
    and broadcasts, so every rank stops at the same step (one rank leaving would hang the others
    in their next all-reduce). The metric must therefore reach the callbacks on every rank."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def _maybe_prune(self, images_seen: int, metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            return
        value = float(metrics[self.metric])
        prune = False
        if self.trial is not None:
            if math.isfinite(value):
                self.trial.report(value, step=int(images_seen))
            prune = self.trial.should_prune()
        if _distributed():
            import torch.distributed as dist

            box = [prune]
            dist.broadcast_object_list(box, src=0)
            prune = bool(box[0])
        if prune:
            raise optuna.TrialPruned(f"pruned at {images_seen} images ({self.metric}={value:.5g})")

    on_log = _maybe_prune
    on_eval = _maybe_prune


def _distributed() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def objective_value(final_metrics: dict[str, Any], metric: str) -> float:
    if metric not in final_metrics:
        avail = ", ".join(sorted(final_metrics)) or "none"
        raise SuiteError(f"study.metric: the run logged no {metric!r}; logged: {avail}")
    return float(final_metrics[metric])
