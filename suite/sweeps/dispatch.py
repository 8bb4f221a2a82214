"""`suite sweep SPEC`: submit the units that need it, with Submitit, and record their jobs.

Idempotent: every run recomputes each unit's state (status.py) and submits only the ones that are
new, failed, lost or interrupted; finished (and pruned) units and units whose job is alive are
left alone. SLURM: one job array per call (`executor.batch()`), `array_parallelism` at once, and
the call returns after submission unless `wait`. Local: at most `array_parallelism` processes at
once, and the call waits. Debug: one after the other, in this process.

Before any job starts, the dispatcher creates the MLflow store and the sweep's parent run (child
runs point at it with `mlflow.parentRunId` and carry the tag `sweep=<name>`), and the Optuna study
(concurrent creation of a new SQLite database crashes some of the creators). The first submission
copies the `suite` package into the sweep directory; local and SLURM jobs import that snapshot,
not the checkout (code_snapshot.py), until `update_code` replaces it.
"""
from __future__ import annotations

import contextlib
import fcntl
import sys
import time
from pathlib import Path
from typing import Callable

from suite.errors import SuiteError
from suite.sweeps import plan as P
from suite.sweeps.code_snapshot import code_status, ensure_snapshot, job_python, snapshot_dir
from suite.sweeps.spec import ExecutorSpec, SweepSpec, check_executor_kind
from suite.sweeps.state import SweepDir
from suite.sweeps.status import UnitStatus, format_table, summary, unit_statuses

Printer = Callable[[str], None]


# ----------------------------------------------------------------------------- executors
def make_executor(e: ExecutorSpec, kind: str, folder: Path, name: str, parallelism: int, python: str | None = None):
    """`python`: the command jobs start Python with (local and SLURM; code_snapshot.job_python)."""
    import submitit

    kw = {"slurm_max_num_timeout": e.max_requeues} if kind == "slurm" else {}
    if python and kind in ("local", "slurm"):
        kw[f"{kind}_python"] = python
    ex = submitit.AutoExecutor(folder=str(folder), cluster=kind, **kw)
    params = dict(name=name, timeout_min=e.timeout_min, nodes=e.nodes, tasks_per_node=e.tasks_per_node,
                  cpus_per_task=e.cpus_per_task, gpus_per_node=e.gpus_per_node,
                  mem_gb=float(e.mem_gb) if e.mem_gb else None)
    if kind == "slurm":
        params.update(slurm_partition=e.partition, slurm_account=e.account, slurm_qos=e.qos,
                      slurm_constraint=e.constraint, slurm_array_parallelism=parallelism,
                      slurm_signal_delay_s=e.signal_delay_s,
                      slurm_additional_parameters=dict(e.additional) or None, slurm_setup=list(e.setup) or None)
    elif kind == "local" and e.setup:
        params["local_setup"] = list(e.setup)
    ex.update_parameters(**params)
    return ex


def resources(e: ExecutorSpec, kind: str, parallelism: int) -> str:
    parts = [f"executor={kind}"]
    if kind == "slurm":
        parts += [f"{k}={v}" for k, v in (("partition", e.partition), ("account", e.account), ("qos", e.qos),
                                           ("constraint", e.constraint)) if v]
    parts += [f"nodes={e.nodes}", f"tasks/node={e.tasks_per_node}", f"cpus/task={e.cpus_per_task}",
              f"gpus/node={e.gpus_per_node}", f"mem={e.mem_gb}G" if e.mem_gb else "mem=default",
              f"time={e.timeout_min}min", f"parallel={parallelism}"]
    if kind == "slurm" and e.additional:
        parts.append("sbatch:" + ",".join(f"--{k}" if v is True else f"--{k}={v}" for k, v in e.additional.items()))
    return " ".join(parts)


# ----------------------------------------------------------------------------- tracking
def ensure_parent_run(spec: SweepSpec, sd: SweepDir, tracking: dict) -> str | None:
    """The sweep's MLflow parent run: created once (this also creates the store), then reused."""
    if not tracking.get("enabled", True):
        return None
    from suite.tracking import ensure_experiment, get_client, with_retry

    uri, client = tracking["uri"], get_client(tracking["uri"])
    exp_id = ensure_experiment(client, tracking["experiment"], uri)
    rid = sd.data.get("parent_run_id")
    if rid:
        try:
            with_retry(lambda: client.get_run(rid))
            with_retry(lambda: client.update_run(rid, status="RUNNING"))
            return rid
        except Exception:  # deleted store or run: make a new parent
            pass
    run = with_retry(lambda: client.create_run(exp_id, run_name=spec.name, tags={
        "sweep": spec.name, "sweep_role": "parent", "sweep_kind": spec.kind,
        "sweep_spec": str(spec.path or ""), "sweep_dir": str(sd.path)}))
    sd.data["parent_run_id"] = run.info.run_id
    sd.data["tracking_uri"] = uri
    sd.save()
    return run.info.run_id


def finish_parent_run(sd: SweepDir, statuses: list[UnitStatus]) -> None:
    """Mark the parent run FINISHED (every unit finished or pruned) or FAILED, with a summary tag."""
    rid, uri = sd.data.get("parent_run_id"), sd.data.get("tracking_uri")
    if not rid or not uri or any(s.alive for s in statuses):
        return
    from suite.tracking import get_client, with_retry

    client = get_client(uri)
    done = all(s.state in ("finished", "pruned") for s in statuses)
    try:
        if with_retry(lambda: client.get_run(rid)).info.status != "RUNNING":
            return
        with_retry(lambda: client.set_tag(rid, "sweep_summary", summary(statuses)))
        with_retry(lambda: client.set_terminated(rid, status="FINISHED" if done else "FAILED"))
    except Exception:  # tracking must never hide the sweep's outcome
        pass


# ----------------------------------------------------------------------------- the sweep
class Sweep:
    """A spec, its directory and its units: what `run` and `status` work on."""

    def __init__(self, spec: SweepSpec, kind: str | None = None):
        self.spec = spec
        self.kind = kind or spec.executor.kind
        check_executor_kind(spec.executor, self.kind, str(spec.path or spec.name))
        self.dir = P.sweep_dir(spec)
        self.units = P.plan_units(spec, self.dir)
        self.parallelism = spec.study.parallel if spec.study else spec.executor.array_parallelism
        self.code: Path | None = None  # the code snapshot jobs import (set when submitting)
        self.reload()

    def reload(self) -> None:
        """(Re)read sweep.json; a point keeps the run directory it was first given."""
        self.sd = SweepDir.open(self.dir, self.spec.name, self.spec.kind)
        for u in self.units:
            rec = self.sd.units.get(u.key)
            if rec and rec.get("run_dir") and u.point is not None:
                u.run_dir = Path(rec["run_dir"])

    def statuses(self) -> list[UnitStatus]:
        metric = self.spec.study.metric if self.spec.study else None
        total = P.base_config(self.spec).train.total_images
        return unit_statuses(self.spec, self.sd, self.units, metric, total)

    def callable_for(self, unit, tracking: dict, parent: str | None):
        from suite.sweeps.jobs import TrainPoint, TrialJob

        cpus = self.spec.executor.cpus_per_task
        code = str(self.code) if self.code and self.kind != "debug" else None  # debug: in this process
        if unit.point is not None:
            return TrainPoint(P.point_config(self.spec, unit, tracking, parent), str(unit.run_dir), cpus, code)
        track = {**tracking, "parent_run_id": parent}
        return TrialJob(self.spec, str(self.dir), unit.slot, P.study_base(self.spec), track, cpus, code)

    def executor(self, kind: str, parallelism: int):
        python = job_python(self.code) if self.code else None
        return make_executor(self.spec.executor, kind, self.sd.submitit_folder, f"sweep-{self.spec.name}",
                             parallelism, python)

    def record_job(self, unit, job_id: str) -> None:
        code = (self.sd.data.get("code") or {}).get("hash") if self.kind != "debug" else None
        self.sd.record_job(unit.key, job_id, self.kind, code=code)

    def _register(self, unit) -> None:
        rec = self.sd.units.setdefault(unit.key, {"jobs": []})
        rec.update(index=unit.index, label=unit.label, hash=unit.hash,
                   run_dir=str(unit.run_dir) if unit.run_dir else None)
        if unit.point is not None:
            rec["overrides"] = unit.point.overrides


def print_plan(sw: Sweep, statuses: list[UnitStatus], out: Printer) -> None:
    spec = sw.spec
    out(f"sweep {spec.name} ({spec.kind}, {len(sw.units)} {'points' if spec.grid is not None else 'trials'}) in {sw.dir}")
    out(f"resources per job: {resources(spec.executor, sw.kind, sw.parallelism)}")
    if spec.study is not None:
        s = spec.study
        from suite.sweeps.study import storage_url

        out(f"study: {s.direction} {s.metric}; sampler={s.sampler} pruner={s.pruner}; "
            f"n_trials={s.n_trials} parallel={s.parallel}; storage={storage_url(spec, sw.dir)}")
        for k, p in s.space.items():
            rng = f"choices={p.choices}" if p.type == "categorical" else f"[{p.low}, {p.high}]" + (" log" if p.log or p.type == "log" else "")
            out(f"  space {k}: {p.type} {rng}")
    out(format_table(statuses, study=spec.study is not None))
    todo = [s for s in statuses if s.needs_submit]
    out(f"would submit {len(todo)} job(s); {summary(statuses)}")


@contextlib.contextmanager
def _exclusive(sweep_dir: Path, name: str):
    """One dispatcher per sweep at a time: two would submit the same points."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SuiteError(f"sweep {name}: another `suite sweep` is submitting it now ({sweep_dir / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_sweep(spec: SweepSpec, kind: str | None = None, dry_run: bool = False, wait: bool | None = None,
              out: Printer = print, poll_s: float = 2.0, only: Callable[[UnitStatus], bool] | None = None,
              update_code: bool = False, code_source: Path | None = None) -> int:
    """Submit what needs submitting (of the units `only` accepts); returns 0, or 1 when waiting
    ended with failed units. Jobs import the sweep's code snapshot, taken from `code_source` (the
    `suite` package; default: the one this process runs) on the first submission, or now when
    `update_code`."""
    sw = Sweep(spec, kind)
    if dry_run:
        print_plan(sw, sw.statuses(), out)
        return 0
    wait = (sw.kind != "slurm") if wait is None else wait
    with _exclusive(sw.dir, spec.name):
        sw.reload()
        statuses = sw.statuses()
        todo = [s.unit for s in statuses if s.needs_submit and (only is None or only(s))]
        if not todo:
            kept = "; the code snapshot is left as it is" if update_code else ""
            out(f"sweep {spec.name}: nothing to submit ({summary(statuses)}){kept}")
            return 0
        for u in sw.units:
            sw._register(u)
        sw.sd.save()
        sw.code = snapshot_dir(sw.dir, ensure_snapshot(sw.sd, code_source, update_code, out)["hash"])
        tracking = P.tracking_settings(spec)
        parent = ensure_parent_run(spec, sw.sd, tracking)
        if spec.study is not None:
            from suite.sweeps.study import create_study

            create_study(spec, sw.dir)
        out(f"sweep {spec.name}: submitting {len(todo)} job(s) ({resources(spec.executor, sw.kind, sw.parallelism)})")
        submit = {"slurm": _submit_slurm, "local": _submit_local, "debug": _submit_debug}[sw.kind]
        submit(sw, todo, tracking, parent, out, poll_s)
    if not wait:
        return 0
    final = wait_for(sw, out, poll_s)
    finish_parent_run(sw.sd, final)
    out(format_table(final, study=spec.study is not None))
    out(f"sweep {spec.name}: {summary(final)}")
    return 0 if all(s.state in ("finished", "pruned") for s in final) else 1


def _submission_error(e: Exception, kind: str) -> SuiteError:
    msg = " ".join(str(e).split())
    for line in str(e).splitlines():
        if "error" in line.lower():
            msg = line.strip()
            break
    return SuiteError(f"executor: {kind} submission failed: {msg[:300]}")


def _submit_slurm(sw: Sweep, todo, tracking, parent, out: Printer, poll_s: float) -> None:
    ex = sw.executor("slurm", sw.parallelism)
    fns = [sw.callable_for(u, tracking, parent) for u in todo]
    try:
        with ex.batch():
            jobs = [ex.submit(fn) for fn in fns]
    except Exception as e:  # sbatch's own message: bad partition, account, limits …
        raise _submission_error(e, "slurm") from None
    for u, job in zip(todo, jobs):
        sw.record_job(u, job.job_id)
    sw.sd.save()
    sw.sd.tidy()
    out(f"submitted job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} task(s)); "
        f"`suite sweep status {sw.spec.path or sw.spec.name}` to follow")


def _submit_local(sw: Sweep, todo, tracking, parent, out: Printer, poll_s: float) -> None:
    """Local processes, at most `parallelism` at once (the local executor itself has no limit)."""
    ex = sw.executor("local", sw.parallelism)
    queue, running, shown = list(todo), [], {}
    while queue or running:
        running = [(u, j) for u, j in running if not j.done()]
        while queue and len(running) < sw.parallelism:
            u = queue.pop(0)
            try:
                job = ex.submit(sw.callable_for(u, tracking, parent))
            except Exception as e:
                raise _submission_error(e, "local") from None
            sw.record_job(u, job.job_id)
            sw.sd.save()
            running.append((u, job))
            out(f"started {u.label} (pid {job.job_id})")
        sw.sd.tidy()
        if running:
            progress(sw, [u for u, _ in running], len(todo) - len(queue) - len(running), len(todo), out, shown)
            time.sleep(poll_s)


def progress(sw: Sweep, running, done: int, total: int, out: Printer, shown: dict) -> None:
    """One line per running point whose images-seen count moved since it was last shown:
    `  12:03:04 [2/6 done] seed=1: 6400/20000 images (32%)`."""
    from suite.train import read_state

    for u in running:
        seen = int(read_state(u.run_dir).get("images_seen", 0)) if u.run_dir else 0
        if shown.get(u.key) == seen:
            continue
        shown[u.key] = seen
        tot = u.point.cfg.train.total_images if u.point else 0
        frac = f" ({100 * seen / tot:.0f}%)" if tot else ""
        out(f"  {time.strftime('%H:%M:%S')} [{done}/{total} done, {len(running)} running] {u.label}: "
            f"{seen}/{tot or '?'} images{frac}")


def _submit_debug(sw: Sweep, todo, tracking, parent, out: Printer, poll_s: float) -> None:
    """In this process, one after the other; a failing unit is reported and the sweep goes on
    (on a terminal, Submitit's debug job opens pdb at the failure)."""
    ex = sw.executor("debug", 1)
    for u in todo:
        job = ex.submit(sw.callable_for(u, tracking, parent))
        sw.record_job(u, job.job_id)
        sw.sd.save()
        out(f"running {u.label}")
        if sys.stdin.isatty():
            try:
                job.results()
            except Exception as e:  # noqa: BLE001 - recorded by the run/slot state; keep going
                out(f"  failed: {type(e).__name__}: {e}")
        else:
            err = job.exception()
            if err is not None:
                out(f"  failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


def wait_for(sw: Sweep, out: Printer, poll_s: float = 2.0, timeout_s: float | None = None) -> list[UnitStatus]:
    """Poll until no unit has a live job; prints a line when the summary changes. Gives up with a
    SuiteError when the scheduler cannot be asked for two minutes (`unknown` states)."""
    t0, last, blind_since = time.time(), None, None
    while True:
        statuses = sw.statuses()
        line = summary(statuses)
        if line != last:
            out(f"  {time.strftime('%H:%M:%S')} {line}")
            last = line
        alive = [s for s in statuses if s.alive]
        if not alive:
            sw.sd.tidy()
            return statuses
        if all(s.state == "unknown" for s in alive):
            blind_since = blind_since or time.time()
            if time.time() - blind_since > 120:
                raise SuiteError(f"sweep {sw.spec.name}: cannot reach SLURM (squeue fails); jobs are kept, "
                                 f"`suite sweep status` when it is back")
        else:
            blind_since = None
        if timeout_s is not None and time.time() - t0 > timeout_s:
            return statuses
        time.sleep(poll_s)


def status_sweep(spec: SweepSpec, out: Printer = print, code_source: Path | None = None) -> int:
    """The table, the summary, and a line when the checkout's code (`code_source`: the `suite`
    package, default the one this process runs) is not the sweep's snapshot."""
    sw = Sweep(spec)
    sw.sd.tidy()
    statuses = sw.statuses()
    out(f"sweep {spec.name} in {sw.dir}")
    if not sw.sd.units:
        out("nothing submitted yet (`suite sweep SPEC` submits it; `--dry-run` shows the points)")
        return 0
    out(format_table(statuses, study=spec.study is not None))
    out(summary(statuses))
    line = code_status(sw.sd, code_source)
    if line:
        out(line)
    finish_parent_run(sw.sd, statuses)  # a SLURM sweep submitted without --wait ends here
    return 0
