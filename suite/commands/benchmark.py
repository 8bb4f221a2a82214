"""`suite benchmark [--profile cpu|cpu-shapes|gpu|cpu-reduced|smoke] [--out DIR] [--dry-run]`: argument wiring only; the
benchmark itself (methods, profiles, data, why) is suite/commands/benchmark_spec.py."""
from __future__ import annotations

import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--profile", default="cpu", help="cpu (digits, ~1 h on 2 cores, models learn), cpu-shapes (~80 min on 2 cores; its models stay undertrained, docs/REPORTS.md), gpu (shapes, ~20 min on one H100, not yet run), cpu-reduced (~15 min pipeline check), smoke (tests)")
    p.add_argument("--out", default="benchmark", help="output folder (runs, MLflow store, report)")
    p.add_argument("--parallel", type=int, default=0, help="runs trained at once (default: the profile's)")
    p.add_argument("--dry-run", action="store_true", help="validate the sweep and list its points; train nothing")


def run(args) -> int:
    from suite.commands import benchmark_spec as benchmark
    from suite.sweeps.dispatch import run_sweep
    from suite.sweeps.plan import tracking_settings
    from suite.sweeps.spec import parse_sweep_spec

    p = benchmark.profile(args.profile)
    if args.parallel:
        p["parallel"] = args.parallel
    out = Path(args.out).resolve()
    t0 = time.time()
    say = lambda msg: print(f"[benchmark {time.time() - t0:5.0f}s] {msg}", flush=True)  # noqa: E731
    encoder_dir = out / "encoders" / f"{p['data']}{p['image_size']}-classifier-{args.profile}"
    spec = parse_sweep_spec(benchmark.benchmark_spec(args.profile, out, encoder_dir, p))
    if args.dry_run:
        return run_sweep(spec, kind="local", dry_run=True)
    out.mkdir(parents=True, exist_ok=True)
    if (encoder_dir / "encoder.json").is_file():
        say(f"encoder: reusing {encoder_dir}")
    else:
        from baselines.encoders.train import train_encoder

        say(f"encoder: training a small ViT classifier on {p['data']} (REPA's local target)")
        meta = train_encoder(benchmark.encoder_config(p), encoder_dir, log=lambda m: None)
        say(f"encoder: linear-probe accuracy {meta.get('linear_probe_acc', float('nan')):.3f}")
    from suite.tracking import init_store
    from reports.build import build_report

    uri = tracking_settings(spec)["uri"]
    init_store(uri, "benchmark")  # once, before parallel workers touch the SQLite file
    say(f"sweep {spec.name}: {spec.description}")
    rc = run_sweep(spec, kind="local", wait=True, out=say)
    preface = [f"suite benchmark --profile {args.profile}: {time.time() - t0:.0f} s for this call ({p['hours']} "
               f"expected from scratch)."]
    html = build_report(uri, out / "report", sweep=spec.name, echo=say, preface=preface)
    say(f"done in {time.time() - t0:.0f} s")
    print(f"\nReport: {html}\nMLflow: mlflow ui --backend-store-uri {uri}")
    return rc
