"""DDP on CPU (gloo) with two processes started by torchrun: same result on both ranks, one writer."""
import json
import subprocess
import sys

import yaml


def test_two_process_ddp_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg(name="ddp", **{"train.total_images": 256, "train.batch_size": 32, "method.name": "vanilla"})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "suite.cli", "train", str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = tmp_path / "runs" / "ddp"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "finished" and state["images_seen"] == 256  # global batch counted once
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if "train/loss" in r]) == 8  # rank 0 writes; 8 steps of 32 images
