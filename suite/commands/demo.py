"""`suite demo [--quick] [--out DIR]`: the whole product on the built-in digits, on a CPU.

1. trains a small encoder on digits (`suite encoder train`) so REPA has a real, local target;
2. runs vanilla flow matching, REPA (aligned to that encoder) and Self-Flow × 2 model sizes
   through the sweep layer's local executor, with in-training evaluation (FID / KID with the digits
   domain classifier, class consistency, linear probes per block);
3. builds the report (sample grids, verdict, tables, figures, one HTML page) from MLflow only.
Re-running continues where it stopped: finished points are skipped, the encoder is reused.

The full profile is sized so every model LEARNS on 2 CPU cores in under 10 minutes: fewer, better
trained runs. Patch 4 on 16×16 digits (16 tokens: the 8×8 source images at patch 2), width 96,
depths 4 and 6, 64,000 images at lr 2e-3 with EMA 0.99 (half-life ~70 steps): measured class
consistency 0.84–0.86 for vanilla and Self-Flow at depth 3–6 (chance 0.10). Two sizes show the
sizes side by side; they cannot pin a scaling law (the report says "not identified"): that is
`suite benchmark`'s job.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

# name → budget knobs; the grid itself is the same for both.
PROFILES = {
    "full": dict(total_images=64_000, eval_every=16_000, n_samples=1000, log_every=4_000, steps=20, encoder_steps=300,
                 probe_n=600, width=96, depths=[4, 6], lr=2e-3),
    "quick": dict(total_images=1_600, eval_every=0, n_samples=200, log_every=320, steps=8, encoder_steps=60, probe_n=200,
                  width=64, depths=[2, 4], lr=1e-3),
}


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="tiny budgets (tests, a first look): about a minute")
    p.add_argument("--out", default="demo", help="output folder (runs, MLflow store, report)")
    p.add_argument("--parallel", type=int, default=2, help="runs trained at once (local executor)")
    p.add_argument("--modality", choices=("image", "video", "audio"), default="image",
                   help="image: digits (default); video: moving-shapes; audio: tones (suite/commands/demo_media.py)")
    p.add_argument("--text", action="store_true",
                   help="text-to-X with an MM-DiT on the captioned built-in of --modality: shapes-text, moving-shapes-text, "
                        "tones-text (suite/commands/demo_text.py)")


def demo_spec(out: Path, encoder_dir: Path, profile: str, parallel: int) -> dict:
    b = PROFILES[profile]
    name = "demo" if profile == "full" else "demo-quick"
    methods = [
        {"_name": "vanilla", "method.name": "vanilla"},
        {"_name": "repa", "method.name": "repa", "method.encoders": [{"name": "local", "path": str(encoder_dir)}],
         "method.projector_hidden": 256},  # REPA's 2048 is sized for D = 1152; 4× the demo's width here
        {"_name": "selfflow", "method.name": "selfflow"},
    ]
    return {
        "name": name,
        "description": "Built-in demo: vanilla FM vs REPA (local encoder) vs Self-Flow on digits, two sizes.",
        "base": "builtin:demo-digits",
        "set": {
            "model.preset": "SiT-Micro/4", "model.hidden_size": b["width"], "optim.lr": b["lr"], "train.runs_root": str(out / "runs"), "train.total_images": b["total_images"], "train.threads": 1,
            "train.log_every_images": b["log_every"], "train.ckpt_every_images": b["total_images"] // 2,
            "train.val_every_images": b["eval_every"] or b["total_images"], "train.progress": False,
            "sampling.steps": b["steps"], "eval.every_images": b["eval_every"], "eval.n_samples": b["n_samples"],
            "eval.metrics": ["fid", "kid", "class_consistency", "probe"], "eval.probe_n_train": b["probe_n"],
            "eval.probe_n_test": b["probe_n"] // 2, "tracking.experiment": "demo",
        },
        "grid": {"model.depth": b["depths"], "variant": methods},
        "executor": {"kind": "local", "array_parallelism": parallel, "cpus_per_task": 1},
        "dir": str(out / "sweeps" / name),
    }


def run(args) -> int:
    if getattr(args, "text", False):
        from suite.commands.demo_text import run_text_demo

        return run_text_demo(args)
    from baselines.encoders.train import EncoderTrainConfig, train_encoder
    from suite.sweeps.dispatch import run_sweep
    from suite.sweeps.spec import parse_sweep_spec
    from suite.sweeps.plan import tracking_settings
    from suite.tracking import init_store
    from reports.build import build_report

    profile = "quick" if args.quick else "full"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say = lambda msg: print(f"[demo {time.time() - t0:5.0f}s] {msg}", flush=True)  # noqa: E731

    if args.modality != "image":
        return run_media_demo(args, out, profile, say)
    encoder_dir = out / "encoders" / f"digits-classifier-{profile}"
    if (encoder_dir / "encoder.json").is_file():
        say(f"encoder: reusing {encoder_dir}")
    else:
        say("encoder: training a small ViT classifier on digits (REPA's local target)")
        meta = train_encoder(EncoderTrainConfig(dataset="digits", kind="classifier", steps=PROFILES[profile]["encoder_steps"], threads=2),
                             encoder_dir, log=lambda m: None)
        say(f"encoder: linear-probe accuracy {meta.get('linear_probe_acc', float('nan')):.3f} → {encoder_dir}")

    spec_dict = demo_spec(out, encoder_dir, profile, args.parallel)
    spec = parse_sweep_spec(spec_dict)
    uri = tracking_settings(spec)["uri"]
    init_store(uri, "demo")  # once, before parallel workers touch the SQLite file
    say(f"sweep {spec.name}: 3 methods × 2 sizes on digits, {PROFILES[profile]['total_images']} images each, "
        f"{args.parallel} at a time (MLflow: {uri})")
    rc = run_sweep(spec, kind="local", wait=True, out=say)
    say("report: reading MLflow")
    preface = [f"Demo profile {profile!r}: trained and evaluated in {time.time() - t0:.0f} s on "
               f"{os.cpu_count()} CPU core(s), {args.parallel} runs at a time (1-minute load average at the "
               f"end: {os.getloadavg()[0]:.1f}; re-running reuses finished runs, so this is the time of this call)."]
    html = build_report(uri, out / "report", sweep=spec.name, echo=say, preface=preface)
    say(f"done in {time.time() - t0:.0f} s")
    print(f"\nReport: {html}\nMLflow: mlflow ui --backend-store-uri {uri}")
    return rc



def run_media_demo(args, out: Path, profile: str, say) -> int:
    """`--modality video|audio`: the sweep of suite/commands/demo_media.py, then the report with players."""
    from reports.build import build_report
    from suite.commands.demo_media import media_demo_spec, media_demo_summary
    from suite.sweeps.dispatch import run_sweep
    from suite.sweeps.plan import tracking_settings
    from suite.sweeps.spec import parse_sweep_spec
    from suite.tracking import init_store

    t_start = time.time()
    spec = parse_sweep_spec(media_demo_spec(args.modality, out, profile, args.parallel))
    uri = tracking_settings(spec)["uri"]
    init_store(uri, "demo")
    say(f"sweep {spec.name}: {spec.description}")
    rc = run_sweep(spec, kind="local", wait=True, out=say)
    t_trained = time.time()
    measured = media_demo_summary(Path(spec.dir))
    preface = [f"Demo profile {profile!r} ({args.modality}): trained and evaluated in {t_trained - t_start:.0f} s on "
               f"{os.cpu_count()} CPU core(s), {args.parallel} runs at a time (1-minute load average at the end: "
               f"{os.getloadavg()[0]:.1f}; re-running reuses finished runs, so this is the time of this call).", *measured]
    html = build_report(uri, out / f"report-{args.modality}", sweep=spec.name, echo=say, preface=preface)
    print("\n" + "\n".join(preface))
    print(f"\nReport: {html}\nMLflow: mlflow ui --backend-store-uri {uri}")
    return rc
