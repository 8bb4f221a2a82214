"""Training-step throughput of several methods side by side (measuring.md §5), on the real trainer.

Each method gets its own Trainer (scratch run directory, tracking off) built from the same config;
after `warmup` untimed steps, `repeats` rounds time `steps` steps of every method, the order of
methods rotating each round so a noisy, shared machine hits all of them alike. Per method: median
step time and its spread over rounds, images/s, counted FLOPs per image (suite.train.flops) and
ratios to vanilla, achieved TFLOP/s, MFU on a GPU whose bf16 dense peak is known, peak memory
(CUDA; on CPU process memory cannot be split by method, so None).
"""
from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

# Dense bf16 peak (TFLOP/s) for MFU, by a substring of the CUDA device name. Unknown devices: no MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}

COLUMNS = [  # (key, header, format)
    ("images_per_s", "img/s", "{:.1f}"), ("step_time_s", "step s (median)", "{:.4f}"),
    ("step_time_spread_s", "spread (min–max)", "{}"), ("step_time_ratio", "time ÷ vanilla", "{:.3f}"),
    ("flops_per_image", "GFLOP/img", "{:.3f}"), ("flops_ratio", "FLOPs ÷ vanilla", "{:.3f}"),
    ("achieved_tflops", "TFLOP/s", "{:.3f}"), ("mfu", "MFU", "{:.3f}"), ("peak_memory_gb", "peak GiB", "{:.2f}"),
]


@dataclass
class MethodSpec:
    """`NAME[:KEY=VALUE[;KEY=VALUE…]]`: a method and overrides of its own fields (method.KEY)."""

    label: str
    overrides: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.label.split(":", 1)[0]


def parse_methods(text: str) -> list[MethodSpec]:
    """'vanilla,selfflow:gamma=0' → specs. Commas inside brackets belong to a value."""
    from suite.errors import ConfigError

    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "[{(") - (ch in "]})")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    specs = []
    for p in (p.strip() for p in parts):
        if not p:
            raise ConfigError(f"--methods: empty method name in {text!r}")
        name, _, rest = p.partition(":")
        over = [f"method.name={name}"]
        for kv in filter(None, rest.split(";")):
            if "=" not in kv:
                raise ConfigError(f"--methods: {kv!r} in {p!r} is not KEY=VALUE")
            over.append(f"method.{kv}")
        specs.append(MethodSpec(p, over))
    if len({s.label for s in specs}) != len(specs):
        raise ConfigError(f"--methods: a method is listed twice in {text!r}")
    return specs


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine() or "cpu")


def peak_tflops(name: str, amp_dtype) -> float | None:
    """bf16 dense peak of a known GPU; None on CPU, unknown GPUs or without bf16 autocast."""
    if amp_dtype is not torch.bfloat16:
        return None
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_methods(configs, overrides: list[str], specs: list[MethodSpec], steps: int = 10, warmup: int = 3,
                  repeats: int = 3) -> dict:
    """{label: {column: value}} plus '_meta'. All trainers are alive at once (memory: one model,
    EMA and optimizer state per method)."""
    from suite.config import load_run_config
    from suite.data import collate
    from suite.train.flops import training_flops_per_image
    from suite.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as scratch:
        runs = {}
        for spec in specs:
            cfg = load_run_config(configs, list(overrides) + spec.overrides)
            cfg.tracking.enabled, cfg.train.progress = False, False
            tr = Trainer(cfg, run_dir=Path(scratch) / f"m{len(runs)}")
            example = tr._to_batch(collate([tr.train_set[i] for i in range(min(cfg.train.batch_size, len(tr.train_set)))]))
            flops = training_flops_per_image(tr.model, tr.ema, tr.method, example)
            batches = tr._batches()
            for _ in range(warmup):  # excluded: lazy state, allocator, compilation
                tr.train_step(next(batches))
            tr.log_window.flush()
            runs[spec.label] = {"trainer": tr, "batches": batches, "flops": flops, "times": [], "peak": 0.0}
        labels = [s.label for s in specs]
        for r in range(repeats):
            for label in labels[r % len(labels):] + labels[: r % len(labels)]:  # rotate the order each round
                run = runs[label]
                tr = run["trainer"]
                if tr.device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(tr.device)
                ready = [next(run["batches"]) for _ in range(steps)]  # data loading is not the step
                _sync(tr.device)
                t0 = time.perf_counter()
                for b in ready:
                    tr.train_step(b)
                tr.log_window.flush()  # the host sync a log interval has
                _sync(tr.device)
                run["times"].append((time.perf_counter() - t0) / steps)
                if tr.device.type == "cuda":
                    run["peak"] = max(run["peak"], torch.cuda.max_memory_allocated(tr.device) / 2**30)
        first = runs[labels[0]]["trainer"]
        meta = {"device": device_name(first.device), "batch_size": first.cfg.train.batch_size, "steps": steps,
                "warmup": warmup, "repeats": repeats, "precision": str(first.amp_dtype or "fp32"),
                "threads": torch.get_num_threads(), "torch": torch.__version__}
        results = {label: _summary(run, first.cfg.train.batch_size, meta["device"], run["trainer"].amp_dtype)
                   for label, run in runs.items()}
    base = results.get("vanilla")
    for res in results.values():
        res["step_time_ratio"] = res["step_time_s"] / base["step_time_s"] if base else None
        res["flops_ratio"] = res["flops_per_image"] / base["flops_per_image"] if base else None
    return {**results, "_meta": meta}


def _summary(run: dict, batch_size: int, name: str, amp_dtype) -> dict:
    times, flops = run["times"], run["flops"]
    step = statistics.median(times)
    ips = batch_size / step
    peak = peak_tflops(name, amp_dtype)
    achieved = ips * flops["total"] / 1e12
    return {"images_per_s": ips, "step_time_s": step, "step_time_min_s": min(times), "step_time_max_s": max(times),
            "step_time_spread_s": f"{min(times):.4f}–{max(times):.4f}",
            "flops_per_image": flops["total"] / 1e9, "flops_per_image_backbone": flops["backbone"] / 1e9,
            "achieved_tflops": achieved, "mfu": achieved / peak if peak else None,
            "peak_memory_gb": run["peak"] if run["trainer"].device.type == "cuda" else None}


def format_table(results: dict) -> str:
    """Plain-text table (one row per method) plus a line on the setting."""
    rows = [(label, r) for label, r in results.items() if label != "_meta"]
    head = ["method"] + [h for _, h, _ in COLUMNS]
    cells = [[label] + [("–" if r.get(k) is None else f.format(r[k])) for k, _, f in COLUMNS] for label, r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *cells)]
    line = lambda xs: "  ".join(x.ljust(w) for x, w in zip(xs, widths))  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(c) for c in cells]
    m = results.get("_meta")
    if m:
        out.append(f"{m['device']}, batch {m['batch_size']}, {m['precision']}, {m['threads']} threads, "
                   f"{m['repeats']} rounds × {m['steps']} steps after {m['warmup']} warm-up, torch {m['torch']}")
    return "\n".join(out)


def metric_key(label: str) -> str:
    """MLflow-safe form of a method label ('selfflow:gamma=0' → 'selfflow:gamma-0')."""
    return "".join(ch if ch.isalnum() or ch in "_-. :/" else "-" for ch in label)


def log_bench(results: dict, uri: str, experiment: str, run_name: str, params: dict) -> str:
    """One MLflow run: every number as `bench/<method>/<column>`, the table as artifacts."""
    from suite.tracking import Tracker

    meta = results["_meta"]
    tracker = Tracker(uri, experiment, None, run_name, {"device": meta["device"], "kind": "bench"})
    tracker.log_params({**params, **{f"bench.{k}": v for k, v in meta.items()},
                        "bench.methods": ",".join(k for k in results if k != "_meta")})
    metrics = {f"bench/{metric_key(label)}/{k}": v for label, r in results.items() if label != "_meta"
               for k, v in r.items() if isinstance(v, (int, float)) and v is not None}
    tracker.log_metrics(metrics, 0)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "bench.json").write_text(json.dumps(results, indent=2))
        (Path(d) / "bench.txt").write_text(format_table(results) + "\n")
        tracker.log_artifact(Path(d) / "bench.json")
        tracker.log_artifact(Path(d) / "bench.txt")
    tracker.finish()
    return tracker.run_id
