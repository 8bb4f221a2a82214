"""`suite sweep logs / cancel / resubmit --lost` against the local SLURM cluster (skipped when it is
not running: `bash scripts/slurm_local.sh start`). One small point, cancelled twice."""
from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from suite.sweeps import Sweep, parse_sweep_spec, run_sweep, wait_for
from suite.sweeps import control

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
WAIT_S = 240


@pytest.fixture(scope="module")
def partition() -> str | None:
    try:
        r = subprocess.run([str(REPO / "scripts" / "slurm_local.sh"), "status"], capture_output=True, text=True, timeout=60)
        up = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        up = False
    if not up:
        pytest.skip("local SLURM cluster is not running (start it with scripts/slurm_local.sh start)")
    parts = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    return "local" if "local" in parts else None


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _until(cond, what: str):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if cond():
            return
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}")


def test_slurm_logs_cancel_and_resubmit_lost(tmp_path, partition):
    spec = parse_sweep_spec({
        "name": "ctl", "base": "builtin:demo-digits",
        "set": {"model.preset": "SiT-Nano/4", "model.depth": 1, "train.batch_size": 32, "train.total_images": 50_000_000,
                "train.log_every_images": 32, "train.ckpt_every_images": 320, "train.val_every_images": 0,
                "train.val_images": 64, "tracking.log_samples": False, "train.runs_root": str(tmp_path)},
        "grid": {"seed": [0]},
        "executor": {"kind": "slurm", "partition": partition, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10}})
    assert run_sweep(spec, wait=False, out=lambda _: None) == 0
    sw = Sweep(spec)

    def training():
        sw.reload()
        s = sw.statuses()[0]
        return s.alive and s.images_seen > 0

    _until(training, "the SLURM job to train")
    buf = io.StringIO()
    control.logs(sw, "0", out=buf)  # the job's stdout (on SLURM Submitit's own log lines go there too)
    assert "submitit" in buf.getvalue()
    first = sw.statuses()[0].job_id
    lines = []
    assert control.cancel(sw, ["seed=0"], out=lines.append) == 0 and f"job {first}" in lines[0]
    final = wait_for(sw, lambda _: None, poll_s=1.0, timeout_s=WAIT_S)
    assert final[0].state in ("lost", "interrupted") and final[0].needs_submit

    assert control.resubmit(spec, lost=True, out=lambda _: None, wait=False) == 0
    units = json.loads((sw.dir / "sweep.json").read_text())["units"]
    ids = [j["job_id"] for j in next(iter(units.values()))["jobs"]]
    assert len(ids) == 2 and ids[1] != first
    sw.reload()
    control.cancel(sw, out=lambda _: None)  # leave the shared cluster empty
    wait_for(sw, lambda _: None, poll_s=1.0, timeout_s=WAIT_S)
