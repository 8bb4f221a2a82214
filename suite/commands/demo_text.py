"""`suite demo --text [--modality image|video|audio] [--quick] [--out DIR]`: text-to-X on the
built-in captioned data, on a CPU.

1. trains vanilla flow matching and Self-Flow with a small MM-DiT on `shapes-text` (images,
   suite/configs/demo-shapes-text.yaml), `moving-shapes-text` (video, demo-moving-shapes-text.yaml)
   or `tones-text` (audio as spectrograms, demo-tones-text.yaml);
2. gets the dataset's attribute judge (suite/evaluation/caption_consistency.py), trained on real
   data once and cached like the evaluator's (suite/evaluation/caption_judge.py: `eval.cache_dir`,
   else $SUITE_CACHE, else ~/.cache/selfflow-suite; keyed by the data and the profile's judge recipe);
3. samples each model for captions of seen combinations (test split) and of unseen ones
   (held-out attribute pairs), without CFG and with CFG, and reports caption consistency (per
   attribute and all at once) against chance. Writes results.json, the samples (PNG grids, GIFs,
   WAVs) and report.html (tables and players, suite/commands/demo_text_report.py) to --out.
Re-running continues where it stopped (finished runs are reused).

The two methods train side by side (`--parallel`, default 2: one process and one thread each).
Image, full profile, measured on 2 quiet CPU cores (README): 1,000 steps at batch 32, lr 2e-3;
530 s end to end (training 384 s). Colour, size and position follow the caption (0.94–1.00),
shape partly (0.20–0.52, chance 0.20; at 500 steps it stayed at chance); all four 0.20–0.50
against chance 0.006. Audio, full profile
(1,000 steps at batch 16): 672 s end to end (training 328 s) on 2 shared cores; all three
attributes 0.74–0.82 on seen timbre–pitch pairs, 0.09–0.23 on unseen ones (pitch not composed;
chance 0.025). Video, full profile (1,000 steps at batch 16): 954 s on 2 cores shared with other
jobs; all three attributes 0.14–0.19 for vanilla, 0.36–0.62 for Self-Flow (direction of motion
followed by Self-Flow only; chance 0.020); one seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

DATASETS = {"image": "shapes-text", "video": "moving-shapes-text", "audio": "tones-text"}  # --modality → built-in (config demo-<name>)
QUICK_CAVEAT = ("quick profile: a few steps, too few to learn; the models still ignore their captions, so every "
                "method and guidance scale gets the same figures. It checks the pipeline; the full profile measures.")
PROFILES = {  # modality → budget knobs; `set` overrides the shipped config (the quick ones only check the pipeline)
    "image": {
        "full": dict(total_images=32_000, n_samples=256, n_cfg=64, steps=20, judge_steps=400, judge_images=2000,
                     set=["train.batch_size=32", "optim.lr=2e-3", "train.threads=1"]),  # 1,000 steps: shape needs them (500: at chance); 1 thread: 2 thrash on a shared machine
        "quick": dict(total_images=256, n_samples=16, steps=4, judge_steps=60, judge_images=256,
                      set=["data.image_size=16", "data.num_images=400", "model.hidden_size=32", "model.depth=2",
                           "model.num_heads=2", "model.double_blocks=1", "train.batch_size=32", "train.threads=1"]),
    },
    "video": {
        "full": dict(total_images=16_000, n_samples=200, steps=20, judge_steps=300, judge_images=2000,
                     set=["train.batch_size=16", "optim.lr=2e-3", "train.threads=1"]),  # 1,000 steps: Self-Flow ~45 clips/s on one core
        "quick": dict(total_images=128, n_samples=8, steps=4, judge_steps=40, judge_images=256,
                      set=["data.image_size=8", "data.frames=4", "data.num_images=200", "model.hidden_size=32", "model.depth=2",
                           "model.num_heads=2", "model.double_blocks=1", "train.batch_size=32", "train.threads=1"]),
    },
    "audio": {
        "full": dict(total_images=16_000, n_samples=200, steps=20, judge_steps=250, judge_images=1500,
                     set=["train.batch_size=16", "optim.lr=2e-3", "train.threads=1"]),  # 1,000 steps: Self-Flow ~67 clips/s on one core
        "quick": dict(total_images=128, n_samples=8, steps=4, judge_steps=30, judge_images=256,
                      set=["data.audio_length=1024", "data.num_images=200", "model.hidden_size=32", "model.depth=2",
                           "model.num_heads=2", "model.double_blocks=1", "train.batch_size=32", "train.threads=1"]),
    },
}
METHODS = ("vanilla", "selfflow")
CFG_SCALES = (1.0, 3.5)  # metrics without guidance (the paper's setting); 3.5 as its qualitative samples
SHOWN = 16  # samples per set written to disk and shown in the report


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


def _media(ds):
    """(n, ...) what the judge reads of a captioned dataset: its pixels (tones-text: waveforms, not the spectrogram view)."""
    return ds.clips.images if hasattr(ds, "clips") else ds.images


def output_dir(out: str, modality: str, profile: str) -> Path:
    name = "text" if modality == "image" else f"text-{modality}"
    return Path(out).resolve() / (name if profile == "full" else f"{name}-quick")


def run_text_demo(args) -> int:
    import torch

    from suite.commands.demo_text_report import save_set, write_report
    from suite.config import load_run_config
    from suite.data import build_dataset, media_decoder
    from suite.evaluation.caption_consistency import caption_consistency
    from suite.evaluation.caption_judge import JudgeRecipe, cached_judge, judge_path
    from suite.sampling import sample_images

    modality = getattr(args, "modality", "image")
    dataset = DATASETS[modality]
    profile = "quick" if args.quick else "full"
    b = PROFILES[modality][profile]
    out = output_dir(args.out, modality, profile)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say = lambda msg: print(f"[demo-text {time.time() - t0:5.0f}s] {msg}", flush=True)  # noqa: E731
    torch.set_num_threads(1)  # judge and sampling; 2 threads thrash when the cores are shared

    overrides = [f"train.runs_root={out / 'runs'}", f"train.total_images={b['total_images']}", "train.progress=false",
                 f"train.ckpt_every_images={b['total_images'] // 2}", f"train.log_every_images={b['total_images'] // 10}",
                 f"sampling.steps={b['steps']}", "tracking.experiment=demo-text", *b["set"]]
    cfgs = {m: load_run_config(f"builtin:demo-{dataset}", overrides + [f"name={m}", f"method.name={m}"]) for m in METHODS}
    parallel = max(1, min(getattr(args, "parallel", 2), len(METHODS)))
    say(f"train {', '.join(METHODS)}: {cfgs['vanilla'].model.preset} on {dataset}, {b['total_images']} examples each, "
        f"{parallel} at a time")
    run_dirs = train_all(cfgs, parallel)
    t_trained = time.time()
    data_cfg = cfgs["vanilla"].data
    test, unseen = build_dataset(data_cfg, "test"), build_dataset(data_cfg, "unseen")
    full = test.dataset
    scheme, rate = full.scheme, getattr(full, "rate", None)
    recipe = JudgeRecipe(n_images=b["judge_images"], steps=b["judge_steps"], batch_size=64)
    cache_dir = cfgs["vanilla"].eval.cache_dir
    say(f"judge: the attribute judge of real {dataset} ({judge_path(data_cfg, recipe, cache_dir)}; trained there if missing)")
    judge = cached_judge(data_cfg, cache_dir, recipe)
    decoder = media_decoder(data_cfg)  # spectrograms → waveforms (Griffin-Lim); None for pixels
    n = b["n_samples"]
    idx = torch.tensor(test.indices[:n])
    sets = {"seen": (full.captions[idx], full.attributes[idx]), "unseen": (unseen.captions[:n], unseen.attributes[:n])}
    results = {"profile": profile, "dataset": dataset, "chance": scheme.chance_levels(),
               "samples_per_set": {"cfg1": n, **{f"cfg{s:g}": min(n, b.get("n_cfg", n)) for s in CFG_SCALES if s != 1.0}},
               "real": caption_consistency(judge, _media(full)[idx], sets["seen"][1])}
    if decoder is not None:  # the decoder's ceiling: real clips through the view and back
        results["real/decoded"] = caption_consistency(judge, decoder.to_pixels(full.views[idx]), sets["seen"][1])
    shown = {}
    for m, run_dir in run_dirs.items():
        from suite.commands.run_loading import load_run

        model = load_run(run_dir).ema
        for scale in CFG_SCALES:
            sampling = cfgs[m].sampling
            sampling.cfg_scale = scale
            for split, (caps, attrs) in sets.items():
                if scale != 1.0:  # guided samples cost two passes: `n_cfg` of them (the metric setting is unguided)
                    caps, attrs = caps[:b.get("n_cfg", n)], attrs[:b.get("n_cfg", n)]
                x, _ = sample_images(model, len(caps), sampling, "cpu", seed=0, labels=caps)
                media = decoder.to_pixels(x).clamp(-1, 1) if decoder is not None else x
                key = f"{m}/cfg{scale:g}/{split}"
                results[key] = caption_consistency(judge, media, attrs)
                shown[key] = save_set(media[:SHOWN], out, f"samples-{m}-cfg{scale:g}-{split}", rate)
        say(f"sampled {m}")
    captions = {split: [scheme.detokenize(c) for c in caps[:SHOWN]] for split, (caps, _) in sets.items()}
    for split, lines in captions.items():
        (out / f"captions-{split}.txt").write_text("\n".join(lines) + "\n")
    results["seconds"] = {"training": round(t_trained - t0), "total": round(time.time() - t0)}
    if profile == "quick":
        results["caveat"] = QUICK_CAVEAT
    (out / "results.json").write_text(json.dumps(results, indent=2))
    html = write_report(out, results, shown, captions, list(scheme.attributes))
    names = list(scheme.attributes)
    print(f"\ncaption consistency (all / {' / '.join(names)}), chance {results['chance']['all']:.3f}:")
    for key, r in results.items():
        if isinstance(r, dict) and "all" in r and key != "chance":
            print(f"  {key:28s} {r['all']:.3f}  " + " ".join(f"{r[k]:.2f}" for k in names))
    if profile == "quick":
        print(f"  {QUICK_CAVEAT}")
    say(f"done → {out / 'results.json'}")
    print(f"\nReport: {html}")
    return 0
