"""`suite sample RUN_DIR --n N --out DIR [--format png|npz]`: samples from a run's EMA model.

png: one file per sample and a grid. npz: an ADM-evaluator batch (suite.evaluation.npz_batches) of
exactly the samples `suite eval --n N` sees with eval.seed = --seed, settings recorded beside it.
"""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("png", "npz"), default="png",
                   help="npz: OUT/samples.npz (arr_0 N×H×W×3 uint8, arr_1 labels) + samples.json, for the ADM evaluator")
    p.add_argument("--checkpoint", default=None, help="default: RUN_DIR/checkpoints/latest.pt")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="sampling overrides, e.g. sampling.sampler=heun sampling.cfg_scale=1.5")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--caption", action="append", default=None,
                   help="text runs (shapes-text): a caption to sample for, repeatable; the n samples cycle through them")


def run(args) -> int:
    from suite.commands.run_loading import load_run
    from suite.errors import SuiteError

    if args.n < 1:
        raise SuiteError(f"--n must be at least 1, got {args.n}")
    loaded = load_run(args.run_dir, args.checkpoint, args.overrides, device=args.device)
    return _npz(args, loaded) if args.format == "npz" else _png(args, loaded)


def _png(args, loaded) -> int:
    import torch
    from torchvision.utils import save_image

    from suite.sampling import describe, sample_images

    conditions = None
    if args.caption:
        from suite.data.captions import tokenize

        conditions = torch.stack([tokenize(c) for c in args.caption])[torch.arange(args.n) % len(args.caption)]  # (n, L)
    imgs, labels = sample_images(loaded.ema, args.n, loaded.cfg.sampling, loaded.device, seed=args.seed, labels=conditions,
                                 progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if imgs.dim() == 4:
        for i, (img, y) in enumerate(zip(imgs, labels)):
            tag = f"caption{i % len(args.caption)}" if args.caption else f"class{int(y)}"
            save_image((img + 1) / 2, out / f"{i:06d}_{tag}.png")
        save_image((imgs[:64] + 1) / 2, out / "grid.png", nrow=8)
    else:  # video → GIF, audio → WAV + spectrogram, one per sample and one of the first 64
        from suite.media import write_each

        write_each(imgs, labels, out, loaded.cfg.data)
    torch.save({"labels": labels, "sampling": describe(loaded.cfg.sampling), "images_seen": loaded.images_seen}, out / "meta.pt")
    print(f"wrote {args.n} samples to {out} (EMA at {loaded.images_seen} images; {describe(loaded.cfg.sampling)})")
    return 0


def _npz(args, loaded) -> int:
    from suite.evaluation.npz_batches import write_adm_npz
    from suite.evaluation.run_eval import Evaluator
    from suite.sampling import describe

    cfg = loaded.cfg
    if args.seed is not None:
        cfg.eval.seed = args.seed
    ev = Evaluator(cfg, loaded.run_dir, loaded.device, metrics=[], n=args.n)
    meta = {"n": args.n, "sampling": describe(cfg.sampling), "eval_seed": cfg.eval.seed, "chunk_size": cfg.eval.batch_size,
            "images_seen": loaded.images_seen, "run_dir": str(loaded.run_dir), "checkpoint": str(loaded.checkpoint),
            "arrays": {"arr_0": "images (N, H, W, 3) uint8", "arr_1": "class labels (N,)"},
            "same_as": f"the samples of `suite eval {loaded.run_dir} --n {args.n}` with eval.seed={cfg.eval.seed}"}
    path = write_adm_npz(Path(args.out) / "samples.npz", ev.samples(loaded.ema, args.n, loaded.device), args.n, meta)
    print(f"wrote {args.n} samples to {path} (+ {path.with_suffix('.json').name}; EMA at {loaded.images_seen} images; "
          f"{describe(cfg.sampling)}); ADM evaluator: python evaluator.py REF.npz {path}")
    return 0
