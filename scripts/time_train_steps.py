"""Time the trainer's real step for several methods, interleaved, with any version of the suite.

Uses only `Trainer`, `Trainer._batches` and `Trainer.train_step`, which every version has, so the
same script measures a tree before and after a change (put that tree first on PYTHONPATH):

    PYTHONPATH=/path/to/tree python scripts/time_train_steps.py CONFIG --methods vanilla,selfflow:gamma=0 \
        [--set KEY=VALUE ...] [--steps 5] [--warmup 3] [--repeats 5] [--out times.json]

Prints and writes {method: [seconds per step, one per round]}. `suite bench` is the full tool
(FLOPs, ratios, MLflow); this one exists for before/after comparisons (docs/PERFORMANCE.md).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def split_methods(text: str) -> list[str]:
    """Commas inside brackets belong to a value (REPA's `encoders=[{name: local, path: …}]`)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            parts, cur = parts + [cur], ""
        else:
            cur += ch
    return parts + [cur]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--methods", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out")
    a = p.parse_args()
    import suite
    from suite.config import load_run_config
    from suite.train.trainer import Trainer

    print(f"suite from {Path(suite.__file__).parent}", file=sys.stderr)
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for i, label in enumerate(split_methods(a.methods)):
            name, _, rest = label.partition(":")
            over = a.overrides + [f"method.name={name}"] + [f"method.{kv}" for kv in rest.split(";") if kv]
            cfg = load_run_config(a.config, over)
            cfg.tracking.enabled, cfg.train.progress = False, False
            tr = Trainer(cfg, run_dir=Path(scratch) / f"m{i}")
            batches = tr._batches()
            for _ in range(a.warmup):
                tr.train_step(next(batches))
            runs[label] = (tr, batches, [])
        labels = list(runs)
        for r in range(a.repeats):
            for label in labels[r % len(labels):] + labels[: r % len(labels)]:
                tr, batches, times = runs[label]
                ready = [next(batches) for _ in range(a.steps)]
                t0 = time.perf_counter()
                for b in ready:
                    tr.train_step(b)
                if hasattr(tr, "log_window"):
                    tr.log_window.flush()
                times.append((time.perf_counter() - t0) / a.steps)
    out = {label: times for label, (_, _, times) in runs.items()}
    for label, times in out.items():
        print(f"{label:24s} median {statistics.median(times):.4f} s  min {min(times):.4f}  max {max(times):.4f}")
    if a.out:
        Path(a.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
