"""FSDP2 (`fully_shard`) for models too large for DDP, and its checkpoints through DCP.

Sharding: every transformer block, then the root (embedders and final layer); the EMA model the
same way, so Self-Flow's teacher (`stop_after=k`) only gathers blocks 1..k. The method's modules
with parameters (projectors) are sharded too: their gradients are then averaged by FSDP's
reduce-scatter like the backbone's, and every trainable parameter is a DTensor on one mesh, so
`clip_grad_norm_` and the optimizer work unchanged. Methods keep calling
`model(x, t, y, taps=..., stop_after=..., attn_groups=...)`: a sharded module is the same object.

Checkpoint of a sharded run (`checkpoints/`):
  state-<images>.dcp/  model + method (one state dict), EMA and optimizer, written by every rank
                       through `torch.distributed.checkpoint` into a temporary directory, renamed
                       when complete; reloads under any number of processes (DCP reshards).
  latest.pt            rank 0: step, images seen, data position, RNG of every rank, the name of
                       the .dcp directory and a consolidated (full) EMA state dict, so `suite
                       sample` / `suite eval` load it like a DDP run's. Replaced atomically after
                       the directory is complete, so it always names a complete one.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_model_state_dict, set_state_dict)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from suite.errors import CheckpointError, ConfigError

def mixed_precision(amp_dtype: torch.dtype | None) -> MixedPrecisionPolicy:
    """bf16 compute with fp32 gradient reduction on CUDA; everything fp32 on CPU."""
    if amp_dtype is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=amp_dtype, reduce_dtype=torch.float32)


def shard_backbone(model: nn.Module, mp: MixedPrecisionPolicy) -> nn.Module:
    """fully_shard each block of `model.blocks`, then the root (in place; returns the model).

    The root does not cast its forward inputs (`cast_forward_inputs=False`): FSDP would otherwise
    round every floating input to `param_dtype` (bf16), the flow time t included ((B,), (B, N) or
    the levels inside a TokenTimes, a NamedTuple FSDP recurses into) — t = 0.7 becomes 0.6992,
    0.999 becomes 1.0 — and the sinusoidal timestep embedding would see a coarser t than under DDP,
    where bf16 autocast leaves t in fp32. The root's own layers need no cast: autocast runs them in
    bf16 in training, and without autocast (validation, samples, the FLOP count) the patch
    embedding and the timestep MLP cast their input to their weights' dtype. Blocks keep casting:
    they take the hidden states (and a Conditioning FSDP does not look into) and need bf16 inputs
    when no autocast runs.
    """
    for block in model.blocks:
        fully_shard(block, mp_policy=mp)
    fully_shard(model, mp_policy=dataclasses.replace(mp, cast_forward_inputs=False))
    return model


def shard_method(method: nn.Module, mp: MixedPrecisionPolicy) -> nn.Module:
    """fully_shard each child module of the method that holds parameters (its forward is called).

    These keep FSDP's cast of their inputs (hidden states) to bf16: what autocast does anyway at
    their first Linear, and what a pass without autocast needs on bf16 parameters."""
    direct = [name for name, _ in method.named_parameters(recurse=False)]
    if direct:
        raise ConfigError(f"train.parallel: fsdp needs the method's parameters inside submodules; "
                          f"{type(method).__name__} holds {', '.join(direct)} directly")
    for child in method.children():
        if any(True for _ in child.parameters()):
            fully_shard(child, mp_policy=mp)
    return method


def reshard(module: nn.Module) -> None:
    """Free the gathered parameters FSDP may keep after a forward without backward (the EMA)."""
    for m in module.modules():
        if hasattr(m, "reshard") and hasattr(m, "unshard"):
            m.reshard()


class Trainable(nn.Module):
    """Model and method under one root, so one state dict matches the one optimizer's parameters."""

    def __init__(self, model: nn.Module, method: nn.Module):
        super().__init__()
        self.model, self.method = model, method


# ---------------------------------------------------------------------------- checkpoints
def dcp_dir_name(images_seen: int) -> str:
    return f"state-{images_seen:010d}.dcp"


def full_state_dict(module: nn.Module) -> dict:
    """Consolidated, unsharded state dict on CPU (every rank takes part; rank 0 gets the tensors)."""
    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_sharded(ckpt_dir: Path, images_seen: int, trainable: Trainable, ema: nn.Module, opt, is_main: bool) -> str:
    """Write model + method, EMA and optimizer as one DCP checkpoint; returns the directory's name.

    Every rank writes its shards into `.<name>.tmp`; rank 0 renames it once all are done.
    """
    name = dcp_dir_name(images_seen)
    final, tmp = ckpt_dir / name, ckpt_dir / f".{name}.tmp"
    if is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    reshard(ema)
    model_sd, optim_sd = get_state_dict(trainable, opt)
    dcp.save({"trainable": model_sd, "optimizer": optim_sd, "ema": get_model_state_dict(ema)}, checkpoint_id=str(tmp))
    dist.barrier()
    if is_main:
        if final.exists():  # the same step saved twice (e.g. a SIGTERM right after a periodic save): same weights
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    dist.barrier()
    return name


def load_sharded(path: Path, trainable: Trainable, ema: nn.Module, opt) -> None:
    if not path.is_dir():
        raise CheckpointError(f"sharded checkpoint {path} is missing; restore it or move checkpoints/latest.pt away to start over")
    model_sd, optim_sd = get_state_dict(trainable, opt)
    state = {"trainable": model_sd, "optimizer": optim_sd, "ema": get_model_state_dict(ema)}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(trainable, opt, model_state_dict=state["trainable"], optim_state_dict=state["optimizer"])
    set_model_state_dict(ema, state["ema"])


def remove_stale(ckpt_dir: Path, keep: str) -> None:
    """Delete the .dcp directories other than `keep` (rank 0, after latest.pt names `keep`)."""
    for d in ckpt_dir.glob("state-*.dcp"):
        if d.name != keep:
            shutil.rmtree(d, ignore_errors=True)
