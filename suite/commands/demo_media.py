"""The demo's video and audio variants (`suite demo --modality video|audio`): their sweep specs.

Vanilla flow matching vs Self-Flow on the built-in `moving-shapes` (video) or `tones` (audio),
paper p(t) and R_M per modality (suite/configs/demo-*.yaml), evaluation at the end with the
dataset's own domain classifier (Fréchet distance, class consistency, linear probes), then the
report with GIF / WAV players. REPA needs a video / audio encoder and is not part of these
variants yet.

Sized by measurement: learning here is bound by optimizer steps, so the full profile trains ONE
size (depth 2) for 64,000 clips at batch 16 (4,000 steps) and lr 2e-3, two runs side by side.
Moving-shapes (vanilla FM, class consistency, chance 0.10): batch 16: 0.13 at 8k, 0.18 at 16k,
0.35–0.38 at 32k, 0.50 at 64k clips (278 s end to end on 2 quiet cores); p(t) unshifted (shift
1.0): 0.22 at 32k, so the paper's shifted p(t) stays; 4 frames instead of 8: no better.
Tones are modelled as log-magnitude spectrograms (demo-tones.yaml, suite/data/spectrogram.py) at
width 128: raw 8 kHz waveforms stayed at chance (0.085 at 8k–32k clips, batch 16); the spectrogram
view reaches 0.41–0.47 at 32k clips and 0.50–0.51 at 64k (294 s end to end; README). The two-size grid stays in the quick profile, which only checks
the pipeline.
"""
from __future__ import annotations

from pathlib import Path

MODALITIES = {"video": "moving-shapes", "audio": "tones"}  # --modality → built-in dataset
WIDTHS = {"video": 64, "audio": 128}  # audio: one 64-bin spectrogram frame per token needs a wider model
# profile → budget knobs (images per run, evaluation cadence and size, sampler steps, classifier steps)
PROFILES = {
    "full": dict(total_images=64_000, batch_size=16, lr=2e-3, eval_every=0, n_samples=400, log_every=3_200, steps=20,
                 classifier_steps=400, probe_n=400, depths=[2]),
    "quick": dict(total_images=1_280, batch_size=64, lr=1e-3, eval_every=0, n_samples=100, log_every=320, steps=8,
                  classifier_steps=100, probe_n=100, depths=[2, 4]),
}


def media_demo_spec(modality: str, out: Path, profile: str, parallel: int) -> dict:
    dataset = MODALITIES[modality]
    b = PROFILES[profile]
    name = f"demo-{modality}" + ("" if profile == "full" else "-quick")
    return {
        "name": name,
        "description": f"Built-in {modality} demo: vanilla FM vs Self-Flow on {dataset}, depth {' and '.join(map(str, b['depths']))}.",
        "base": f"builtin:demo-{dataset}",
        "set": {
            "model.hidden_size": WIDTHS[modality], "train.runs_root": str(out / "runs"), "train.total_images": b["total_images"], "train.threads": 1,
            "train.batch_size": b["batch_size"], "optim.lr": b["lr"],  # learning here is step-bound: many small steps
            "train.log_every_images": b["log_every"], "train.ckpt_every_images": b["total_images"] // 2,
            "train.val_every_images": b["eval_every"] or b["total_images"], "train.progress": False,
            "sampling.steps": b["steps"], "eval.every_images": b["eval_every"], "eval.n_samples": b["n_samples"],
            "eval.batch_size": b["n_samples"], "eval.classifier_steps": b["classifier_steps"],
            "eval.metrics": ["fd", "class_consistency", "probe"], "eval.probe_n_train": b["probe_n"],
            "eval.probe_n_test": b["probe_n"] // 2, "tracking.experiment": "demo",
        },
        "grid": {"model.depth": b["depths"], "variant": [{"_name": "vanilla", "method.name": "vanilla"}, {"_name": "selfflow", "method.name": "selfflow"}]},
        "executor": {"kind": "local", "array_parallelism": parallel, "cpus_per_task": 1},
        "dir": str(out / "sweeps" / name),
    }


def media_demo_summary(sweep_dir: Path) -> list[str]:
    """What the demo measured, one line each: the domain classifier's held-out accuracy, then the last
    class consistency of every run against chance (1 / classes). Read from the runs' own files."""
    import json

    from suite.config import load_run_config
    from suite.evaluation.domain_classifier import ClassifierRecipe, classifier_path, read_meta

    lines = []
    for run_dir in sorted((sweep_dir / "runs").glob("*/")):
        metrics, cfg_file = run_dir / "metrics.jsonl", run_dir / "config.yaml"
        if not (metrics.is_file() and cfg_file.is_file()):
            continue
        cfg = load_run_config(cfg_file)
        if not lines:  # one classifier for every run: the same data and recipe
            meta = read_meta(classifier_path(cfg.data, ClassifierRecipe(steps=cfg.eval.classifier_steps), cfg.eval.seed, cfg.eval.cache_dir))
            acc = meta.get("test_accuracy")
            lines.append(f"domain classifier ({cfg.data.name}): held-out accuracy "
                         + (f"{acc:.3f} on {meta.get('test_images')} test clips" if acc is not None else "not recorded"))
        evals = [json.loads(line) for line in metrics.read_text().splitlines() if '"eval/class_consistency' in line]
        if evals:
            last = evals[-1]
            cc = next(v for k, v in last.items() if k.startswith("eval/class_consistency"))
            lines.append(f"{cfg.method.name} depth {cfg.model.depth}: class consistency {cc:.3f} after {last['images_seen']} "
                         f"images (chance {1 / cfg.data.num_classes:.2f})")
    return lines
