"""Sweep control beside `suite sweep` / `status`: cancel live jobs, read a point's logs, resubmit.

- `cancel(spec, points)`: stops the live jobs of the named points (all live points when none):
  `scancel` for SLURM, SIGINT for local processes (as Submitit's own LocalJob.cancel). Submitit's
  runner ignores SIGTERM, so the run resumes from its last periodic checkpoint.
  Their units become `lost`: `resubmit --lost` (or `suite sweep SPEC`) continues them.
- `logs(spec, point, err, follow)`: the stdout (or stderr) Submitit captured for the point's last job;
  `follow` keeps printing what is appended until the job is gone.
- `resubmit(spec, failed, lost, points, update_code)`: submits only the selected units, through the
  same dispatcher as `suite sweep` (idempotent; finished and live units are never resubmitted), with
  the sweep's code snapshot, or a new one from the checkout when `update_code`.
Points are named by label (as `status` prints them), index (`#`) or config-hash prefix.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from suite.errors import SuiteError
from suite.sweeps.status import UnitStatus

Printer = Callable[[str], None]


def select(statuses: list[UnitStatus], points: Iterable[str]) -> list[UnitStatus]:
    """The statuses of the named points, in the order given; an unknown name is a SuiteError."""
    out = []
    for name in points:
        hits = [s for s in statuses if name in (s.unit.label, str(s.unit.index), s.unit.key)
                or (len(name) >= 4 and (s.unit.hash or "").startswith(name))]
        if len(hits) != 1:
            some = ", ".join(s.unit.label for s in statuses[:5])
            what = "matches several points" if hits else "is not a point of this sweep"
            raise SuiteError(f"{name!r} {what} (name points by label, # or hash prefix; e.g. {some})")
        out.append(hits[0])
    return out


def job_log(sw, status: UnitStatus, err: bool = False) -> Path:
    """Path of the Submitit log of a unit's last job."""
    from submitit.core.utils import JobPaths

    if not status.job_id:
        raise SuiteError(f"point {status.unit.label} has never been submitted: no log")
    paths = JobPaths(sw.sd.submitit_folder, job_id=status.job_id, task_id=0)
    return paths.stderr if err else paths.stdout


def cancel(sw, points: Iterable[str] = (), out: Printer = print) -> int:
    statuses = sw.statuses()
    chosen = select(statuses, points) if points else statuses
    live = [s for s in chosen if s.alive and s.job_id]
    if not live:
        out(f"sweep {sw.spec.name}: no live job to cancel")
        return 0
    by_kind: dict[str, list[UnitStatus]] = {}
    for s in live:
        job = sw.sd.units[s.unit.key]["jobs"][-1]
        by_kind.setdefault(job.get("executor", "local"), []).append(s)
    for s in by_kind.get("local", []):
        try:  # what Submitit's LocalJob.cancel sends: its runner stops the task (SIGINT, then SIGKILL)
            os.kill(int(s.job_id), signal.SIGINT)
        except (ProcessLookupError, ValueError):
            pass
    if by_kind.get("slurm"):
        ids = [s.job_id for s in by_kind["slurm"]]
        try:
            r = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
        except (FileNotFoundError, subprocess.TimeoutExpired) as e:
            raise SuiteError(f"scancel failed: {e}") from None
        if r.returncode != 0:
            raise SuiteError(f"scancel {' '.join(ids)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1][:200]}")
    for s in live:
        out(f"cancelled {s.unit.label} (job {s.job_id})")
    out(f"{len(live)} job(s) cancelled; `suite sweep resubmit {sw.spec.path or sw.spec.name} --lost` continues them")
    return 0


def logs(sw, point: str, err: bool = False, follow: bool = False, out=None, poll_s: float = 1.0) -> int:
    out = out or sys.stdout
    status = select(sw.statuses(), [point])[0]
    path = job_log(sw, status, err)
    if not path.is_file() and not (follow and status.alive):
        raise SuiteError(f"no log yet for {status.unit.label}: {path}")
    pos = 0
    while True:
        if path.is_file():
            with open(path, errors="replace") as f:
                f.seek(pos)
                chunk = f.read()
                pos = f.tell()
            if chunk:
                out.write(chunk)
                out.flush()
        if not follow:
            return 0
        sw.reload()
        now = select(sw.statuses(), [point])[0]
        if not now.alive or now.job_id != status.job_id:
            if path.is_file():  # what the job wrote as it ended
                with open(path, errors="replace") as f:
                    f.seek(pos)
                    out.write(f.read())
            return 0
        time.sleep(poll_s)


def resubmit(spec, kind: str | None = None, failed: bool = False, lost: bool = False, points: Iterable[str] = (),
             out: Printer = print, wait: bool | None = None, update_code: bool = False,
             code_source: Path | None = None) -> int:
    """Submit the failed / lost / named units only (the named ones must be resubmittable).
    `update_code`: first replace the sweep's code snapshot with `code_source` (default: this checkout)."""
    from suite.sweeps.dispatch import Sweep, run_sweep

    points = list(points)
    if not (failed or lost or points):
        raise SuiteError("say what to resubmit: --failed, --lost, or point names")
    if points:
        sw = Sweep(spec, kind)
        for s in select(sw.statuses(), points):
            if not s.needs_submit:
                raise SuiteError(f"point {s.unit.label} is {s.state}: only new, failed, lost or interrupted points are resubmitted"
                                 + ("; `suite sweep cancel` it first" if s.alive else ""))
    keys = {p for p in points}
    states = ({"failed"} if failed else set()) | ({"lost", "interrupted"} if lost else set())

    def wanted(s: UnitStatus) -> bool:
        return s.state in states or bool(keys & {s.unit.label, str(s.unit.index), s.unit.key}) or any(
            len(k) >= 4 and (s.unit.hash or "").startswith(k) for k in keys)

    return run_sweep(spec, kind=kind, wait=wait, out=out, only=wanted, update_code=update_code, code_source=code_source)
