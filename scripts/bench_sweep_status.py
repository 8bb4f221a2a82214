"""Benchmark: `suite sweep status` on a synthetic 1,000-point grid (10 × 10 × 10).

Builds the sweep directory by hand — sweep.json with one dead local job per point, run
directories whose state.json says finished / running / failed, a metrics.jsonl of 200 lines each,
and a stderr log for the failed ones — then times loading the spec (every point resolved) and
printing the table. Usage: python scripts/bench_sweep_status.py [WORKDIR]
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import yaml


def build(root: Path) -> Path:
    spec = {"name": "bench1000", "base": "builtin:demo-digits", "set": {"train.runs_root": str(root)},
            "grid": {"seed": list(range(10)), "optim.lr": [1e-4 * (i + 1) for i in range(10)],
                     "model.depth": list(range(1, 11))},
            "executor": {"kind": "local"}}
    path = root / "bench1000.yaml"
    path.write_text(yaml.safe_dump(spec))
    from suite.sweeps import Sweep, load_sweep_spec

    sw = Sweep(load_sweep_spec(path))
    sub = sw.sd.path / "submitit"
    for i, u in enumerate(sw.units):
        sw._register(u)
        jid = str(4_000_000 + i)  # no such process: the job is gone
        sw.sd.record_job(u.key, jid, "local")
        u.run_dir.mkdir(parents=True)
        status = ("finished", "running", "failed")[i % 3]
        (u.run_dir / "state.json").write_text(json.dumps({"status": status, "images_seen": 640 * (i % 7)}))
        with open(u.run_dir / "metrics.jsonl", "w") as f:
            for s in range(200):
                f.write(json.dumps({"images_seen": 32 * s, "train/loss": 1.0 / (s + 1)}) + "\n")
        if status == "failed":
            d = sub / jid
            d.mkdir(parents=True)
            (d / f"{jid}_0_log.err").write_text("Traceback ...\nRuntimeError: CUDA out of memory\n")
    sw.sd.save()
    return path


def main(argv) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="bench-status-"))
    root.mkdir(parents=True, exist_ok=True)
    spec_path = build(root)
    from suite.sweeps import load_sweep_spec, status_sweep

    t0, c0 = time.perf_counter(), time.process_time()
    spec = load_sweep_spec(spec_path)
    t1 = time.perf_counter()
    buf = io.StringIO()
    with redirect_stdout(buf):
        status_sweep(spec)
    t2, c2 = time.perf_counter(), time.process_time()
    lines = buf.getvalue().splitlines()
    print(f"1000-point status: load spec {t1 - t0:.2f} s, table {t2 - t1:.2f} s, total {t2 - t0:.2f} s wall, {c2 - c0:.2f} s CPU; {lines[-1]}")
    print("failed row:", next(ln for ln in lines if "failed" in ln and "[" in ln)[:160])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
