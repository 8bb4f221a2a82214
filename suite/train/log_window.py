"""Training logs accumulated on the device between log intervals (no host sync in the step).

Like nanoGPT, the step never calls `.item()`: every logged value stays a tensor and is summed on
its device. Only `flush()`, at the log interval, synchronises: one stacked tensor, one DDP
all-reduce, one copy to the host. A non-finite loss is tracked the same way: a device-side flag
that `nonfinite()` reads (one sync) before every checkpoint write and at the log interval.
"""
from __future__ import annotations

import torch

from suite.train.distributed import DistInfo, all_reduce_mean


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A value computed from FSDP-sharded parameters may be a DTensor: its full value as a plain
    tensor (a collective every rank makes in the same step, not a host sync)."""
    full = getattr(t, "full_tensor", None)
    return full() if callable(full) else t


class LogWindow:
    def __init__(self, dist: DistInfo):
        self.dist = dist
        self.sums: dict[str, torch.Tensor] = {}  # 0-dim float32 on the device
        self.host: dict[str, list[float]] = {}  # values already on the host (the learning rate)
        self.steps = 0
        self.bad_step: torch.Tensor | None = None  # 0-dim long: first step with a non-finite loss, −1 none

    def add(self, logs: dict[str, torch.Tensor], host: dict[str, float], loss: torch.Tensor, step: int) -> None:
        """One step's logs (tensors, kept on the device) and its loss, checked for finiteness."""
        for k, v in logs.items():
            v = _plain(v.detach()).float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        for k, v in host.items():
            self.host.setdefault(k, []).append(v)
        self.steps += 1
        bad = ~torch.isfinite(_plain(loss.detach()))  # device-side, no sync
        if self.bad_step is None:
            self.bad_step = torch.full((), -1, dtype=torch.long, device=bad.device)
        self.bad_step = torch.where(bad & (self.bad_step < 0), step, self.bad_step)

    def nonfinite(self) -> bool:
        """Whether any step so far (on any DDP rank) had a non-finite loss. One host sync."""
        if self.bad_step is None:
            return False
        flag = all_reduce_mean((self.bad_step >= 0).float(), self.dist)  # > 0 if any rank saw one
        return bool(flag > 0)

    def first_bad_step(self) -> int | None:
        """This process's first step with a non-finite loss (after `nonfinite()` said so)."""
        step = -1 if self.bad_step is None else int(self.bad_step)
        return step if step >= 0 else None

    def flush(self) -> dict[str, float]:
        """Window means (averaged over DDP ranks); the only host sync of the log interval."""
        keys = list(self.sums)
        means: dict[str, float] = {}
        if keys:
            stacked = torch.stack([self.sums[k] for k in keys]) / self.steps  # (K,)
            means = dict(zip(keys, all_reduce_mean(stacked, self.dist).tolist()))
        means.update({k: sum(v) / len(v) for k, v in self.host.items()})
        self.sums, self.host, self.steps = {}, {}, 0
        return means
