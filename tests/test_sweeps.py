"""Sweep specs, dry runs, idempotent dispatch with the local and debug executors (no SLURM needed)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from suite.config import apply_overrides
from suite.errors import ConfigError, SuiteError
from suite.sweeps import Sweep, parse_sweep_spec, run_sweep
from suite.cli import main as suite_main
from suite.sweeps.spec import load_sweep_spec, override

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def tiny_set(root: Path, **extra) -> dict:
    """A run that trains in a second or two: 64 images of 16² digits through a 1-block SiT."""
    d = {"model.preset": "SiT-Nano/4", "model.depth": 1, "optim.ema_decay": 0.9, "train.batch_size": 32,
         "train.total_images": 64, "train.log_every_images": 32, "train.ckpt_every_images": 64,
         "train.val_every_images": 0, "train.val_images": 64, "train.threads": 1, "sampling.steps": 2,
         "tracking.log_samples": False, "train.runs_root": str(root)}
    d.update(extra)
    return d


def grid_spec(root: Path, **over) -> dict:
    d = {"name": "g", "base": "builtin:demo-digits", "set": tiny_set(root),
         "grid": {"method.name": ["vanilla", "selfflow"]}, "executor": {"kind": "local", "array_parallelism": 2}}
    d.update(over)
    return d


@pytest.fixture(autouse=True)
def _no_env_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# ----------------------------------------------------------------------------- validation
BAD = [
    ("top-level typo", {"gird": {"seed": [0, 1]}}, "gird"),
    ("executor typo", {"executor": {"kind": "slurm", "partiton": "x"}}, "executor.partiton"),
    ("executor kind", {"executor": {"kind": "cloud"}}, "executor.kind"),
    ("empty grid", {"grid": {}}, "grid"),
    ("empty list", {"grid": {"model.depth": []}}, "grid.model.depth"),
    ("grid not a list", {"grid": {"model.depth": 4}}, "grid.model.depth"),
    ("grid key not in config", {"grid": {"model.dpeth": [1, 2]}}, "model.dpeth"),
    ("grid value wrong type", {"grid": {"model.depth": [1, "deep"]}}, "model.depth"),
    ("grid field of another method", {"grid": {"method.name": ["vanilla"], "method.gamma": [0.5]}}, "method.gamma"),
    ("grid and study", {"study": {"space": {"optim.lr": {"type": "log", "low": 1e-4, "high": 1e-2}}, "metric": "val/loss_mean"}}, "grid/study"),
    ("no grid, no study", {"grid": None}, "grid/study"),
    ("set not key=value", {"set": ["model.depth"]}, "set"),
    ("set unknown key", {"set": {"train.totl_images": 5}}, "train.totl_images"),
    ("local multi-node", {"executor": {"kind": "local", "nodes": 2}}, "executor.nodes"),
    ("debug multi-task", {"executor": {"kind": "debug", "tasks_per_node": 2}}, "executor.tasks_per_node"),
    ("tasks vs gpus", {"executor": {"kind": "slurm", "gpus_per_node": 4, "tasks_per_node": 3}}, "executor.tasks_per_node"),
    ("zero timeout", {"executor": {"timeout_min": 0}}, "executor.timeout_min"),
    ("same config twice", {"grid": {"train.progress": [True, False]}}, "same run config"),
    ("bad name", {"name": "my sweep!"}, "name"),
]


def _study(**over) -> dict:
    s = {"space": {"optim.lr": {"type": "log", "low": 1e-4, "high": 1e-2}}, "metric": "val/loss_mean",
         "n_trials": 4, "parallel": 2}
    s.update(over)
    return s


BAD_STUDY = [
    ("space key not in config", _study(space={"optim.learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}), "optim.learning_rate"),
    ("log low ≤ 0", _study(space={"optim.lr": {"type": "log", "low": 0.0, "high": 1.0}}), "study.space.optim.lr.low"),
    ("low ≥ high", _study(space={"optim.lr": {"type": "float", "low": 1.0, "high": 0.5}}), "study.space.optim.lr"),
    ("categorical w/o choices", _study(space={"model.depth": {"type": "categorical"}}), "study.space.model.depth.choices"),
    ("space entry typo", _study(space={"optim.lr": {"type": "float", "lo": 0.1, "high": 1.0}}), "study.space.optim.lr.lo"),
    ("parallel > n_trials", _study(parallel=9), "study.parallel"),
    ("no metric", _study(metric=""), "study.metric"),
    ("sampler name", _study(sampler="cmaes"), "study.sampler"),
    ("pruner args", _study(pruner_args={"n_startup": 2}), "study.pruner_args"),
    ("grid sampler, continuous", _study(sampler="grid"), "study.space.optim.lr"),
    ("empty space", _study(space={}), "study.space"),
]


@pytest.mark.parametrize("what,change,key", BAD, ids=[b[0] for b in BAD])
def test_bad_grid_spec_names_the_key(tmp_path, what, change, key):
    d = grid_spec(tmp_path)
    d.update(change)
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(SuiteError) as e:
        parse_sweep_spec(d)
    msg = str(e.value)
    assert key in msg and "\n" not in msg, msg


@pytest.mark.parametrize("what,study,key", BAD_STUDY, ids=[b[0] for b in BAD_STUDY])
def test_bad_study_spec_names_the_key(tmp_path, what, study, key):
    d = grid_spec(tmp_path, study=study)
    del d["grid"]
    with pytest.raises(SuiteError) as e:
        parse_sweep_spec(d)
    msg = str(e.value)
    assert key in msg and "\n" not in msg, msg


def test_cli_bad_spec_is_one_line_and_exit_2(tmp_path, capsys):
    d = grid_spec(tmp_path, grid={"model.dpeth": [1, 2]})
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d))
    assert suite_main(["sweep", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "model.dpeth" in err and str(p) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "sweeps").exists()  # nothing submitted, no sweep directory


def test_override_values_round_trip():
    """Grid values reach the config exactly: YAML would read JSON's 1e-06 as a string."""
    for v in [1e-6, 2.5e-4, 3, True, "true", "1.0", "SiT-Nano/4", [1, 2], {"name": "local", "path": "x"}, None]:
        assert apply_overrides({}, [override("k", v)])["k"] == v


def test_shipped_specs_validate():
    sizes = {}
    for p in sorted((REPO / "sweeps").glob("*.yaml")):
        spec = load_sweep_spec(p)
        sizes[p.stem] = len(Sweep(spec).units)
    assert sizes["scaling"] == sizes["scaling-cpu"] == 12  # vanilla, REPA, Self-Flow × 4 depths
    assert sizes["ablations"] == 16 and sizes["ablations-cpu"] == 8
    assert sizes["study-selfflow"] >= 8 and sizes["study-cpu"] == 8
    methods = {u.point.cfg.method.name for u in Sweep(load_sweep_spec(REPO / "sweeps/scaling.yaml")).units}
    assert methods == {"vanilla", "repa", "selfflow"}


def test_variant_and_config_grid_keys(tmp_path):
    d = grid_spec(tmp_path, grid={
        "config": [None, "builtin:ablations/selfflow-no-rep"],
        "variant": [{"_name": "r25"}, {"_name": "r50", "method.mask_ratio": 0.5}]})
    d["set"]["method.name"] = "selfflow"
    units = Sweep(parse_sweep_spec(d)).units
    got = {u.label: (u.point.cfg.method.gamma, u.point.cfg.method.mask_ratio) for u in units}
    assert got == {"config=base, variant=r25": (0.8, 0.25), "config=base, variant=r50": (0.8, 0.5),
                   "config=selfflow-no-rep, variant=r25": (0.0, 0.25), "config=selfflow-no-rep, variant=r50": (0.0, 0.5)}


def test_base_relative_to_spec_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "run.yaml").write_text("base: builtin:demo-digits\nmodel: {depth: 3}\n")
    d = grid_spec(tmp_path, base="cfg/run.yaml", grid={"seed": [0, 1]})
    d["set"].pop("model.depth")
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    units = Sweep(load_sweep_spec(p)).units
    assert [u.point.cfg.model.depth for u in units] == [3, 3] and [u.point.cfg.seed for u in units] == [0, 1]


# ----------------------------------------------------------------------------- dry run
def test_dry_run_prints_points_and_resources_and_submits_nothing(tmp_path):
    d = grid_spec(tmp_path, grid={"method.name": ["vanilla", "selfflow"], "seed": [0, 1, 2]},
                  executor={"kind": "slurm", "partition": "p1", "qos": "high", "cpus_per_task": 3, "mem_gb": 4,
                            "timeout_min": 7, "additional": {"requeue": True}})
    spec = parse_sweep_spec(d)
    lines = []
    assert run_sweep(spec, dry_run=True, out=lines.append) == 0
    text = "\n".join(lines)
    for u in Sweep(spec).units:
        assert u.hash[:8] in text and u.label in text
    assert "would submit 6 job(s)" in text
    assert "partition=p1" in text and "qos=high" in text and "cpus/task=3" in text and "mem=4.0G" in text
    assert "time=7min" in text and "--requeue" in text
    lines.clear()
    run_sweep(spec, kind="local", dry_run=True, out=lines.append)
    assert "executor=local" in lines[1] and "partition" not in lines[1]
    assert not (tmp_path / "sweeps").exists()


# ----------------------------------------------------------------------------- dispatch
def _jobs(sweep_dir: Path) -> dict[str, list]:
    units = json.loads((sweep_dir / "sweep.json").read_text())["units"]
    return {k: [j["job_id"] for j in v.get("jobs", [])] for k, v in units.items()}


def test_local_grid_is_idempotent_and_tracked(tmp_path):
    spec = parse_sweep_spec(grid_spec(tmp_path))
    sw = Sweep(spec)
    out = []
    assert run_sweep(spec, out=out.append, poll_s=0.5) == 0
    st = sw.statuses()
    assert [s.state for s in st] == ["finished", "finished"], "\n".join(out)
    assert all(s.images_seen == 64 for s in st)
    first = _jobs(sw.dir)
    assert all(len(j) == 1 for j in first.values())

    # Re-running a finished sweep submits nothing.
    out.clear()
    assert run_sweep(spec, out=out.append) == 0
    assert "nothing to submit" in out[-1] and _jobs(sw.dir) == first

    # Delete one point's state: exactly that point is resubmitted, in the same run directory
    # (in this process with the debug executor: the choice of units does not depend on the executor).
    victim = st[1].unit
    shutil.rmtree(victim.run_dir)
    out.clear()
    assert run_sweep(spec, kind="debug", out=out.append) == 0
    again = _jobs(sw.dir)
    assert len(again[victim.key]) == 2 and again[st[0].unit.key] == first[st[0].unit.key]
    assert (victim.run_dir / "state.json").exists()
    assert [s.state for s in Sweep(spec).statuses()] == ["finished", "finished"]

    # MLflow: one parent run, one child per point pointing at it, tagged with the sweep.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("selfflow-suite")
    runs = client.search_runs([exp.experiment_id], "tags.sweep = 'g'")
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("sweep_role") != "parent"]
    assert len(parents) == 1 and len(children) == 3  # the deleted point's run dir was gone: a new run
    pid = parents[0].info.run_id
    assert all(r.data.tags.get("mlflow.parentRunId") == pid for r in children)
    assert {r.data.tags["sweep_point"] for r in children} == {s.unit.hash for s in st}

    # status prints the table
    lines = []
    from suite.sweeps import status_sweep

    status_sweep(spec, out=lines.append)
    assert sum("finished" in ln for ln in lines) >= 2 and "64/64 (100%)" in "\n".join(lines)


def _seed_where_slots_pick(study_spec, wanted: list, key: str = "data.name") -> int:
    """A study seed for which slot i's random sampler picks wanted[i] (every job seeds its own sampler)."""
    import optuna

    from suite.sweeps.study import distributions, make_sampler, slot_seed

    for seed in range(200):
        study_spec.seed = seed
        picks = []
        for slot in range(len(wanted)):
            st = optuna.create_study(sampler=make_sampler(study_spec, slot_seed(study_spec, slot)))
            picks.append(st.ask(distributions(study_spec)).params[key])
        if picks == wanted:
            return seed
    raise AssertionError("no seed found")


def test_debug_study_records_failed_trial_and_goes_on(tmp_path):
    """A trial that fails while its run is built (an image folder that is not there: the config is
    valid, the data is missing) is FAIL in the study; the next trial still runs and completes; the
    status table shows both, with the error. (A config that is invalid in itself, e.g. block 99 of
    a 1-block model, is refused when the spec is loaded: test_sweeps_reject_bad_points_up_front.)"""
    import optuna

    d = grid_spec(tmp_path, study={"space": {"data.name": {"type": "categorical", "choices": ["folder", "digits"]}},
                                   "metric": "val/loss_mean", "sampler": "random", "pruner": "none",
                                   "n_trials": 2, "parallel": 1},
                  executor={"kind": "debug"})
    del d["grid"]
    d["set"]["data.root"] = str(tmp_path / "no-such-folder")
    d["study"]["seed"] = _seed_where_slots_pick(parse_sweep_spec(d).study, ["folder", "digits"])
    spec = parse_sweep_spec(d)
    out = []
    assert run_sweep(spec, out=out.append) == 1  # one unit failed
    sw = Sweep(spec)
    st = {s.unit.slot: s for s in sw.statuses()}
    assert (st[0].state, st[1].state) == ("failed", "finished")
    assert "image folder not found" in st[0].error
    study = optuna.load_study(study_name="g", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sw.dir / "optuna.journal"))))
    assert [(t.state.name, t.params["data.name"]) for t in study.trials] == [("FAIL", "folder"), ("COMPLETE", "digits")]
    assert study.trials[1].value == pytest.approx(st[1].metric[1])
    assert study.trials[1].user_attrs["run_dir"] == str(st[1].run_dir)


def test_pruning_callback_prunes_and_reports_steps():
    import optuna

    from suite.sweeps.study import PruningCallback

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    trial = study.ask()
    cb = PruningCallback(trial, "val/loss_mean")
    cb.on_log(32, {"train/loss": 5.0})  # not the metric: ignored
    cb.on_log(64, {"val/loss_mean": 0.5})  # under the threshold: goes on
    with pytest.raises(optuna.TrialPruned):
        cb.on_eval(128, {"val/loss_mean": 2.0})
    assert study.trials[0].intermediate_values == {64: 0.5, 128: 2.0}


def test_second_dispatcher_is_refused(tmp_path):
    """Two `suite sweep` of one sweep at once would submit the same points twice."""
    from suite.sweeps.dispatch import _exclusive

    spec = parse_sweep_spec(grid_spec(tmp_path))
    sw = Sweep(spec)
    with _exclusive(sw.dir, "g"):
        with pytest.raises(SuiteError, match="another `suite sweep`"):
            run_sweep(spec, out=lambda s: None)
    assert not (sw.dir / "sweep.json").exists()


def test_sweeps_reject_bad_points_up_front(tmp_path):
    """Every point of a grid and every corner of a study space is validated when the spec is
    loaded, with the same one-line message `suite config` gives: nothing is submitted."""
    d = grid_spec(tmp_path, study={"space": {"method.student_block": {"type": "categorical", "choices": [1, 99]}},
                                   "metric": "val/loss_mean", "sampler": "random", "pruner": "none",
                                   "n_trials": 2, "parallel": 1},
                  executor={"kind": "debug"})
    del d["grid"]
    d["set"]["method.name"] = "selfflow"
    with pytest.raises(ConfigError, match=r"method.student_block: block 99 outside 1\.\.1"):
        parse_sweep_spec(d)
