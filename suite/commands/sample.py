"""`suite sample RUN_DIR --n N --out DIR`: PNG files (and a grid) from the run's EMA model."""
from __future__ import annotations

from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint", default=None, help="default: RUN_DIR/checkpoints/latest.pt")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="sampling overrides, e.g. sampling.sampler=heun sampling.cfg_scale=1.5")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--caption", action="append", default=None,
                   help="text runs (shapes-text): a caption to sample for, repeatable; the n samples cycle through them")


def run(args) -> int:
    import torch
    from torchvision.utils import save_image

    from suite.run_loading import load_run
    from suite.sampling import describe, sample_images

    loaded = load_run(args.run_dir, args.checkpoint, args.overrides, device=args.device)
    conditions = None
    if args.caption:
        from suite.data.captions import tokenize

        conditions = torch.stack([tokenize(c) for c in args.caption])[torch.arange(args.n) % len(args.caption)]  # (n, L)
    imgs, labels = sample_images(loaded.ema, args.n, loaded.cfg.sampling, loaded.device, seed=args.seed, labels=conditions,
                                 progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (img, y) in enumerate(zip(imgs, labels)):
        tag = f"caption{i % len(args.caption)}" if args.caption else f"class{int(y)}"
        save_image((img + 1) / 2, out / f"{i:06d}_{tag}.png")
    save_image((imgs[:64] + 1) / 2, out / "grid.png", nrow=8)
    torch.save({"labels": labels, "sampling": describe(loaded.cfg.sampling), "images_seen": loaded.images_seen}, out / "meta.pt")
    print(f"wrote {args.n} samples to {out} (EMA at {loaded.images_seen} images; {describe(loaded.cfg.sampling)})")
    return 0
