"""Load a finished (or running) run directory: its resolved config and EMA weights from a checkpoint.

Runs are self-describing: the checkpoint's `model_spec` (backbone, data shape, number of classes)
and config.yaml's `model` section rebuild the model without touching the data, so a run can be
sampled and evaluated after its dataset has moved. Checkpoints written before `model_spec`
existed fall back to reading the dataset once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from suite.config import RunConfig, apply_overrides, config_from_dict, read_yaml_config
from suite.data import build_dataset
from suite.errors import MissingFileError, SuiteError
from suite.models import build_model
from suite.train.checkpoint import LATEST, load_checkpoint


@dataclass
class LoadedRun:
    cfg: RunConfig
    ema: torch.nn.Module
    images_seen: int
    device: torch.device
    run_dir: Path
    checkpoint: Path
    model_spec: dict | None = None  # as the checkpoint records it (None: written before self-describing runs)


def load_run(run_dir, checkpoint=None, overrides=(), device: str = "auto") -> LoadedRun:
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise MissingFileError(f"not a run directory (no config.yaml): {run_dir}")
    cfg = config_from_dict(apply_overrides(read_yaml_config(cfg_path), list(overrides)))
    ckpt_path = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / LATEST
    if checkpoint and not ckpt_path.is_file() and (run_dir / "checkpoints" / str(checkpoint)).is_file():
        ckpt_path = run_dir / "checkpoints" / str(checkpoint)  # a name inside the run's checkpoints/
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    ck = load_checkpoint(ckpt_path, map_location=dev)
    data_shape, num_classes = saved_model_shape(ck, cfg)
    ema = build_model(cfg.model, data_shape, num_classes).to(dev)
    try:
        ema.load_state_dict(ck["ema"])
    except RuntimeError as e:
        raise SuiteError(f"checkpoint {ckpt_path} does not fit {cfg_path} ({str(e).splitlines()[0][:150]})") from None
    ema.eval().requires_grad_(False)
    return LoadedRun(cfg, ema, int(ck["images_seen"]), dev, run_dir, ckpt_path, ck.get("model_spec"))


def saved_model_shape(ckpt: dict, cfg: RunConfig) -> tuple[tuple[int, ...], int]:
    """(data shape, number of classes) the checkpoint's model was built for."""
    spec = ckpt.get("model_spec")
    if spec is not None:
        return tuple(spec["data_shape"]), int(spec["num_classes"])
    ds = build_dataset(cfg.data, "train")  # a checkpoint from before self-describing runs
    return ds.image_shape, ds.num_classes
