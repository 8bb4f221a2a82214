"""FSDP2 (`fully_shard`) for models too large for DDP, and its checkpoints through DCP.

Sharding: every transformer block (`model.blocks`, whatever the backbone), then the root (embedders
and final layer); the EMA model the same way, so Self-Flow's teacher (`stop_after=k`) only gathers blocks 1..k. The method's modules
with parameters (projectors) are sharded too: their gradients are then averaged by FSDP's
reduce-scatter like the backbone's, and every trainable parameter is a DTensor on one mesh, so
`clip_grad_norm_` and the optimizer work unchanged. Methods keep calling
`model(x, t, y, taps=..., stop_after=..., attn_groups=...)`: a sharded module is the same object.

Precision (CUDA): FSDP gathers bf16 copies of the parameters, casts no forward input, and every
sharded module's forward runs under the training autocast (`compute_under_autocast`), so a sharded
model computes as the plain model does under DDP's autocast: fp32 residual streams, fp32 time.

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

import functools
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
from suite.train.distributed import autocast


def mixed_precision(amp_dtype: torch.dtype | None) -> MixedPrecisionPolicy:
    """bf16 compute with fp32 gradient reduction on CUDA; everything fp32 on CPU. No module casts its
    forward inputs: `compute_under_autocast` does what DDP's autocast does instead."""
    if amp_dtype is None:
        return MixedPrecisionPolicy(cast_forward_inputs=False)
    return MixedPrecisionPolicy(param_dtype=amp_dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)


def compute_under_autocast(module: nn.Module, mp: MixedPrecisionPolicy) -> None:
    """Every forward of `module` runs under the training autocast (suite.train.distributed.autocast),
    whoever calls it: the training step (already under it), the EMA teacher, validation, samples,
    in-training evaluation, the FLOP count.

    FSDP's own precision is only the bf16 copy of the parameters it gathers; its default
    `cast_forward_inputs` would round every floating input of every sharded module to bf16: the
    residual stream at every block (fp32 under DDP's autocast), the flow time t (0.7 → 0.6992),
    MM-DiT's RoPE angles. Without that cast, autocast alone decides what runs in bf16, and the sharded
    model computes exactly as the plain model with bf16 parameters under the same autocast.
    """
    if mp.param_dtype is None:
        return
    device_type = next(module.parameters()).device.type
    forward = module.forward

    @functools.wraps(forward)
    def forward_under_autocast(*args, **kwargs):
        with autocast(device_type, mp.param_dtype):
            return forward(*args, **kwargs)

    module.forward = forward_under_autocast


def shard_backbone(model: nn.Module, mp: MixedPrecisionPolicy) -> nn.Module:
    """fully_shard each transformer block (`model.blocks`: SiT's, MM-DiT's double then single
    stream), then the root (in place; returns the model), whose forward runs under autocast."""
    for block in model.blocks:
        fully_shard(block, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    compute_under_autocast(model, mp)
    return model


def called_modules(parent: nn.Module):
    """The modules holding parameters whose forward a method calls: its children, and the members
    of a ModuleList / ModuleDict (a container's own forward is never called, so FSDP's pre-forward
    gather would never run for it: REPA's one projector per encoder)."""
    for child in parent.children():
        if not any(True for _ in child.parameters()):
            continue
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            yield from called_modules(child)
        else:
            yield child


def shard_method(method: nn.Module, mp: MixedPrecisionPolicy) -> nn.Module:
    """fully_shard each module of the method whose forward is called (`called_modules`), under
    autocast as the backbone's."""
    direct = [name for name, _ in method.named_parameters(recurse=False)]
    if direct:
        raise ConfigError(f"train.parallel: fsdp needs the method's parameters inside submodules; "
                          f"{type(method).__name__} holds {', '.join(direct)} directly")
    for module in called_modules(method):
        fully_shard(module, mp_policy=mp)
        compute_under_autocast(module, mp)
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
