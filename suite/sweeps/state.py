"""The sweep directory and the state of each of its units (grid points or trial slots).

    <sweep_dir>/sweep.json        units: key, hash, run dir, overrides, every job submitted for it (and
                                  the code hash it was submitted with); `code`: the sweep's code snapshot
    <sweep_dir>/code/<hash>/suite/ the code snapshots jobs import (code_snapshot.py)
    <sweep_dir>/runs/<point>/     run directories (state.json, checkpoints/, metrics.jsonl, attempts.jsonl)
    <sweep_dir>/trials/slot-N.json which Optuna trial a slot runs (studies)
    <sweep_dir>/submitit/<job>/   Submitit pickles and logs

A unit's state is derived, never trusted from a cache: the run's own state.json (written by the
trainer) says finished; the scheduler (`squeue`, or the local PID) says whether its last job is
still alive; Submitit's result pickle says why a dead job failed. `sacct` is not needed: without
accounting, Submitit's `job.state` is UNKNOWN forever, so it is not used here.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from suite.errors import SuiteError

SWEEP_FILE = "sweep.json"
TERMINAL = ("finished", "pruned")  # never resubmitted
# squeue states of a job that still holds or will get resources
ALIVE_SLURM = {"PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
               "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "PREEMPTED", "STOPPED"}


class SweepDir:
    """sweep.json: written only by the dispatcher (workers write their own run and slot files)."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = Path(path), data

    @classmethod
    def open(cls, path: Path, name: str, kind: str) -> "SweepDir":
        p = Path(path) / SWEEP_FILE
        data = {}
        if p.exists():
            try:
                data = json.loads(p.read_text())
            except json.JSONDecodeError:
                raise SuiteError(f"{p} is not valid JSON; fix or delete it (run directories are kept)") from None
            if data.get("name") not in (None, name):
                raise SuiteError(f"sweep directory {path} belongs to sweep {data['name']!r}, not {name!r}; set dir: in the spec")
        data.setdefault("name", name)
        data.setdefault("kind", kind)
        data.setdefault("units", {})
        return cls(path, data)

    @property
    def units(self) -> dict:
        return self.data["units"]

    @property
    def submitit_folder(self) -> Path:
        return self.path / "submitit" / "%j"

    def tidy(self) -> None:
        """Remove the empty literal `submitit/%j` folder Submitit's runner leaves (job folders are per id)."""
        literal = self.submitit_folder
        try:
            if literal.is_dir() and not any(literal.iterdir()):
                literal.rmdir()
        except OSError:
            pass

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{SWEEP_FILE}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path / SWEEP_FILE)

    def record_job(self, key: str, job_id: str, kind: str, code: str | None = None) -> None:
        """`code`: the hash of the code snapshot the job was submitted with."""
        self.units[key].setdefault("jobs", []).append({"job_id": str(job_id), "executor": kind, "time": time.time(),
                                                       **({"code": code} if code else {})})


# ----------------------------------------------------------------------------- job liveness
@dataclass
class Scheduler:
    """One snapshot of what the schedulers know (one `squeue` call for all units)."""

    slurm: dict[str, str] = field(default_factory=dict)
    slurm_ok: bool = True

    @classmethod
    def snapshot(cls, need_slurm: bool) -> "Scheduler":
        if not need_slurm:
            return cls()
        try:
            out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, timeout=30)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return cls(slurm_ok=False)
        if out.returncode != 0:
            return cls(slurm_ok=False)
        states = {}
        for line in out.stdout.splitlines():
            if "|" in line:
                jid, st = line.strip().split("|", 1)
                states[jid] = st.split()[0].upper()
        return cls(slurm=states)

    def job_state(self, job: dict) -> str | None:
        """The live scheduler state of a job record, or None when the job is gone."""
        jid, kind = str(job["job_id"]), job.get("executor")
        if kind == "slurm":
            if not self.slurm_ok:
                return "UNKNOWN"  # cannot tell: never resubmit blindly
            st = self.slurm.get(jid)
            return st if st in ALIVE_SLURM else None
        if kind == "local":
            return "RUNNING" if _pid_alive(jid) else None
        return None  # debug jobs run inside the dispatcher


def _pid_alive(jid: str) -> bool:
    try:
        pid = int(jid)
    except ValueError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def job_error(folder: Path, job_id: str) -> str | None:
    """The last line of the exception a Submitit job ended with, if it wrote one."""
    from submitit.core.utils import JobPaths

    p = JobPaths(folder, job_id=str(job_id), task_id=0).result_pickle
    if not p.exists():
        return None
    try:
        import pickle

        with open(p, "rb") as f:
            outcome, payload = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - a corrupt pickle is itself the error to report
        return f"unreadable result ({type(e).__name__})"
    if outcome == "success":
        return None
    lines = [ln for ln in str(payload).strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else "failed"


def last_log_line(folder: Path, job_id: str, tail_bytes: int = 8192) -> str | None:
    """The last non-empty line of a job's stderr log (why a job without a result pickle died:
    killed, out of memory, cancelled, an import error before Submitit could write its result)."""
    from submitit.core.utils import JobPaths

    p = JobPaths(folder, job_id=str(job_id), task_id=0).stderr
    try:
        with open(p, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - tail_bytes))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:200] if lines else None


# ----------------------------------------------------------------------------- run files
def last_metric(run_dir: Path, names: tuple[str, ...], tail_bytes: int = 8192) -> tuple[str, float] | None:
    """(name, last logged value) of the first of `names` that appears in the last `tail_bytes` of
    run_dir/metrics.jsonl, or None. A status table of 1,000 points reads a few kB per run and
    parses one JSON line per run: the last line that mentions the metric."""
    p = Path(run_dir) / "metrics.jsonl"
    try:
        with open(p, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(0, end - tail_bytes))
            lines = f.read().decode(errors="replace").splitlines()
            if end > tail_bytes:
                lines = lines[1:]  # the first line may be cut
    except OSError:
        return None
    for name in names:
        needle = json.dumps(name)  # the key as it is written: "val/loss_mean"
        for line in reversed(lines):
            if needle not in line:
                continue
            try:
                value = json.loads(line).get(name)
            except json.JSONDecodeError:
                continue
            if value is not None:
                return name, value
    return None
    for line in lines:
        try:
            out.update(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
