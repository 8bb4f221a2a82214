"""Processes from torchrun or SLURM (Submitit) environments, DDP or FSDP (suite.train.fsdp); single process otherwise."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn


PARALLEL_MODES = ("auto", "ddp", "fsdp")  # train.parallel
AUTO_FSDP_PARAMS = 500_000_000  # auto: FSDP from this many backbone parameters on (the paper's 1B and 4B)


def autocast(device_type: str, dtype: torch.dtype | None):
    """The training precision: autocast to `dtype` (bf16) on `device_type`, or nothing (None: fp32).
    The training step runs under it, and so does every forward of a module FSDP shards (suite.train.fsdp)."""
    return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)


def resolve_parallel(mode: str, world_size: int, n_params: int) -> str:
    """'none' (one process), 'ddp' or 'fsdp'."""
    if world_size <= 1:
        return "none"
    if mode == "auto":
        return "fsdp" if n_params >= AUTO_FSDP_PARAMS else "ddp"
    return mode


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _slurm_env() -> None:
    """Export torchrun-style variables from SLURM's (one task per GPU)."""
    os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
    os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
    os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    if "MASTER_ADDR" not in os.environ:
        nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                               capture_output=True, text=True, check=True).stdout.split()
        os.environ["MASTER_ADDR"] = nodes[0]
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))


def init_distributed() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        _slurm_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), world, local)


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        x = x.clone()
        dist.all_reduce(x)
        x /= info.world_size
    return x


@torch.no_grad()
def average_gradients_across_ranks(module: nn.Module, info: DistInfo) -> None:
    """Under DDP, parameters outside the DDP-wrapped model (a method's projectors) would keep each
    rank's own gradient, so ranks would drift apart (and clip by different norms): the trainer calls
    this after every training backward to average their gradients over the ranks. An explicit call,
    not a gradient hook, so a backward on one rank alone (the FLOP count) never waits on the others."""
    if not info.enabled:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= info.world_size


@torch.no_grad()
def broadcast_from_rank0(module: nn.Module, info: DistInfo) -> None:
    """Rank 0's parameters and buffers on every rank: each rank initialises with its own seed, and
    neither the EMA copy, nor a method's projectors, nor FSDP's shards are synchronised otherwise."""
    if info.enabled:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)
