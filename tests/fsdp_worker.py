"""Run by tests/test_fsdp.py under torchrun (2 CPU processes, gloo); not a test module itself.

`equivalence OUT`: a few Self-Flow-shaped steps (student with a tap, projector, EMA teacher up to
block k with `stop_after`, clipping, AdamW, EMA update) with the backbone, EMA and projector sharded
by suite.train.fsdp, each rank on its half of a fixed global batch; beside it, on every rank, the
same steps unsharded on the whole batch. Rank 0 writes both loss curves and the largest weight
differences to OUT (JSON). SiT on class labels; under `both` also MM-DiT on caption embeddings.

`resume ROOT`: the real trainer with train.parallel=fsdp: an uninterrupted run, then a run killed
after 4 steps (train.max_steps; last checkpoint at step 3) and restarted in the same directory.

`both` also trains MM-DiT with the real trainer under the bf16 policy (`mmdit_bf16`).

`ddp OUT`: the real trainer under DDP for 3 Self-Flow steps; rank 0 writes how far the model, the
EMA and the projector are apart between the ranks (they must be identical).

`both DIR`: all three in one launch (one interpreter start-up: the tests stay short).
"""
import copy
import dataclasses
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_run_config  # noqa: E402

from suite.config import load_run_config  # noqa: E402
from suite.data import build_dataset  # noqa: E402
from suite.flow import TimeSampler, broadcast_time, interpolate, velocity_target  # noqa: E402
from suite.methods import build_method  # noqa: E402
from suite.methods.base import mse  # noqa: E402
from suite.models import build_model  # noqa: E402
from suite.train import fsdp  # noqa: E402
from suite.train.ema import make_ema, update_ema  # noqa: E402

GLOBAL_BATCH, STEPS = 8, 4


def step_loss(model, ema, method, x0, x1, t, y):
    """Generation loss + alignment of the student's block l to the EMA teacher's block k."""
    xt = interpolate(x0, x1, broadcast_time(t, x0))  # (B, C, H, W)
    v, hidden = model(xt, t, y, taps=(method.student_block,))
    z_k = method.teacher_features(ema, xt, t, y)  # (B, N, D), blocks after k skipped
    return mse(v, velocity_target(x0, x1)) + method.alignment_loss(hidden[method.student_block], z_k)


def train_steps(model, ema, method, batches, sl, world):
    params = list(model.parameters()) + list(method.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for x0, x1, t, y in batches:
        loss = step_loss(model, ema, method, x0[sl], x1[sl], t[sl], y[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.05)  # small: clipping is active, so the norm must be global
        opt.step()
        update_ema(ema, model, 0.5)
        mean = loss.detach().clone()
        if world > 1:
            dist.all_reduce(mean)
        losses.append(mean.item() / world)
    return losses


def condition(backbone: str, g: torch.Generator) -> torch.Tensor:
    """Class labels (B,), or for MM-DiT caption embeddings (B, L, E) whose last token pads half the captions."""
    if backbone != "mmdit":
        return torch.randint(0, 10, (GLOBAL_BATCH,), generator=g)
    y = torch.randn(GLOBAL_BATCH, TEXT_LEN, TEXT_DIM, generator=g)
    y[::2, -1] = 0
    return y


def max_diff(full: dict, ref: dict) -> float:
    return max((full[k].float() - ref[k].float()).abs().max().item() for k in ref)


MMDIT = {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 4, "num_heads": 2, "double_blocks": 2}
TEXT_DIM, TEXT_LEN = 8, 3


def equivalence(out: Path, backbone: str = "sit") -> None:
    """`backbone` mmdit: MM-DiT (2 double-stream, 2 single-stream blocks) on caption embeddings (B, L, E),
    some tokens padding (all zero), as the text-to-image configs train it."""
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = load_run_config(tiny_run_config(out.parent, **({"model": MMDIT} if backbone == "mmdit" else {"model.depth": 4})))
    shape = build_dataset(cfg.data, "train").image_shape
    torch.manual_seed(0)
    model_cfg = dataclasses.replace(cfg.model, text_dim=TEXT_DIM) if backbone == "mmdit" else cfg.model
    model = build_model(model_cfg, shape, 10)
    with torch.no_grad():  # adaLN-Zero starts at zero: perturb so every weight has a gradient from step 1
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ema = make_ema(model)
    method = build_method(cfg.method, model, TimeSampler(cfg.time))
    ref_model, ref_ema, ref_method = copy.deepcopy(model), copy.deepcopy(ema), copy.deepcopy(method)
    ema_start = copy.deepcopy(ema.state_dict())
    mp = fsdp.mixed_precision(None)
    fsdp.shard_backbone(model, mp)
    fsdp.shard_backbone(ema, mp)
    fsdp.shard_method(method, mp)

    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(GLOBAL_BATCH, *shape, generator=g), torch.randn(GLOBAL_BATCH, *shape, generator=g),
                torch.rand(GLOBAL_BATCH, generator=g), condition(backbone, g)) for _ in range(STEPS)]
    per_rank = GLOBAL_BATCH // world
    sharded = train_steps(model, ema, method, batches, slice(rank * per_rank, (rank + 1) * per_rank), world)
    reference = train_steps(ref_model, ref_ema, ref_method, batches, slice(None), 1)
    full_model, full_ema = fsdp.full_state_dict(model), fsdp.full_state_dict(ema)
    full_method = fsdp.full_state_dict(method)
    if rank == 0:
        out.write_text(json.dumps({
            "sharded": sharded, "reference": reference,
            "model_diff": max_diff(full_model, ref_model.state_dict()),
            "ema_diff": max_diff(full_ema, ref_ema.state_dict()),
            "method_diff": max_diff(full_method, ref_method.state_dict()),
            "ema_moved": max_diff(full_ema, ema_start),
        }))


def resume(root: Path) -> None:
    from suite.train import train

    over = {"train.parallel": "fsdp", "tracking.enabled": False, "train.total_images": 192,
            "train.batch_size": 32, "train.ckpt_every_images": 96, "sampling.steps": 2}
    train(load_run_config(tiny_run_config(root, name="full", **over)))
    part = train(load_run_config(tiny_run_config(root, name="killed", **over, **{"train.max_steps": 4})))
    assert part.status == "interrupted" and part.images_seen == 4 * 32
    train(load_run_config(tiny_run_config(root, name="killed", **over)))


def mmdit_bf16(root: Path) -> None:
    """The real trainer, MM-DiT, train.precision=bf16 on CPU: FSDP's bf16 policy and bf16 autocast,
    with validation, samples, the FLOP count and the consolidated EMA on the sharded models."""
    from suite.train import train

    train(load_run_config(tiny_run_config(root, name="mmdit-bf16", **{
        "model": MMDIT, "train.parallel": "fsdp", "train.precision": "bf16", "tracking.enabled": False,
        "train.total_images": 96, "train.ckpt_every_images": 96, "train.val_every_images": 64, "sampling.steps": 2})))


def ddp_rank_agreement(out: Path) -> None:
    from suite.train.trainer import Trainer

    tr = Trainer(load_run_config(tiny_run_config(out.parent / "ddp", name="ddp", **{"train.parallel": "ddp", "tracking.enabled": False})))
    batches = tr._batches()
    for _ in range(3):
        tr.train_step(next(batches))
    gaps = {}
    for name, module in (("model", tr.model), ("ema", tr.ema), ("method", tr.method)):
        flat = torch.cat([p.detach().flatten() for p in module.parameters()])
        both = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(both, flat)
        gaps[name] = (both[0] - both[1]).abs().max().item()
    if dist.get_rank() == 0:
        out.write_text(json.dumps(gaps))


if __name__ == "__main__":
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    target = Path(sys.argv[2])
    if sys.argv[1] in ("equivalence", "both"):
        equivalence(target / "equivalence.json" if sys.argv[1] == "both" else target)
        if sys.argv[1] == "both":
            equivalence(target / "equivalence-mmdit.json", "mmdit")
    if sys.argv[1] in ("resume", "both"):
        resume(target)
    if sys.argv[1] == "both":
        mmdit_bf16(target)
    if sys.argv[1] in ("ddp", "both"):
        ddp_rank_agreement(target / "ddp.json" if sys.argv[1] == "both" else target)
    dist.destroy_process_group()
