"""`suite demo --text [--quick] [--out DIR]`: text-to-image on the built-in captioned shapes, on a CPU.

1. trains vanilla flow matching and Self-Flow on `shapes-text` with a small MM-DiT
   (suite/configs/demo-shapes-text.yaml);
2. trains the attribute judge (suite/evaluation/caption_consistency.py) on real captioned shapes;
3. samples each model for captions of seen combinations (test split) and of unseen ones
   (held-out colour–shape pairs), without CFG and with CFG, and reports caption consistency
   (per attribute and all four) against chance. Writes results.json and sample grids to --out.
Re-running continues where it stopped (finished runs are reused).

The two methods train side by side (`--parallel`, default 2: one process and one thread each).
Full profile, measured on 2 quiet CPU cores (README): 500 steps at batch 32, lr 2e-3; 494 s end to
end (training 220 s). Colour, size and position follow the caption (0.78–1.00), shape does not yet
(0.18–0.30, chance 0.20); all four 0.11–0.28 against chance 0.006.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

PROFILES = {  # budget knobs; `set` overrides the shipped config (the quick one only checks the pipeline)
    "full": dict(total_images=16_000, n_samples=256, steps=20, judge_steps=400, judge_images=2000,
                 set=["train.batch_size=32", "optim.lr=2e-3", "train.threads=1"]),  # 500 steps: learning on a CPU is step-bound; 1 thread: 2 thrash on a shared machine
    "quick": dict(total_images=256, n_samples=16, steps=4, judge_steps=60, judge_images=256,
                  set=["data.image_size=16", "data.num_images=400", "model.hidden_size=32", "model.depth=2",
                       "model.num_heads=2", "model.double_blocks=1", "train.batch_size=32", "train.threads=1"]),
}
METHODS = ("vanilla", "selfflow")
CFG_SCALES = (1.0, 3.5)  # metrics without guidance; 3.5 as the paper's qualitative samples


def _train_one(cfg) -> str:
    """One run in a worker process (spawned: a clean torch, its own thread count)."""
    from suite.train import train

    return str(train(cfg).run_dir)


def train_all(cfgs: dict, parallel: int) -> dict[str, Path]:
    """Train every method's config, `parallel` at a time (runs are independent: one core each);
    method → run directory. The MLflow store is created first: concurrent SQLite migrations crash."""
    from suite.tracking import init_store, resolve_tracking_uri

    first = next(iter(cfgs.values()))
    if first.tracking.enabled:
        init_store(resolve_tracking_uri(first.tracking, first.train.runs_root), first.tracking.experiment)
    if parallel == 1:
        return {m: Path(_train_one(cfg)) for m, cfg in cfgs.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {m: pool.submit(_train_one, cfg) for m, cfg in cfgs.items()}
        return {m: Path(f.result()) for m, f in futures.items()}


def run_text_demo(args) -> int:
    import torch
    from torchvision.utils import save_image

    from suite.config import load_run_config
    from suite.data import build_dataset
    from suite.data.captions import detokenize
    from suite.evaluation.caption_consistency import (caption_consistency, chance_levels, judge_training_set,
                                                       train_attribute_classifier)
    from suite.sampling import sample_images

    profile = "quick" if args.quick else "full"
    b = PROFILES[profile]
    out = Path(args.out).resolve() / ("text" if profile == "full" else "text-quick")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say = lambda msg: print(f"[demo-text {time.time() - t0:5.0f}s] {msg}", flush=True)  # noqa: E731
    torch.set_num_threads(1)  # judge and sampling; 2 threads thrash when the cores are shared

    overrides = [f"train.runs_root={out / 'runs'}", f"train.total_images={b['total_images']}", "train.progress=false",
                 f"train.ckpt_every_images={b['total_images'] // 2}", f"train.log_every_images={b['total_images'] // 10}",
                 f"sampling.steps={b['steps']}", "tracking.experiment=demo-text", *b["set"]]
    cfgs = {m: load_run_config("builtin:demo-shapes-text", overrides + [f"name={m}", f"method.name={m}"]) for m in METHODS}
    parallel = max(1, min(getattr(args, "parallel", 2), len(METHODS)))
    say(f"train {', '.join(METHODS)}: {cfgs['vanilla'].model.preset} on shapes-text, {b['total_images']} images each, "
        f"{parallel} at a time")
    run_dirs = train_all(cfgs, parallel)
    say("judge: training the attribute classifier on real captioned shapes")
    size = cfgs["vanilla"].data.image_size
    judge = train_attribute_classifier(*judge_training_set(cfgs["vanilla"].data, b["judge_images"], seed=1), steps=b["judge_steps"], batch_size=64)
    data_cfg = cfgs["vanilla"].data
    test, unseen = build_dataset(data_cfg, "test"), build_dataset(data_cfg, "unseen")
    full = test.dataset
    n = b["n_samples"]
    sets = {"seen": (full.captions[test.indices[:n]], full.attributes[test.indices[:n]]),
            "unseen": (unseen.captions[:n], unseen.attributes[:n])}
    results = {"profile": profile, "chance": chance_levels(), "real": caption_consistency(judge, full.images[test.indices[:n]], sets["seen"][1])}
    for m, run_dir in run_dirs.items():
        from suite.commands.run_loading import load_run

        model = load_run(run_dir).ema
        for scale in CFG_SCALES:
            sampling = cfgs[m].sampling
            sampling.cfg_scale = scale
            for split, (caps, attrs) in sets.items():
                imgs, _ = sample_images(model, len(caps), sampling, "cpu", seed=0, labels=caps)
                results[f"{m}/cfg{scale:g}/{split}"] = caption_consistency(judge, imgs, attrs)
                save_image((imgs[:16] + 1) / 2, out / f"samples-{m}-cfg{scale:g}-{split}.png", nrow=4)
        say(f"sampled {m}")
    (out / "captions-seen.txt").write_text("\n".join(detokenize(c) for c in sets["seen"][0][:16]) + "\n")
    (out / "captions-unseen.txt").write_text("\n".join(detokenize(c) for c in sets["unseen"][0][:16]) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\ncaption consistency (all four attributes / colour / shape / size / position), chance {results['chance']['all']:.3f}:")
    for key, r in results.items():
        if isinstance(r, dict) and "all" in r and key != "chance":
            print(f"  {key:28s} {r['all']:.3f}  " + " ".join(f"{r[k]:.2f}" for k in ("colour", "shape", "size", "position")))
    say(f"done → {out / 'results.json'}")
    return 0
