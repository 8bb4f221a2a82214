"""Atomic checkpoints (temporary file + rename) that make a restarted run resume exactly.

Holds model, EMA, method (projectors), optimizer, RNG states, step, images seen and the data
position. Loaded with `torch.load(..., weights_only=True)`: no pickled code is ever executed.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from suite.errors import CheckpointError, MissingFileError

LATEST = "latest.pt"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half of one


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    if not Path(path).is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
            "restore it or move it away to start over"
        ) from None
    for key in ("model", "ema", "step", "images_seen"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} has no '{key}' entry; is it a suite checkpoint?")
    return ckpt
