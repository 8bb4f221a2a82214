"""The house rules of docs/ARCHITECTURE.md as facts that could fail: layers, plugins handed in,
one validation path, run directories claimed only once built, self-describing runs."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]
APP = ("suite.cli", "suite.commands")


def _suite_env(**extra) -> dict:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *[p for p in [extra.get("PYTHONPATH")] if p]])
    return env


# ----------------------------------------------------------------------------- layers
def test_import_contracts_hold():
    """import-linter's contracts in pyproject.toml: the core imports nothing above it, plugins
    and reports import only the core, no cycles between the core's packages."""
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=_suite_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_every_core_module_is_under_the_core_contract():
    """A new core module or package must be listed, or it would escape the contract silently."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = set(contracts[0]["source_modules"])
    children = {f"suite.{p.stem if p.is_file() else p.name}" for p in (ROOT / "suite").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert children - set(APP) == listed, "update [tool.importlinter] in pyproject.toml"


def test_the_core_names_no_plugin_even_as_a_string():
    """importlib calls with a literal name hide imports from import-linter: none may name a layer above."""
    above = ("baselines", "reports", *APP)
    for path in (ROOT / "suite").rglob("*.py"):
        if path.relative_to(ROOT).as_posix().startswith(("suite/cli.py", "suite/commands/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        assert not arg.value.startswith(above), f"{path}: imports {arg.value!r}"


# ----------------------------------------------------------------------------- plugins
PLUGIN = '''
from dataclasses import dataclass

import torch

from suite.flow import broadcast_time, interpolate, velocity_target
from suite.methods import Method, MethodConfig, MethodOutput, register_method
from suite.methods.base import mse


@dataclass
class HalfTimeConfig(MethodConfig):
    scale: float = 0.5


@register_method("half-time", HalfTimeConfig)
class HalfTime(Method):
    """Flow matching with times drawn from U[0, scale]: a method the suite has never heard of."""

    def loss(self, batch, model, ema_model, step):
        x0 = batch.x0
        t = self.time_sampler.sample((x0.shape[0],), device=x0.device) * self.cfg.scale
        x1 = torch.randn_like(x0)
        v = model(interpolate(x0, x1, broadcast_time(t, x0)), t, self.drop_labels(batch.y))
        loss = mse(v, velocity_target(x0, x1))
        return MethodOutput(loss=loss, terms={"gen": loss.detach()}, logs={})
'''


def _write_plugin(root: Path) -> None:
    """A package with an entry point, as `pip install` would leave it (dist-info on sys.path)."""
    (root / "halftime_plugin").mkdir(parents=True)
    (root / "halftime_plugin" / "__init__.py").write_text(PLUGIN)
    info = root / "halftime_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halftime-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[selfflow_suite.plugins]\nhalftime = halftime_plugin\n")


def test_an_out_of_tree_plugin_method_trains_through_the_cli(tmp_path):
    _write_plugin(tmp_path / "site")
    cfg = tiny_run_config(tmp_path, **{"method": {"name": "half-time", "scale": 0.7}, "train.total_images": 128,
                                       "train.val_images": 32})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    env = _suite_env(PYTHONPATH=str(tmp_path / "site"))
    r = subprocess.run([sys.executable, "-m", "suite.cli", "train", str(tmp_path / "run.yaml")], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    saved = yaml.safe_load((tmp_path / "runs" / "tiny" / "config.yaml").read_text())
    assert saved["method"] == {"name": "half-time", "label_dropout": 0.1, "scale": 0.7}
    # without the plugin the method is unknown: one line, exit 2, naming what is known
    r = subprocess.run([sys.executable, "-m", "suite.cli", "config", str(tmp_path / "run.yaml")], cwd=tmp_path,
                       capture_output=True, text=True, env=_suite_env(), timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "method.name: unknown method 'half-time'" in r.stderr and "selfflow" in r.stderr


def test_plugins_named_in_the_environment_load_and_a_missing_one_is_one_line(tmp_path):
    (tmp_path / "site" / "halftime_plugin").mkdir(parents=True)
    (tmp_path / "site" / "halftime_plugin" / "__init__.py").write_text(PLUGIN)
    cfg = tiny_run_config(tmp_path, method={"name": "half-time"})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    ok = subprocess.run([sys.executable, "-m", "suite.cli", "config", str(tmp_path / "run.yaml")], capture_output=True, text=True,
                        env=_suite_env(PYTHONPATH=str(tmp_path / "site"), SUITE_PLUGINS="halftime_plugin"), timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "suite.cli", "config", str(tmp_path / "run.yaml")], capture_output=True, text=True,
                         env=_suite_env(SUITE_PLUGINS="no_such_plugin"), timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: plugin 'no_such_plugin' cannot be imported")
    assert "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------- one validation path
BAD_CONFIGS = [
    (["time.kind=banana"], "time.kind: 'banana' is not allowed"),
    (["sampling.sampler=ddim"], "sampling.sampler: 'ddim' is not allowed"),
    (["sampling.label_sampling=random"], "sampling.label_sampling"),
    (["eval.metrics=[fidd]"], "eval.metrics: unknown metric 'fidd'"),
    (["eval.metrics=[fid2k_vgg]"], "eval.extractor: unknown feature extractor 'vgg'"),
    (["eval.extractor=vgg"], "eval.extractor: unknown feature extractor 'vgg'"),
    (["eval.backends=[tf]"], "eval.backends: unknown backend 'tf'"),
    (["eval.probe_blocks=[9]"], "eval.probe_blocks: block 9 outside 1..4"),
    (["eval.metrics=[caption_consistency2k]"], "eval.metrics: caption_consistency needs a captioned built-in dataset"),
    (["method.name=repa", "method.encoders=[{name: dino-nope}]"], "method.encoders[0].name: unknown encoder 'dino-nope'"),
    (["model.depth=0"], "model.depth: must be ≥ 1"),
    (["model.num_heads=5"], "model.num_heads: hidden_size 32 is not divisible by num_heads 5"),
    (["model.patch_size=3"], "model.patch_size: input size 8 is not a multiple of patch size 3"),
    (["model.preset=SiT-Huge/2"], "model.preset: unknown preset"),
    (["model.backbone=unet"], "model.backbone: unknown backbone 'unet'"),
    (["method.student_block=9"], "method.student_block: block 9 outside 1..4"),
    (["method.teacher_block=5"], "method.teacher_block: block 5 outside 1..4"),
    (["method.mask_ratio=1.5"], "method.mask_ratio: must be in [0, 1], got 1.5"),
    (["method.second_time=sorted"], "method.second_time: 'sorted' is not allowed"),
    (["method.feature_loss=l3"], "method.feature_loss: 'l3' is not allowed"),
    (["method.name=sra", "method.max_time_gap=2"], "method.max_time_gap: must be in [0, 1]"),
    (["data.name=cifar"], "data.name: unknown dataset 'cifar'"),
    (["data.test_fraction=1.5"], "data.test_fraction: must be in [0, 1)"),
    (["train.precision=fp8"], "train.precision: 'fp8' is not allowed"),
    (["train.device=tpu"], "train.device: 'tpu' not allowed"),
    (["optim.lr=-1"], "optim.lr: must be positive"),
    (["sampling.guidance_interval=[0.8, 0.2]"], "sampling.guidance_interval"),
]


@pytest.mark.parametrize("overrides, message", BAD_CONFIGS, ids=[o[0][-1] for o in BAD_CONFIGS])
def test_suite_config_rejects_what_train_would_with_one_line(tmp_path, capsys, overrides, message):
    from suite.cli import main

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(tiny_run_config(tmp_path)))
    args = [a for o in overrides for a in ("--set", o)]
    assert main(["config", str(tmp_path / "run.yaml"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert main(["train", str(tmp_path / "run.yaml"), *args]) == 2  # the same line from train, before any work
    assert capsys.readouterr().err == err
    assert not (tmp_path / "runs").exists()


def test_validation_needs_no_memory_for_big_models(tmp_path):
    """The backbone is checked on the meta device: SiT-XL/2 at 256² validates without allocating it."""
    from suite.config import load_run_config

    cfg = load_run_config(tiny_run_config(tmp_path, **{"model": {"preset": "SiT-XL/2"}, "data.image_size": 256}))
    assert cfg.model.preset == "SiT-XL/2"


# ----------------------------------------------------------------------------- run directories
def test_a_run_that_fails_while_being_built_leaves_nothing_that_blocks_the_fixed_config(tmp_path, capsys):
    """REPA with a missing local encoder passes validation (names are fine) and fails while the
    method is built: the run directory must not be claimed."""
    from suite.cli import main

    bad = tiny_run_config(tmp_path, **{"method": {"name": "repa", "encoders": [{"name": "local", "path": str(tmp_path / "nope")}]},
                                       "train.total_images": 64, "train.val_images": 32})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert main(["train", str(tmp_path / "bad.yaml")]) == 2
    assert "nope" in capsys.readouterr().err
    run_dir = tmp_path / "runs" / "tiny"
    assert not (run_dir / "state.json").exists() and not (run_dir / "config.yaml").exists()
    good = tiny_run_config(tmp_path, **{"method": {"name": "vanilla"}, "train.total_images": 64, "train.val_images": 32})
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    assert main(["train", str(tmp_path / "good.yaml")]) == 0
    assert (run_dir / "checkpoints" / "latest.pt").is_file()
    # and a finished run is never touched by a config that differs
    before = (run_dir / "state.json").read_text()
    assert main(["train", str(tmp_path / "bad.yaml")]) == 2
    assert (run_dir / "state.json").read_text() == before


def test_sample_and_eval_work_after_the_dataset_moved_away(tmp_path, capsys):
    """The checkpoint rebuilds the model without the data; evaluation reads only its caches."""
    from PIL import Image

    from suite.cli import main

    data = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for c in range(2):
        (data / f"class{c}").mkdir(parents=True)
        for i in range(12):
            im = np.full((8, 8, 3), 40 + 170 * c, np.uint8) + rng.integers(0, 30, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(im).save(data / f"class{c}" / f"{i}.png")
    cfg = tiny_run_config(tmp_path, **{"data": {"name": "folder", "root": str(data), "image_size": 8, "test_fraction": 0.25},
                                       "method.name": "vanilla", "train.total_images": 64, "train.val_images": 6,
                                       "eval.cache_dir": str(tmp_path / "cache"), "eval.classifier_steps": 20,
                                       "eval.batch_size": 16, "eval.n_samples": 16})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "run.yaml")]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    assert main(["eval", str(run_dir), "--metrics", "fid", "class_consistency", "--no-log", "--device", "cpu"]) == 0  # fills the caches
    shutil.move(str(data), str(tmp_path / "moved"))
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "samples"), "--device", "cpu"]) == 0
    assert len(list((tmp_path / "samples").glob("*_class*.png"))) == 4
    assert main(["eval", str(run_dir), "--metrics", "fid", "class_consistency", "--no-log", "--device", "cpu"]) == 0
    assert "class_consistency16" in capsys.readouterr().out
