"""Shared test settings: one CPU thread per test process, no telemetry, tiny configs."""
import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# As the CLI does at start-up: load the installed plugins (baselines: repa, sra, encoders), so
# tests that build configs in-process see the same registries as `suite ...` does.
from suite.commands.plugins import activate_plugins  # noqa: E402

activate_plugins()


def tiny_run_config(tmp_path, **over) -> dict:
    """A run config dict that trains in seconds on one CPU core."""
    d = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "digits", "image_size": 8},
        "model": {"preset": "SiT-Nano/2", "hidden_size": 32, "depth": 4, "num_heads": 2},
        "method": {"name": "selfflow"},
        "optim": {"lr": 2e-3, "ema_decay": 0.99},
        "train": {"runs_root": str(tmp_path / "runs"), "batch_size": 32, "total_images": 640,
                  "log_every_images": 32, "ckpt_every_images": 320, "progress": False, "val_images": 64},
        "sampling": {"steps": 8},
    }
    for k, v in over.items():
        node = d
        *parents, last = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = v
    return d


@pytest.fixture
def tiny_cfg(tmp_path):
    return lambda **over: tiny_run_config(tmp_path, **over)
