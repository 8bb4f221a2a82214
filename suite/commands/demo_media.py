"""The demo's video and audio variants (`suite demo --modality video|audio`): their sweep specs.

Vanilla flow matching vs Self-Flow on the built-in `moving-shapes` (video) or `tones` (audio),
two model sizes, paper p(t) and R_M per modality (suite/configs/demo-*.yaml), in-training
evaluation with the dataset's own domain classifier (Fréchet distance, class consistency,
linear probes), then the report with GIF / WAV players. REPA needs a video / audio encoder and
is not part of these variants yet.
"""
from __future__ import annotations

from pathlib import Path

MODALITIES = {"video": "moving-shapes", "audio": "tones"}  # --modality → built-in dataset
# profile → budget knobs (images per run, evaluation cadence and size, sampler steps, classifier steps)
PROFILES = {
    "full": dict(total_images=16_000, batch_size=32, eval_every=8_000, n_samples=400, log_every=1_600, steps=20, classifier_steps=400, probe_n=400),
    "quick": dict(total_images=1_280, batch_size=64, eval_every=0, n_samples=100, log_every=320, steps=8, classifier_steps=100, probe_n=100),
}
DEPTHS = [2, 4]  # at width 64: two model sizes


def media_demo_spec(modality: str, out: Path, profile: str, parallel: int) -> dict:
    dataset = MODALITIES[modality]
    b = PROFILES[profile]
    name = f"demo-{modality}" + ("" if profile == "full" else "-quick")
    return {
        "name": name,
        "description": f"Built-in {modality} demo: vanilla FM vs Self-Flow on {dataset}, two sizes.",
        "base": f"builtin:demo-{dataset}",
        "set": {
            "model.hidden_size": 64, "train.runs_root": str(out / "runs"), "train.total_images": b["total_images"], "train.threads": 1,
            "train.batch_size": b["batch_size"],  # more, smaller steps: the EMA (0.99) needs a few hundred
            "train.log_every_images": b["log_every"], "train.ckpt_every_images": b["total_images"] // 2,
            "train.val_every_images": b["eval_every"] or b["total_images"], "train.progress": False,
            "sampling.steps": b["steps"], "eval.every_images": b["eval_every"], "eval.n_samples": b["n_samples"],
            "eval.batch_size": b["n_samples"], "eval.classifier_steps": b["classifier_steps"],
            "eval.metrics": ["fd", "class_consistency", "probe"], "eval.probe_n_train": b["probe_n"],
            "eval.probe_n_test": b["probe_n"] // 2, "tracking.experiment": "demo",
        },
        "grid": {"model.depth": DEPTHS, "variant": [{"_name": "vanilla", "method.name": "vanilla"}, {"_name": "selfflow", "method.name": "selfflow"}]},
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
