"""FSDP2 (train.parallel=fsdp) on CPU with two gloo processes started by torchrun.

(a) sharded training equals single-process training on the same global batch (losses, weights,
    EMA, projector), with taps, the EMA teacher's `stop_after` and active gradient clipping;
(b) a run killed after a few steps and restarted resumes exactly through its DCP checkpoint, and
    its latest.pt holds a consolidated EMA that loads into a plain model (what `suite sample` does);
(c) under DDP, every rank holds the same EMA and projectors;
(d) under the bf16 mixed-precision policy (one process, in this interpreter) the flow time reaches
    the model in fp32 with its exact values.
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
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
                        str(WORKER), "both", str(root)], capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


def losses_by_step(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["images_seen"]: r["train/loss"] for r in rows if "train/loss" in r}


def test_sharded_steps_equal_single_process_on_the_global_batch(fsdp_results):
    r = json.loads((fsdp_results / "equivalence.json").read_text())
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
    form; and without autocast (validation, samples) it must still run on its bf16 parameters."""
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
