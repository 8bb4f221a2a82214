"""The state of every unit of a sweep, and the table `suite sweep status` prints.

States: new (never submitted), pending/running/... (its job is alive: the scheduler's word),
finished, pruned (terminal), failed (the job or the run failed), lost (the job is gone and the
run is unfinished: killed, cancelled, node failure), interrupted (the run stopped early).
Everything except terminal and alive states is resubmitted by `suite sweep`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from suite.sweeps.plan import Unit
from suite.sweeps.state import TERMINAL, Scheduler, SweepDir, job_error, last_log_line, last_metric


@dataclass
class UnitStatus:
    unit: Unit
    state: str
    job_id: Optional[str] = None
    images_seen: int = 0
    total_images: int = 0
    metric: Optional[tuple[str, float]] = None
    error: Optional[str] = None
    run_dir: Optional[Path] = None
    trial: Optional[int] = None

    @property
    def alive(self) -> bool:
        return self.state not in TERMINAL and self.state not in ("new", "failed", "lost", "interrupted")

    @property
    def needs_submit(self) -> bool:
        return self.state in ("new", "failed", "lost", "interrupted")


def _last_job(rec: dict) -> Optional[dict]:
    jobs = rec.get("jobs") or []
    return jobs[-1] if jobs else None


def unit_statuses(spec, sd: SweepDir, units: list[Unit], metric: str | None = None,
                  total_images: int = 0) -> list[UnitStatus]:
    from suite.train import read_state

    kinds = {j.get("executor") for rec in sd.units.values() for j in rec.get("jobs", [])}
    sched = Scheduler.snapshot(need_slurm="slurm" in kinds)
    trials = {}
    if spec.study is not None:
        from suite.sweeps import study as S

        trials = S.trial_states(spec, sd.path) if (sd.path / "trials").exists() else {}  # no slot: no trial yet
    out = []
    for u in units:
        rec = sd.units.get(u.key, {})
        job = _last_job(rec)
        live = sched.job_state(job) if job else None
        st = UnitStatus(u, "new", job_id=job["job_id"] if job else None)
        run_dir = u.run_dir
        trial_state = None
        if spec.study is not None:
            from suite.sweeps import study as S

            slot = S.read_slot(sd.path, u.slot)
            if slot:
                st.trial = slot.get("trial_number")
                run_dir = Path(slot["run_dir"]) if slot.get("run_dir") else None
                trial_state = trials.get(st.trial, slot.get("state"))
                if slot.get("value") is not None:
                    st.metric = (spec.study.metric, slot["value"])
                st.error = slot.get("error")
        st.run_dir = run_dir
        rs = read_state(run_dir) if run_dir else {}
        st.images_seen = int(rs.get("images_seen", 0))
        st.total_images = u.point.cfg.train.total_images if u.point else total_images
        if run_dir and st.metric is None:
            st.metric = last_metric(run_dir, (metric,) if metric else ("val/loss_mean", "train/loss"))
        if spec.study is not None:
            st.state = _trial_unit_state(trial_state, live, job, rs)
        else:
            st.state = _grid_unit_state(rs, live, job)
        if st.state in ("failed", "lost") and job and not st.error:
            st.error = job_error(sd.submitit_folder, job["job_id"])
            if st.error and st.state == "lost":
                st.state = "failed"  # the job ended with an exception (e.g. before the run wrote its state)
            st.error = st.error or last_log_line(sd.submitit_folder, job["job_id"])
        out.append(st)
    return out


def _grid_unit_state(rs: dict, live: Optional[str], job: Optional[dict]) -> str:
    status = rs.get("status")
    if status == "finished":
        return "finished"
    if live:
        return live.lower()
    if status in ("failed", "interrupted"):
        return status
    return "lost" if job else "new"


def _trial_unit_state(trial_state: Optional[str], live: Optional[str], job: Optional[dict], rs: dict) -> str:
    if trial_state == "COMPLETE":
        return "finished"
    if trial_state == "PRUNED":
        return "pruned"
    if live:
        return live.lower()
    if trial_state == "FAIL":
        return "failed"
    return "lost" if job else "new"


# ----------------------------------------------------------------------------- printing
def format_table(statuses: list[UnitStatus], study: bool = False) -> str:
    head = ["#", "trial" if study else "point", "hash", "state", "job", "progress", "last metric"]
    rows = []
    for s in statuses:
        u = s.unit
        label = (f"slot {u.slot}" + (f" / trial {s.trial}" if s.trial is not None else "")) if study else u.label
        if s.total_images:
            prog = f"{s.images_seen}/{s.total_images} ({100 * s.images_seen / s.total_images:.0f}%)"
        else:
            prog = str(s.images_seen) if s.images_seen else "-"
        met = f"{s.metric[0]}={s.metric[1]:.4g}" if s.metric else "-"
        if s.error and s.state in ("failed", "lost"):
            met = f"{met}  [{s.error[:80]}]"
        h = (u.hash or "")[:8]
        if study and s.run_dir is not None:
            h = s.run_dir.name.rsplit("-", 1)[-1]
        rows.append([str(u.index), label, h or "-", s.state, s.job_id or "-", prog, met])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def summary(statuses: list[UnitStatus]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
