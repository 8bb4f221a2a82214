"""The callables Submitit pickles and runs: one grid point, or one Optuna trial.

Both are `submitit.helpers.Checkpointable`. What `checkpoint()` must do, from Submitit's source
(core/job_environment.py): on the preemption / time-limit signal (USR2, `signal_delay_s` before
the end) Submitit calls `checkpoint()` in the job's main thread, pickles the DelayedSubmission it
returns in place of the original submission, requeues the job and exits. Our callables hold no
training state (the trainer owns it, in the run directory), so `checkpoint()` asks the running
trainer for a checkpoint *now* and resubmits the same callable with the same arguments; on
restart `train(cfg, run_dir)` resumes from `run_dir/checkpoints/latest.pt` and reopens the same
MLflow run. A plain `scontrol requeue` (or a node failure) sends no such signal: the job restarts
from its original pickle and the trainer's periodic checkpoints bound what is redone; the trainer
drops metric lines and MLflow steps past the checkpoint, so no step is counted twice.

`code` is the sweep's code snapshot the job must have imported `suite` from (code_snapshot.py;
None for the debug executor, which runs in the dispatcher): each start records where `suite` came
from and its code hash in attempts.jsonl, and the run carries the tags `code_hash` (`<old>+<new>`
once resumed with other code) and `code_git`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import submitit

from suite.errors import SuiteError
from suite.plugins import load_plugins, loaded_plugins
from suite.sweeps.code_snapshot import job_code

ATTEMPTS = "attempts.jsonl"  # in each run directory: one line per start and per preemption checkpoint


def _job_env() -> dict:
    try:
        env = submitit.JobEnvironment()
        return {"job_id": env.job_id, "rank": env.global_rank}
    except RuntimeError:  # not inside a Submitit job (tests calling the callable directly)
        return {"job_id": None, "rank": 0}


def _prepare(cfg, cpus: int, tags: dict | None = None):
    """Per-job runtime settings that do not change the computation (excluded from config_hash),
    and extra run tags (`code_tags`)."""
    cfg = copy.deepcopy(cfg)
    if tags:
        cfg.tracking.tags = {**cfg.tracking.tags, **tags}
    cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", cpus or 0)) or cpus
    if cpus:
        cfg.train.threads = min(cfg.train.threads, cpus) if cfg.train.threads else cpus
    cfg.train.progress = False
    return cfg


def _log_event(run_dir: Path, event: str, **extra) -> None:
    """run_dir/attempts.jsonl: a `start` line per start of this point (a requeue adds one) and a
    `checkpoint` line per preemption checkpoint: the history `suite sweep status` cannot show."""
    env = _job_env()
    if env["rank"] != 0:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    line = {"event": event, "time": time.time(), "host": socket.gethostname(), "job_id": env["job_id"], **extra}
    with open(run_dir / ATTEMPTS, "a") as f:
        f.write(json.dumps(line) + "\n")


def code_tags(run_dir: Path, code: dict) -> dict:
    """The tags naming the code a run ran: `code_hash` (from `job_code`; every hash its starts
    recorded in attempts.jsonl, in order of first use, `+`-joined, when it was resumed with other
    code after `--update-code`) and `code_git` (this start's)."""
    hashes = []
    try:
        for line in (Path(run_dir) / ATTEMPTS).read_text().splitlines():
            h = json.loads(line).get("code_hash") if line.strip() else None
            if h and h not in hashes:
                hashes.append(h)
    except (OSError, json.JSONDecodeError):
        pass
    hashes += [code["code_hash"]] if code["code_hash"] not in hashes else []
    return {"code_hash": "+".join(hashes), **({"code_git": code["code_git"]} if code.get("code_git") else {})}


def _retag_resumed(cfg, run_dir: Path, tags: dict) -> None:
    """A resumed run keeps the tags it was created with: set the code tags on its MLflow run when
    this start runs other code than the earlier ones."""
    from suite.train import read_state

    run_id = read_state(run_dir).get("mlflow_run_id")
    if ("+" not in tags.get("code_hash", "") or not run_id or not cfg.tracking.enabled or not cfg.tracking.uri
            or _job_env()["rank"] != 0):
        return
    from suite.tracking import get_client, with_retry

    try:
        client = get_client(cfg.tracking.uri)
        for k, v in tags.items():
            with_retry(lambda k=k, v=v: client.set_tag(run_id, k, v))
    except Exception:  # noqa: BLE001 - tracking must never stop the run; attempts.jsonl has it
        pass


def _record_attempt(run_dir: Path, **extra) -> None:
    from suite.train import read_state

    _log_event(run_dir, "start", images_seen_at_start=int(read_state(run_dir).get("images_seen", 0)), **extra)


def _checkpoint_active_trainer() -> None:
    """Called by Submitit's USR2 handler (preemption / time limit), in the main thread of rank 0
    only. A multi-process trainer's checkpoint gathers RNG states from every rank, which the other
    ranks (not in this handler) would never join: there the periodic checkpoints are the ones used."""
    from suite.train import active_trainer

    trainer = active_trainer()
    if trainer is None:
        return
    if getattr(getattr(trainer, "dist", None), "enabled", False):
        _log_event(trainer.run_dir, "checkpoint_skipped", images_seen=int(trainer.images_seen),
                   reason="multi-process trainer: resumes from its last periodic checkpoint")
        return
    if trainer.save_checkpoint():
        _log_event(trainer.run_dir, "checkpoint", images_seen=int(trainer.images_seen))
    else:  # mid-update or after a non-finite loss: the last periodic checkpoint stands
        _log_event(trainer.run_dir, "checkpoint_skipped", images_seen=int(trainer.images_seen),
                   reason="no consistent checkpoint now: resumes from the last periodic one")


class TrainPoint(submitit.helpers.Checkpointable):
    """One grid point: train (or resume) `cfg` in `run_dir`."""

    def __init__(self, cfg, run_dir: str, cpus: int = 0, code: str | None = None):
        self.cfg, self.run_dir, self.cpus, self.code = cfg, str(run_dir), cpus, code
        self.plugins = loaded_plugins()  # handed to the worker process, which loads them first

    def __call__(self) -> dict:
        from suite.train import train

        code = job_code(getattr(self, "code", None))  # a pickle from before code snapshots has none
        load_plugins(self.plugins)
        run_dir = Path(self.run_dir)
        _record_attempt(run_dir, **code)
        tags = code_tags(run_dir, code)
        _retag_resumed(self.cfg, run_dir, tags)
        result = train(_prepare(self.cfg, self.cpus, tags), run_dir)
        return {"status": result.status, "images_seen": result.images_seen,
                "mlflow_run_id": result.mlflow_run_id, "final_metrics": result.final_metrics}

    def checkpoint(self, *args, **kwargs):
        _checkpoint_active_trainer()
        return super().checkpoint(*args, **kwargs)


class TrialJob(submitit.helpers.Checkpointable):
    """One Optuna trial in slot `slot`: ask (or resume) a trial, train it, tell the study."""

    def __init__(self, spec, sweep_dir: str, slot: int, base: dict, tracking: dict, cpus: int = 0,
                 code: str | None = None):
        self.spec, self.sweep_dir, self.slot = spec, str(sweep_dir), slot
        self.base, self.tracking, self.cpus, self.code = base, tracking, cpus, code
        self.plugins = loaded_plugins()  # handed to the worker process, which loads them first

    def _trial(self):
        """The slot's running trial (resumed), or a new one asked from the sampler."""
        import optuna

        from suite.sweeps import study as S

        sweep_dir = Path(self.sweep_dir)
        rec = S.read_slot(sweep_dir, self.slot)
        attempt = len(rec.get("previous", [])) + (1 if rec.get("state") == "FAIL" else 0)
        storage = S.open_storage(S.storage_url(self.spec, sweep_dir))
        study = S.load_study(self.spec, storage, seed=S.slot_seed(self.spec.study, self.slot, attempt))
        if rec.get("trial_id") is not None and rec.get("state") != "FAIL":
            frozen = storage.get_trial(rec["trial_id"])
            if frozen.state == optuna.trial.TrialState.RUNNING:
                return study, optuna.trial.Trial(study, rec["trial_id"]), rec, True
            if frozen.state.is_finished():
                return study, None, rec, False
        trial = study.ask(S.distributions(self.spec.study))
        previous = rec.get("previous", []) + ([{k: rec[k] for k in ("trial_number", "state") if k in rec}] if rec else [])
        rec = {"slot": self.slot, "trial_id": trial._trial_id, "trial_number": trial.number,
               "params": trial.params, "state": "RUNNING", "previous": previous}
        return study, trial, rec, False

    def _follow_rank0(self, job_id) -> dict:
        """Ranks > 0 of a multi-task trial: wait for rank 0 to write this job's trial into the slot."""
        from suite.sweeps import study as S

        t0 = time.time()
        while True:
            rec = S.read_slot(Path(self.sweep_dir), self.slot)
            if rec.get("job_id") == job_id and rec.get("params") is not None:
                return rec
            if time.time() - t0 > 600:
                raise SuiteError(f"trial slot {self.slot}: rank 0 never recorded its trial (job {job_id})")
            time.sleep(0.5)

    def __call__(self) -> dict:
        import optuna

        from suite.config import config_hash, load_run_config
        from suite.sweeps import study as S
        from suite.sweeps.spec import override
        from suite.train import train

        code = job_code(getattr(self, "code", None))
        load_plugins(self.plugins)
        sweep_dir = Path(self.sweep_dir)
        env = _job_env()
        main = env["rank"] == 0
        if main:
            study, trial, rec, resumed = self._trial()
            rec["job_id"] = env["job_id"]
            if trial is None:  # the slot's trial already finished (a duplicate submission)
                S.write_slot(sweep_dir, self.slot, rec)
                return rec
            params = trial.params
        else:
            study, trial, resumed = None, None, False
            rec = self._follow_rank0(env["job_id"])
            if rec.get("state") != "RUNNING":
                return rec
            params = rec["params"]
        metric = self.spec.study.metric
        cfg = load_run_config(self.base, [override(k, v) for k, v in params.items()])
        h = config_hash(cfg)
        number = rec["trial_number"]
        run_dir = sweep_dir / "runs" / f"trial-{number:03d}-{h[:8]}"
        cfg.name = f"{self.spec.name}-trial{number:03d}"
        cfg.tracking = dataclasses.replace(cfg.tracking, **self.tracking)
        cfg.tracking.tags = {**cfg.tracking.tags, "sweep": self.spec.name, "sweep_point": h,
                             "optuna_trial": str(number), "optuna_slot": str(self.slot)}
        cfg.train.run_dir = str(run_dir)
        if main:
            rec.update(run_dir=str(run_dir), hash=h)
            S.write_slot(sweep_dir, self.slot, rec)
            trial.set_user_attr("run_dir", str(run_dir))
            _record_attempt(run_dir, trial=number, resumed_trial=resumed, **code)
        tags = code_tags(run_dir, code)
        if main:
            _retag_resumed(cfg, run_dir, tags)
        try:
            result = train(_prepare(cfg, self.cpus, tags), run_dir, callbacks=[S.PruningCallback(trial, metric)])
            value = S.objective_value(result.final_metrics, metric) if main else None
        except optuna.TrialPruned:
            if main:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                rec["state"] = "PRUNED"
                S.write_slot(sweep_dir, self.slot, rec)
            return rec
        except BaseException as e:
            if isinstance(e, SystemExit) or not main:  # SystemExit: Submitit's requeue; the trial resumes
                raise
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            rec.update(state="FAIL", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
            S.write_slot(sweep_dir, self.slot, rec)
            raise
        if main:
            study.tell(trial, value)
            rec.update(state="COMPLETE", value=value, images_seen=result.images_seen, mlflow_run_id=result.mlflow_run_id)
            S.write_slot(sweep_dir, self.slot, rec)
        return rec

    def checkpoint(self, *args, **kwargs):
        _checkpoint_active_trainer()
        return super().checkpoint(*args, **kwargs)
