"""A sweep's code snapshot: its jobs import the `suite` copied into the sweep directory at the first
submission, not the checkout; a resubmission keeps that copy after the checkout changed;
`--update-code` replaces it; `status` says when the checkout differs. The "checkout" that changes is a
copy of the package in tmp_path (handed in as `code_source`): the real one is never edited."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from suite.cli import main as suite_main
from suite.sweeps import Sweep, load_sweep_spec, run_sweep, status_sweep
from suite.sweeps import control
from suite.sweeps.code_snapshot import code_hash, job_python, live_package, take_snapshot
from suite.sweeps.jobs import code_tags

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_env_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def checkout_copy(tmp_path: Path) -> Path:
    """A copy of the `suite` package, standing in for a checkout the user edits."""
    dst = tmp_path / "checkout" / "suite"
    shutil.copytree(live_package(), dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def write_spec(tmp_path: Path, kind: str = "local") -> Path:
    tiny = {"model.preset": "SiT-Nano/4", "model.depth": 1, "optim.ema_decay": 0.9, "train.batch_size": 32,
            "train.total_images": 64, "train.log_every_images": 32, "train.ckpt_every_images": 64,
            "train.val_every_images": 0, "train.val_images": 64, "train.threads": 1, "sampling.steps": 2,
            "tracking.log_samples": False, "train.runs_root": str(tmp_path), "method.name": "vanilla"}
    p = tmp_path / "code.yaml"
    p.write_text(yaml.safe_dump({"name": "code", "base": "builtin:demo-digits", "set": tiny, "grid": {"seed": [0]},
                                 "executor": {"kind": kind, "array_parallelism": 1}}))
    return p


def sweep_json(sw) -> dict:
    return json.loads((sw.dir / "sweep.json").read_text())


def last_start(run_dir: Path) -> dict:
    lines = [json.loads(ln) for ln in (run_dir / "attempts.jsonl").read_text().splitlines()]
    return [ln for ln in lines if ln["event"] == "start"][-1]


def status_lines(spec, src: Path | None = None) -> list[str]:
    lines: list[str] = []
    status_sweep(spec, out=lines.append, code_source=src)
    return lines


def test_snapshot_holds_sources_and_presets_and_is_named_by_content(tmp_path):
    src = checkout_copy(tmp_path)
    (src / "__pycache__").mkdir(exist_ok=True)
    (src / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (src / "notes.txt").write_text("not code")
    rec = take_snapshot(tmp_path / "sweep", src)
    snap = tmp_path / "sweep" / "code" / rec["hash"] / "suite"
    assert (snap / "__init__.py").is_file() and (snap / "sweeps" / "jobs.py").is_file()
    assert list(snap.glob("configs/*.yaml")), "the builtin presets travel with the code"
    assert not list(snap.rglob("__pycache__")) and not (snap / "notes.txt").exists()
    assert rec["hash"] == code_hash(src) == code_hash(snap) and rec["git"] is None  # tmp_path: no git
    assert code_hash(src) == code_hash(live_package())  # the hash ignores __pycache__ and other files

    (src / "flow.py").write_text((src / "flow.py").read_text() + "\n# edited\n")
    again = take_snapshot(tmp_path / "sweep", src)
    assert again["hash"] != rec["hash"] and (snap / "__init__.py").is_file()  # the old one stays

    cmd = job_python(snap.parent)
    assert cmd.startswith("env PYTHONSAFEPATH=1 PYTHONPATH=" + str(snap.parent) + ":")


def test_local_jobs_run_the_snapshot_resubmit_keeps_it_update_code_replaces_it(tmp_path):
    src = checkout_copy(tmp_path)
    spec = load_sweep_spec(write_spec(tmp_path))
    out: list[str] = []
    assert run_sweep(spec, out=out.append, poll_s=0.5, code_source=src) == 0, "\n".join(out)
    sw = Sweep(spec)
    h1 = sweep_json(sw)["code"]["hash"]
    snap1 = sw.dir / "code" / h1
    assert h1 == code_hash(src) and any(f"code: snapshot {h1}" in ln for ln in out), out
    unit = sw.units[0]
    assert sweep_json(sw)["units"][unit.key]["jobs"][-1]["code"] == h1
    start = last_start(unit.run_dir)  # written by the job itself
    assert Path(start["suite_file"]) == snap1 / "suite" / "__init__.py" and start["code_hash"] == h1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("selfflow-suite")
    child = [r for r in client.search_runs([exp.experiment_id], "tags.sweep = 'code'")
             if r.data.tags.get("sweep_role") != "parent"]
    assert [r.data.tags.get("code_hash") for r in child] == [h1]
    assert not [ln for ln in status_lines(spec, src) if ln.startswith("code:")]

    # The checkout changes: status says so, in one line; a resubmitted point still runs the snapshot.
    (src / "__init__.py").write_text((src / "__init__.py").read_text() + "\nEDITED_AFTER_LAUNCH = True\n")
    h2 = code_hash(src)
    differ = [ln for ln in status_lines(spec, src) if ln.startswith("code:")]
    assert len(differ) == 1 and h2 in differ[0] and h1 in differ[0] and "differs" in differ[0]
    shutil.rmtree(unit.run_dir)
    out.clear()
    assert control.resubmit(spec, points=["seed=0"], out=out.append, code_source=src) == 0
    assert [ln for ln in out if ln.startswith("code:")] == differ  # said while submitting too
    start = last_start(unit.run_dir)
    assert Path(start["suite_file"]) == snap1 / "suite" / "__init__.py" and start["code_hash"] == h1
    assert sweep_json(sw)["code"]["hash"] == h1

    # --update-code: a new snapshot from the checkout, recorded, and the job runs it.
    shutil.rmtree(unit.run_dir)
    out.clear()
    assert control.resubmit(spec, points=["seed=0"], out=out.append, update_code=True, code_source=src) == 0
    data = sweep_json(sw)
    assert data["code"]["hash"] == h2 and data["code_history"][-1]["hash"] == h1
    assert any(f"points already run used {h1}" in ln for ln in out), out
    start = last_start(unit.run_dir)
    assert start["code_hash"] == h2 and Path(start["suite_file"]) == sw.dir / "code" / h2 / "suite" / "__init__.py"
    assert "EDITED_AFTER_LAUNCH" in Path(start["suite_file"]).read_text()
    assert [j.get("code") for j in data["units"][unit.key]["jobs"]] == [h1, h1, h2]
    assert (snap1 / "suite" / "__init__.py").is_file()  # kept for jobs submitted with it
    assert not [ln for ln in status_lines(spec, src) if ln.startswith("code:")]


def test_cli_update_code_takes_the_checkout(tmp_path, capsys):
    """`suite sweep resubmit SPEC POINT --update-code` (debug executor: in this process)."""
    src = checkout_copy(tmp_path)
    (src / "flow.py").write_text((src / "flow.py").read_text() + "\n# another version\n")
    path = write_spec(tmp_path, kind="debug")
    spec = load_sweep_spec(path)
    assert run_sweep(spec, out=lambda _: None, code_source=src) == 0
    sw = Sweep(spec)
    old = sweep_json(sw)["code"]["hash"]
    assert old == code_hash(src)
    assert suite_main(["sweep", "resubmit", str(path), "seed=0"]) == 2  # finished: refused, snapshot kept
    shutil.rmtree(sw.units[0].run_dir)
    capsys.readouterr()
    assert suite_main(["sweep", "resubmit", str(path), "seed=0", "--update-code"]) == 0
    live = code_hash(live_package())
    assert sweep_json(sw)["code"]["hash"] == live != old
    assert f"snapshot updated {old} -> {live}" in capsys.readouterr().out
    # a debug job runs in the dispatcher: it records the code it imported (the checkout's) and no snapshot
    assert last_start(sw.units[0].run_dir)["code_hash"] == live
    assert "code" not in sweep_json(sw)["units"][sw.units[0].key]["jobs"][-1]


def test_code_tags_name_every_code_a_run_resumed_with(tmp_path):
    code = {"code_hash": "bbbb", "code_git": "v1-3-gabc"}
    assert code_tags(tmp_path, code) == {"code_hash": "bbbb", "code_git": "v1-3-gabc"}  # a new run
    starts = [{"event": "start", "code_hash": "aaaa"}, {"event": "checkpoint"}, {"event": "start", "code_hash": "aaaa"},
              {"event": "start", "code_hash": "bbbb"}]
    (tmp_path / "attempts.jsonl").write_text("".join(json.dumps(s) + "\n" for s in starts))
    assert code_tags(tmp_path, code)["code_hash"] == "aaaa+bbbb"
    assert code_tags(tmp_path, {"code_hash": "aaaa"}) == {"code_hash": "aaaa+bbbb"}  # in order of first use


FAKE_SBATCH = r"""#!/bin/bash
# sbatch stand-in: start the job script in the background, as SLURM would, with SLURM's variables
script="${@: -1}"
id=$(( $(date +%s%N) / 1000 % 100000000 ))
cp "$script" "$FAKE_SLURM/$id.sh"  # Submitit moves the script once sbatch returns
(export SLURM_JOB_ID=$id SLURM_NTASKS=1 SLURM_JOB_NUM_NODES=1 SLURM_NODEID=0 SLURM_JOB_NODELIST=localhost \
   SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_CPUS_PER_TASK=1
 setsid bash -c "sleep 2; bash $FAKE_SLURM/$id.sh" >"$FAKE_SLURM/$id.out" 2>&1 </dev/null & echo $! >"$FAKE_SLURM/$id.pid")
echo "Submitted batch job $id"
"""
FAKE_SRUN = r"""#!/bin/bash
# srun stand-in: drop its options, keep where it sends the output
while [[ $# -gt 0 && "$1" == -* ]]; do
  case "$1" in --output) out=$2; shift 2;; --error) err=$2; shift 2;; *) shift;; esac
done
out=${out//%j/$SLURM_JOB_ID}; out=${out//%t/0}; err=${err//%j/$SLURM_JOB_ID}; err=${err//%t/0}
mkdir -p "$(dirname "$out")"
exec "$@" >>"$out" 2>>"${err:-$out}"
"""
FAKE_SQUEUE = r"""#!/bin/bash
# squeue stand-in: every job whose script is still running
for p in "$FAKE_SLURM"/*.pid; do
  [ -e "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null && echo "$(basename "$p" .pid)|RUNNING"
done
exit 0
"""


def test_slurm_job_script_imports_the_snapshot(tmp_path, monkeypatch):
    """The SLURM path without a cluster: sbatch, srun and squeue stand-ins run Submitit's job script
    here, from the checkout as working directory (where `python -m` would import the checkout)."""
    bin_dir, fake = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    fake.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("squeue", FAKE_SQUEUE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(fake))
    monkeypatch.chdir(live_package().parent)
    src = checkout_copy(tmp_path)
    spec = load_sweep_spec(write_spec(tmp_path, kind="slurm"))
    out: list[str] = []
    assert run_sweep(spec, wait=True, out=out.append, poll_s=0.5, code_source=src) == 0, \
        "\n".join(out) + "".join(p.read_text() for p in fake.glob("*.out"))
    sw = Sweep(spec)
    h = sweep_json(sw)["code"]["hash"]
    script = next(fake.glob("*.sh")).read_text()
    assert f"env PYTHONSAFEPATH=1 PYTHONPATH={sw.dir / 'code' / h}:" in script
    start = last_start(sw.units[0].run_dir)
    assert start["suite_file"] == str(sw.dir / "code" / h / "suite" / "__init__.py") and start["code_hash"] == h
    assert start["job_id"] == sweep_json(sw)["units"][sw.units[0].key]["jobs"][-1]["job_id"]
