"""FSDP2 (train.parallel=fsdp) on CPU with two gloo processes started by torchrun.

(a) sharded training equals single-process training on the same global batch (losses, weights,
    EMA, projector), with taps, the EMA teacher's `stop_after` and active gradient clipping;
(b) a run killed after a few steps and restarted resumes exactly through its DCP checkpoint, and
    its latest.pt holds a consolidated EMA that loads into a plain model (what `suite sample` does);
(c) under DDP, every rank holds the same EMA and projectors;
(d) MM-DiT: (a) on caption embeddings, and a short run of the real trainer with train.precision=bf16;
(e) under the bf16 mixed-precision policy (one process, in this interpreter) the flow time reaches
    the model in fp32 with its exact values, and SiT and MM-DiT compute exactly as the plain model
    with bf16 weights under the same autocast.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from suite.config import load_run_config
from suite.errors import ConfigError, SuiteError
from suite.models.sit import SiT
from suite.models.token_times import TokenTimes
from suite.train.distributed import resolve_parallel

WORKER = Path(__file__).with_name("fsdp_worker.py")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fsdp_results(tmp_path_factory) -> Path:
    """One torchrun launch (2 processes) for both scenarios; returns its output folder."""
    root = tmp_path_factory.mktemp("fsdp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(WORKER), "both", str(root)], capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


def losses_by_step(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["images_seen"]: r["train/loss"] for r in rows if "train/loss" in r}


@pytest.mark.parametrize("result", ["equivalence.json", "equivalence-mmdit.json"])  # SiT; MM-DiT on caption embeddings
def test_sharded_steps_equal_single_process_on_the_global_batch(fsdp_results, result):
    r = json.loads((fsdp_results / result).read_text())
    assert len(r["sharded"]) == 4
    np.testing.assert_allclose(r["sharded"], r["reference"], rtol=1e-5, atol=1e-6)
    assert r["model_diff"] < 1e-5 and r["ema_diff"] < 1e-5 and r["method_diff"] < 1e-5
    assert r["ema_moved"] > 1e-3  # the EMA update really changed the sharded EMA


def test_killed_fsdp_run_resumes_exactly_and_its_ema_loads_unsharded(fsdp_results):
    full, killed = fsdp_results / "runs" / "full", fsdp_results / "runs" / "killed"
    a, b = losses_by_step(full), losses_by_step(killed)
    assert sorted(a) == sorted(b) == list(range(32, 193, 32))  # every step once, none twice
    np.testing.assert_allclose([b[k] for k in sorted(b)], [a[k] for k in sorted(a)], rtol=1e-5, atol=1e-6)
    state = json.loads((killed / "state.json").read_text())
    assert state["status"] == "finished" and state["parallel"] == "fsdp" and state["world_size"] == 2
    assert [d.name for d in (killed / "checkpoints").glob("*.dcp")] == ["state-0000000192.dcp"]  # stale ones removed

    from suite.commands.run_loading import load_run

    run = load_run(killed, device="cpu")  # plain model from the consolidated EMA in latest.pt
    assert run.images_seen == 192
    v = run.ema(torch.zeros(2, *run.ema.data_shape), torch.full((2,), 0.5), torch.zeros(2, dtype=torch.long))
    assert torch.isfinite(v).all()

    from conftest import tiny_run_config
    from suite.train.trainer import Trainer

    same = tiny_run_config(fsdp_results, name="killed", **{"train.total_images": 192, "train.ckpt_every_images": 96, "sampling.steps": 2})
    with pytest.raises(SuiteError, match="written with FSDP; resume it with train.parallel=fsdp"):
        Trainer(load_run_config(same))  # one process cannot resume the shards: one clear line
    assert json.loads((killed / "state.json").read_text())["parallel"] == "fsdp"  # and the record is untouched


def test_mmdit_trains_sharded_under_the_bf16_policy(fsdp_results):
    """MM-DiT (double- and single-stream blocks sharded) through the real trainer with bf16 on CPU:
    the FLOP count, validation and the sample grid run the sharded models as training does."""
    run = fsdp_results / "runs" / "mmdit-bf16"
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "finished" and state["parallel"] == "fsdp" and state["flops_per_image"]["aux"] > 0
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert [r["images_seen"] for r in rows if "val/loss_mean" in r] == [64, 96]
    assert (run / "samples" / "grid-0000000096.png").is_file()


def test_ddp_ranks_agree_on_ema_and_projectors(fsdp_results):
    """Under DDP the EMA and the method's projectors live outside the wrapper: they start from rank
    0's weights and the projectors' gradients are averaged, so no rank drifts."""
    gaps = json.loads((fsdp_results / "ddp.json").read_text())
    assert gaps == {"model": 0.0, "ema": 0.0, "method": 0.0}


def test_parallel_switch_is_validated_and_resolved(tiny_cfg):
    with pytest.raises(ConfigError, match="train.parallel"):
        load_run_config(tiny_cfg(**{"train.parallel": "zero3"}))
    assert resolve_parallel("fsdp", 1, 10**10) == "none"  # one process: nothing to shard
    assert resolve_parallel("auto", 8, 10**6) == "ddp" and resolve_parallel("auto", 8, 10**9) == "fsdp"
    assert resolve_parallel("ddp", 8, 10**9) == "ddp"


@pytest.fixture
def gloo_single_process(tmp_path):
    """A one-process gloo group in this interpreter (FSDP2 shards over a world of one), torn down after."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_bf16_policy_leaves_the_time_fp32_and_exact(gloo_single_process):
    """FSDP's `cast_forward_inputs` would round the root's floating inputs to bf16 (0.7 → 0.6992,
    0.999 → 1.0), TokenTimes levels too; under DDP bf16 autocast leaves t in fp32. The sharded
    model under the CUDA policy (bf16 params) and bf16 autocast must see t as given, in every time
    form; and called without autocast, it computes under its own (suite.train.fsdp.compute_under_autocast)."""
    from suite.train import fsdp

    torch.manual_seed(0)
    model = SiT((3, 8, 8), 10, 32, 2, 2, patch_size=2)  # 16 tokens
    seen = []
    model.t_embedder.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    fsdp.shard_backbone(model, fsdp.mixed_precision(torch.bfloat16))
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    t = torch.tensor([0.7, 0.3, 0.123456, 0.999])
    per_token = torch.rand(4, 16)
    dual = TokenTimes.dual(t, 0.37 * t, torch.rand(4, 16) < 0.5)
    for times, expected in ((t, t), (per_token, per_token), (dual, dual.levels)):
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = model(x, times, y)
        assert v.dtype == torch.bfloat16  # the model did compute in bf16
        assert seen[0].dtype == torch.float32 and torch.equal(seen[0], expected)
    seen.clear()
    with torch.no_grad():
        v = model(x, t, y)
    assert v.dtype == torch.bfloat16 and torch.isfinite(v).all() and torch.equal(seen[0], t)


def _perturbed(model):
    """adaLN-Zero starts every block as the identity: perturb so each block changes the stream."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _block_input_dtypes(model, record):
    """Record, per block call, the dtypes of every tensor the block receives (lists flattened)."""
    def hook(_, args):
        flat = [a for arg in args for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
        record.append([a.dtype for a in flat if isinstance(a, torch.Tensor)])
    for block in model.blocks:
        block.register_forward_pre_hook(hook)


@pytest.mark.parametrize("backbone", ["sit", "mmdit"])
def test_bf16_policy_computes_as_the_plain_model_under_autocast(backbone, gloo_single_process):
    """Under bf16 autocast, the model sharded with the bf16 policy gives exactly what the plain model
    gives with its parameters in bf16 (the policy's only change: FSDP gathers them in bf16, as
    autocast casts them at each matmul) — velocity and every block's hidden states. And each block
    receives its inputs in the dtypes the plain fp32 model under autocast (DDP) gives it: the
    residual streams in fp32, RoPE angles in fp32 (FSDP's default cast of block inputs would round
    them to bf16 at every block)."""
    import copy

    from suite.models.mmdit import MMDiT
    from suite.train import fsdp

    if backbone == "sit":
        model = _perturbed(SiT((3, 8, 8), 10, 32, 3, 2, patch_size=2))
        y = torch.randint(0, 10, (4,))
    else:  # caption embeddings (text_dim 8), one padded (all-zero) token per caption after the first
        model = _perturbed(MMDiT((3, 8, 8), 10, 32, 3, 2, double_blocks=1, patch_size=2, text_dim=8))
        y = torch.randn(4, 5, 8)
        y[1:, -1] = 0
    assert len(model.blocks) == model.depth == 3
    plain_fp32, plain_bf16 = copy.deepcopy(model), copy.deepcopy(model)
    for p in plain_bf16.parameters():
        p.data = p.data.bfloat16()  # buffers (positions, frequencies) stay fp32, as FSDP leaves them
    fsdp.shard_backbone(model, fsdp.mixed_precision(torch.bfloat16))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 8, 8, generator=g)
    t = TokenTimes.dual(torch.rand(4, generator=g), torch.rand(4, generator=g), torch.rand(4, 16, generator=g) < 0.5)
    taps = tuple(range(1, model.depth + 1))
    outs, dtypes = [], []
    for m in (model, plain_bf16, plain_fp32):
        dtypes.append([])
        _block_input_dtypes(m, dtypes[-1])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            outs.append(m(x, t, y, taps=taps))
    (v, hidden), (v_ref, hidden_ref) = outs[0], outs[1]
    assert v.dtype == torch.bfloat16 and torch.equal(v, v_ref)
    for k in taps:
        assert hidden[k].dtype == torch.float32 and torch.equal(hidden[k], hidden_ref[k]), k
    assert dtypes[0] == dtypes[2] and dtypes[0][0][0] == torch.float32  # as the plain fp32 model's (DDP)
