"""Sweep control with the local executor: logs of a failed point, resubmitting only what is asked,
cancelling a live job (SLURM: tests/test_slurm_sweeps.py)."""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from suite.cli import main as suite_main
from suite.errors import SuiteError
from suite.sweeps import Sweep, load_sweep_spec, run_sweep
from suite.sweeps import control

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_env_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def tiny_set(root: Path, **extra) -> dict:
    d = {"model.preset": "SiT-Nano/4", "model.depth": 1, "optim.ema_decay": 0.9, "train.batch_size": 32,
         "train.total_images": 64, "train.log_every_images": 32, "train.ckpt_every_images": 64,
         "train.val_every_images": 0, "train.val_images": 64, "train.threads": 1, "sampling.steps": 2,
         "tracking.log_samples": False, "train.runs_root": str(root), "method.name": "selfflow"}
    d.update(extra)
    return d


def write_spec(tmp_path, name, grid, **set_extra) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"name": name, "base": "builtin:demo-digits", "set": tiny_set(tmp_path, **set_extra),
                                 "grid": grid, "executor": {"kind": "local", "array_parallelism": 2}}))
    return p


def jobs(sw) -> dict[str, int]:
    units = json.loads((sw.dir / "sweep.json").read_text())["units"]
    return {v["label"]: len(v.get("jobs", [])) for v in units.values()}


def test_failed_point_logs_status_and_resubmit_failed_only(tmp_path, capfd):
    # a point whose image folder is not there: a valid config that fails when its run is built
    path = write_spec(tmp_path, "fails", {"data.name": ["digits", "folder"]}, **{"data.root": str(tmp_path / "no-such-folder")})
    spec = load_sweep_spec(path)
    lines = []
    assert run_sweep(spec, out=lines.append, poll_s=0.5) == 1
    sw = Sweep(spec)
    # quiet, informative output: a progress line per running point, no store-migration INFO, no '%j' folder
    assert any("done, " in ln and "images" in ln for ln in lines), lines
    assert "Creating initial MLflow database" not in capfd.readouterr().err
    assert not (sw.dir / "submitit" / "%j").exists()
    st = {s.unit.label: s for s in sw.statuses()}
    bad, good = st["data.name=folder"], st["data.name=digits"]
    assert (bad.state, good.state) == ("failed", "finished")
    assert "image folder not found" in bad.error  # why it failed, in the status table

    buf = io.StringIO()
    control.logs(sw, "data.name=folder", err=True, out=buf)
    assert "image folder not found" in buf.getvalue()
    assert suite_main(["sweep", "logs", str(path), str(bad.unit.index), "--err"]) == 0
    assert "image folder not found" in capfd.readouterr().out
    assert suite_main(["sweep", "logs", str(path), "no-such-point"]) == 2
    assert "not a point" in capfd.readouterr().err
    assert suite_main(["sweep", "resubmit", str(path)]) == 2  # nothing selected
    assert suite_main(["sweep", "resubmit", str(path), good.unit.label]) == 2  # finished: refused
    assert "finished" in capfd.readouterr().err

    assert control.resubmit(spec, failed=True, out=lambda s: None) == 1  # fails again, but only it ran
    assert jobs(sw) == {"data.name=digits": 1, "data.name=folder": 2}


def test_cancel_live_local_job_then_resubmit_lost(tmp_path):
    path = write_spec(tmp_path, "long", {"seed": [0]}, **{"train.total_images": 50_000_000, "method.name": "vanilla"})
    spec = load_sweep_spec(path)

    def start_and_cancel():
        t = threading.Thread(target=run_sweep, args=(spec,), kwargs={"out": lambda s: None, "poll_s": 0.5}, daemon=True)
        t.start()
        sw = Sweep(spec)
        deadline = time.time() + 120
        while time.time() < deadline:
            sw.reload()
            s = sw.statuses()[0]
            if s.alive and s.images_seen > 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the local job never started training")
        lines = []
        assert control.cancel(sw, out=lines.append) == 0
        assert lines[0].startswith("cancelled seed=0")
        t.join(timeout=120)
        assert not t.is_alive()
        sw.reload()
        return sw, sw.statuses()[0]

    sw, s = start_and_cancel()
    assert s.state in ("lost", "interrupted") and s.needs_submit
    assert control.cancel(sw, out=lambda _: None) == 0  # nothing live: a no-op
    # resubmit --lost picks it up again (and the resumed run goes on from its checkpoint)
    t = threading.Thread(target=control.resubmit, args=(spec,), kwargs={"lost": True, "out": lambda _: None}, daemon=True)
    t.start()
    deadline = time.time() + 120
    while time.time() < deadline and jobs(sw)["seed=0"] < 2:
        time.sleep(0.5)
    assert jobs(sw)["seed=0"] == 2
    while time.time() < deadline and not Sweep(spec).statuses()[0].alive:
        time.sleep(0.5)
    control.cancel(Sweep(spec), out=lambda _: None)
    t.join(timeout=120)
    assert not t.is_alive()


def test_select_names_points_by_label_index_or_hash(tmp_path):
    spec = load_sweep_spec(write_spec(tmp_path, "names", {"seed": [0, 1]}))
    st = Sweep(spec).statuses()
    assert control.select(st, ["seed=1"])[0] is st[1]
    assert control.select(st, ["0"])[0] is st[0]
    assert control.select(st, [st[1].unit.hash[:8]])[0] is st[1]
    with pytest.raises(SuiteError, match="not a point"):
        control.select(st, ["seed=7"])
