"""Sweeps on a real SLURM cluster (scripts/slurm_local.sh start): job arrays, a parallel Optuna
study that prunes, a requeue mid-training that resumes, idempotent re-runs.

Skipped with the reason when the local cluster is not up; CI starts it first. About 3 minutes on
2 cores: every run is a 1–3 block SiT on 16² digits for a few hundred images.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from suite.sweeps import Sweep, parse_sweep_spec, run_sweep, wait_for

pytestmark = pytest.mark.slurm
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
WAIT_S = 300  # a hung cluster fails the test instead of hanging CI


@pytest.fixture(scope="module")
def partition() -> str | None:
    try:
        r = subprocess.run([str(REPO / "scripts" / "slurm_local.sh"), "status"], capture_output=True, text=True, timeout=60)
        up, why = r.returncode == 0, (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
    except (OSError, subprocess.TimeoutExpired) as e:
        up, why = False, [str(e)]
    if not up:
        pytest.skip(f"local SLURM cluster is not running (start it with scripts/slurm_local.sh start): {why[0]}")
    parts = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    return "local" if "local" in parts else None


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def tiny(root: Path, **extra) -> dict:
    d = {"model.preset": "SiT-Nano/4", "model.depth": 1, "optim.ema_decay": 0.9, "train.batch_size": 32,
         "train.total_images": 128, "train.log_every_images": 64, "train.ckpt_every_images": 128,
         "train.val_every_images": 0, "train.val_images": 64, "sampling.steps": 2,
         "tracking.log_samples": False, "train.runs_root": str(root)}
    d.update(extra)
    return d


def executor(partition, **extra) -> dict:
    return {"kind": "slurm", "partition": partition, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, **extra}


def jobs_of(sw: Sweep) -> dict[str, list[str]]:
    units = json.loads((sw.dir / "sweep.json").read_text())["units"]
    return {k: [j["job_id"] for j in v.get("jobs", [])] for k, v in units.items()}


def mlflow_runs(root: Path, sweep: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("selfflow-suite")
    runs = client.search_runs([exp.experiment_id], f"tags.sweep = '{sweep}'")
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    return client, parents, [r for r in runs if r.data.tags.get("sweep_role") != "parent"]


def test_grid_job_array_kill_one_and_rerun(tmp_path, partition):
    """6 points as one job array (2 at a time); one element is killed; the re-run resubmits
    exactly that point; a re-run of the finished sweep submits nothing."""
    spec = parse_sweep_spec({
        "name": "grid6", "base": "builtin:demo-digits", "set": tiny(tmp_path),
        "grid": {"method.name": ["vanilla", "selfflow"], "model.depth": [1, 2, 3]},
        "executor": executor(partition, array_parallelism=2)})
    out: list[str] = []
    assert run_sweep(spec, wait=False, out=out.append) == 0
    sw = Sweep(spec)
    ids = jobs_of(sw)
    arrays = {j[0].split("_")[0] for j in ids.values()}
    assert len(arrays) == 1 and sorted(j[0].split("_")[1] for j in ids.values()) == [str(i) for i in range(6)]
    victim = sw.units[5]
    subprocess.run(["scancel", ids[victim.key][0]], check=True)  # still pending: 2 run at a time
    final = wait_for(sw, out.append, poll_s=1.0, timeout_s=WAIT_S)
    states = {s.unit.key: s.state for s in final}
    assert states.pop(victim.key) == "lost" and set(states.values()) == {"finished"}, "\n".join(out)

    assert run_sweep(spec, wait=True, out=out.append, poll_s=1.0) == 0, "\n".join(out)
    again = jobs_of(sw)
    assert len(again[victim.key]) == 2 and again[victim.key][1] != ids[victim.key][0]
    assert all(again[k] == ids[k] for k in ids if k != victim.key)

    out.clear()
    assert run_sweep(spec, out=out.append) == 0
    assert "nothing to submit" in out[-1] and jobs_of(sw) == again

    client, parents, children = mlflow_runs(tmp_path, "grid6")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 6 and all(r.info.status == "FINISHED" for r in children)
    assert {r.data.tags["sweep_point"] for r in children} == {u.hash for u in sw.units}
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)


def test_study_parallel_trials_with_pruning(tmp_path, partition):
    """8 trials, 2 at a time, sharing a journal storage; the median pruner prunes the trials whose
    validation loss lags (tiny learning rates); every trial is a child run in MLflow."""
    import optuna

    spec = parse_sweep_spec({
        "name": "study8", "base": "builtin:demo-digits",
        "set": tiny(tmp_path, **{"method.name": "selfflow", "train.total_images": 320, "train.val_every_images": 64}),
        "study": {"space": {"optim.lr": {"type": "log", "low": 1e-6, "high": 1e-2},
                            "method.mask_ratio": {"type": "float", "low": 0.0, "high": 0.5}},
                  "metric": "val/loss_mean", "direction": "minimize", "sampler": "random",
                  "pruner": "median", "pruner_args": {"n_startup_trials": 2}, "n_trials": 8, "parallel": 2},
        "executor": executor(partition)})
    out: list[str] = []
    run_sweep(spec, wait=True, out=out.append, poll_s=1.0)
    sw = Sweep(spec)
    final = sw.statuses()
    states = [s.state for s in final]
    assert all(s in ("finished", "pruned") for s in states), "\n".join(out)
    assert states.count("pruned") >= 1 and states.count("finished") >= 2, states

    study = optuna.load_study(study_name="study8", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sw.dir / "optuna.journal"))))
    by_state = {}
    for t in study.trials:
        by_state.setdefault(t.state.name, []).append(t)
    assert len(study.trials) == 8 and set(by_state) <= {"COMPLETE", "PRUNED"}
    assert len({t.params["optim.lr"] for t in study.trials}) == 8  # every job asked its own point
    for t in by_state["PRUNED"]:
        assert max(t.intermediate_values) < 320  # stopped early
    best = study.best_trial
    assert best.value == pytest.approx(min(t.value for t in by_state["COMPLETE"]))

    client, parents, children = mlflow_runs(tmp_path, "study8")
    assert len(parents) == 1 and len(children) == 8
    assert sorted(r.data.tags["status"] for r in children) == sorted(
        "pruned" if s == "pruned" else "finished" for s in states)
    spans = sorted((r.info.start_time, r.info.end_time) for r in children)
    overlapping = any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert overlapping, "no two trials ran at the same time"


def _events(run_dir: Path) -> list[dict]:
    p = run_dir / "attempts.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []


def _wait_until(cond, what: str):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < WAIT_S, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_requeue_and_preemption_resume_from_checkpoints(tmp_path, partition):
    """Two interruptions of one job. (1) `scontrol requeue`: no signal Submitit could act on; the job
    restarts from its original pickle and the trainer resumes from its last periodic checkpoint.
    (2) USR2, what SLURM sends before preemption or the time limit: Submitit calls our
    `checkpoint()`, which checkpoints the trainer where it is, and requeues. The run ends with the
    images seen of an uninterrupted run, one MLflow run, no metric step lost or logged twice."""
    # Long enough (~25 s) that the job is still training when SLURM kills it, KillWait (5 s) after
    # the requeue: Submitit ignores the SIGTERM that comes first.
    total, log_every, ckpt_every = 16384, 128, 2048
    spec = parse_sweep_spec({
        "name": "requeue", "base": "builtin:demo-digits",
        "set": tiny(tmp_path, **{"method.name": "selfflow", "model.depth": 2, "train.total_images": total,
                                 "train.ckpt_every_images": ckpt_every, "train.log_every_images": log_every}),
        "grid": {"seed": [0]}, "executor": executor(partition)})
    run_sweep(spec, wait=False, out=lambda s: None)
    sw = Sweep(spec)
    unit = sw.units[0]
    job_id = jobs_of(sw)[unit.key][0]
    state = lambda: json.loads((unit.run_dir / "state.json").read_text()) if (unit.run_dir / "state.json").exists() else {}  # noqa: E731

    _wait_until(lambda: state().get("images_seen", 0) >= ckpt_every, "the first periodic checkpoint")
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    starts = lambda: [e for e in _events(unit.run_dir) if e["event"] == "start"]  # noqa: E731
    _wait_until(lambda: len(starts()) == 2 and state().get("images_seen", 0) > starts()[1]["images_seen_at_start"],
                "the requeued job to resume and pass a checkpoint")
    assert state()["images_seen"] < total, "the job finished before the preemption signal"
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    final = wait_for(sw, lambda s: None, poll_s=1.0, timeout_s=WAIT_S)
    assert final[0].state == "finished" and final[0].images_seen == total

    ev = _events(unit.run_dir)
    kinds = [e["event"] for e in ev]
    assert kinds == ["start", "start", "checkpoint", "start"], kinds
    assert {e["job_id"] for e in ev} == {job_id}  # requeued by SLURM, not resubmitted by the sweep
    assert jobs_of(sw)[unit.key] == [job_id]
    s0, s1, ck, s2 = ev
    assert s0["images_seen_at_start"] == 0
    assert 0 < s1["images_seen_at_start"] < total and s1["images_seen_at_start"] % ckpt_every == 0  # periodic
    assert s2["images_seen_at_start"] == ck["images_seen"] > s1["images_seen_at_start"]  # where the signal hit

    client, _, children = mlflow_runs(tmp_path, "requeue")
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    rid = children[0].info.run_id
    for key in children[0].data.metrics:
        steps = [m.step for m in client.get_metric_history(rid, key)]
        assert len(steps) == len(set(steps)), f"{key}: a step was logged twice"
    loss_steps = sorted(m.step for m in client.get_metric_history(rid, "train/loss"))
    assert loss_steps == list(range(log_every, total + 1, log_every))  # none lost, none twice


def _seed_for_picks(study_spec, param: str, wanted: list) -> int:
    """A study seed for which slot i's random sampler picks wanted[i] (every job seeds its own sampler)."""
    import optuna

    from suite.sweeps.study import distributions, make_sampler, slot_seed

    for seed in range(200):
        study_spec.seed = seed
        picks = [optuna.create_study(sampler=make_sampler(study_spec, slot_seed(study_spec, i)))
                 .ask(distributions(study_spec)).params[param] for i in range(len(wanted))]
        if picks == wanted:
            return seed
    raise AssertionError("no seed found")


def test_ddp_trials_two_tasks_prune_together(tmp_path, partition):
    """Trials of 2 processes each (DDP over gloo from SLURM's environment): rank 0 asks and tells,
    rank 1 follows the slot file; the pruning decision is broadcast so both ranks stop together."""
    import optuna

    d = {"name": "ddp", "base": "builtin:demo-digits",
         "set": tiny(tmp_path, **{"train.total_images": 256, "train.val_every_images": 64}),
         "study": {"space": {"optim.lr": {"type": "categorical", "choices": [1e-2, 1e-7]}},
                   "metric": "val/loss_mean", "sampler": "random", "pruner": "median",
                   "pruner_args": {"n_startup_trials": 1}, "n_trials": 2, "parallel": 1},
         "executor": executor(partition, tasks_per_node=2)}
    d["study"]["seed"] = _seed_for_picks(parse_sweep_spec(d).study, "optim.lr", [1e-2, 1e-7])
    spec = parse_sweep_spec(d)
    out: list[str] = []
    run_sweep(spec, wait=True, out=out.append, poll_s=1.0)
    sw = Sweep(spec)
    assert [s.state for s in sw.statuses()] == ["finished", "pruned"], "\n".join(out)
    for rec in jobs_of(sw).values():  # both ranks of every job ended normally
        for rank in (0, 1):
            log = (sw.dir / "submitit" / rec[0] / f"{rec[0]}_{rank}_log.out").read_text()
            assert "Job completed successfully" in log, log[-500:]
    study = optuna.load_study(study_name="ddp", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sw.dir / "optuna.journal"))))
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    assert len(study.trials[1].intermediate_values) == 1  # reported once (rank 0), pruned at once
    _, _, children = mlflow_runs(tmp_path, "ddp")
    assert sorted(r.data.tags["status"] for r in children) == ["finished", "pruned"]
