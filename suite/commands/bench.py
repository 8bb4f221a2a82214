"""`suite bench CONFIG [--set ...] [--steps N]`: training throughput, FLOPs and memory, logged to MLflow.

Speed and memory targets live here, not in timed tests. Runs the real trainer step (method,
EMA teacher, optimizer, autocast, optional torch.compile) on the config's data, in a scratch
run directory, then logs one MLflow run in the experiment `suite-bench`.
"""
from __future__ import annotations

import platform
import resource
import tempfile
import time

# Dense bf16 peak (FLOP/s) for MFU; unknown devices get no MFU.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--experiment", default="suite-bench")
    p.add_argument("--no-log", action="store_true", help="print only")


def run(args) -> int:
    import torch

    from suite.config import flatten, config_to_dict, load_run_config
    from suite.train.trainer import Trainer
    from suite.train.flops import training_flops_per_image
    from suite.data import collate
    from suite.tracking import Tracker, resolve_tracking_uri

    cfg = load_run_config(args.configs, args.overrides)
    cfg.tracking.enabled = False
    cfg.train.progress = False
    with tempfile.TemporaryDirectory() as scratch:
        tr = Trainer(cfg, run_dir=scratch)
        example = tr._to_batch(collate([tr.train_set[i] for i in range(2)]))
        flops = training_flops_per_image(tr.model, tr.ema, tr.method, example)
        batches = tr._batches()
        sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
        for _ in range(args.warmup):
            tr.train_step(next(batches))
        if tr.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            tr.train_step(next(batches))
        sync()
        dt = time.perf_counter() - t0
    ips = args.steps * cfg.train.batch_size / dt
    res = {"bench/images_per_s": ips, "bench/step_time_s": dt / args.steps,
           "bench/achieved_tflops": ips * flops["total"] / 1e12,
           "bench/flops_per_image_total": flops["total"], "bench/flops_per_image_backbone": flops["backbone"]}
    device_name = torch.cuda.get_device_name() if tr.device.type == "cuda" else platform.processor() or "cpu"
    if tr.device.type == "cuda":
        res["bench/peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        peak = next((v for k, v in PEAK_BF16.items() if k in device_name), None)
        if peak and tr.amp_dtype is not None:
            res["bench/mfu"] = ips * flops["total"] / peak
    else:
        res["bench/peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for k, v in res.items():
        print(f"{k:32s} {v:.4g}")
    if not args.no_log:
        uri = resolve_tracking_uri(cfg.tracking, cfg.train.runs_root)
        tracker = Tracker(uri, args.experiment, None, f"bench-{cfg.name}", {"device": device_name, "method": cfg.method.name, "preset": cfg.model.preset})
        tracker.log_params({**flatten(config_to_dict(cfg)), "bench.steps": args.steps, "torch": torch.__version__})
        tracker.log_metrics(res, 0)
        tracker.finish()
        print(f"logged to MLflow ({uri}, experiment {args.experiment}, run {tracker.run_id})")
    return 0
