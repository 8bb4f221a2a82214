"""`suite sample RUN_DIR --n N --out DIR [--format png|npz]`: samples from a run's EMA model.

png: one file per sample and a grid (latent runs decoded through data.vae). npz: an ADM-evaluator
batch (suite.evaluation.npz_batches) of exactly the samples `suite eval --n N` sees with
eval.seed = --seed, settings recorded beside it.

`--caption TEXT` (repeatable; png / gif / wav): runs on a captioned built-in (shapes-text, moving-shapes-text,
tones-text) tokenize it over its vocabulary;
runs trained on caption embeddings (captioned latent shards, `model.text_dim` > 0) embed it with
the text encoder their shards were written with — same name, max_length and layers, as the
checkpoint (or else the shards' meta) records — read from `--text-weights DIR` or the recorded
directory if it still holds the model (docs/TEXT_TO_X.md).
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
                   help="text runs (a captioned built-in, or captioned latent shards): a caption to sample for, repeatable; "
                        "the n samples cycle through them")
    p.add_argument("--text-weights", default=None,
                   help="runs on captioned shards: the directory of the text encoder the shards were embedded with "
                        "(default: the directory recorded with the run, if it still exists)")


def run(args) -> int:
    from suite.commands.run_loading import load_run
    from suite.errors import SuiteError

    if args.n < 1:
        raise SuiteError(f"--n must be at least 1, got {args.n}")
    if args.caption and args.format == "npz":
        raise SuiteError("--caption: only with --format png (npz batches sample what `suite eval` samples)")
    if args.text_weights and not args.caption:
        raise SuiteError("--text-weights: only with --caption (the text encoder that embeds the captions)")
    loaded = load_run(args.run_dir, args.checkpoint, args.overrides, device=args.device)
    return _npz(args, loaded) if args.format == "npz" else _png(args, loaded)


def _png(args, loaded) -> int:
    import torch
    from torchvision.utils import save_image

    from suite.sampling import describe, sample_images

    conditions = _caption_conditions(args, loaded) if args.caption else None
    latents = loaded.cfg.data.name == "latents"
    imgs, labels = sample_images(loaded.ema, args.n, loaded.cfg.sampling, loaded.device, seed=args.seed, labels=conditions,
                                 progress=True, clamp=not latents)
    from suite.data import media_decoder

    decoder = media_decoder(loaded.cfg.data)  # VAE latents (the shards' normalisation) / spectrograms → media
    if decoder is not None:
        imgs = decoder.to_pixels(imgs).clamp(-1, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if imgs.dim() == 4:
        for i, (img, y) in enumerate(zip(imgs, labels)):
            tag = f"caption{i % len(args.caption)}" if args.caption else f"class{int(y)}"
            save_image((img + 1) / 2, out / f"{i:06d}_{tag}.png")
        save_image((imgs[:64] + 1) / 2, out / "grid.png", nrow=8)
    else:  # video → GIF, audio → WAV + spectrogram, one per sample and one of the first 64
        from suite.media import write_each

        tags = [f"caption{i % len(args.caption)}" for i in range(args.n)] if args.caption else None
        write_each(imgs, labels, out, loaded.cfg.data, tags)
    torch.save({"labels": labels, **({"captions": list(args.caption)} if args.caption else {}), "sampling": describe(loaded.cfg.sampling), "images_seen": loaded.images_seen}, out / "meta.pt")
    print(f"wrote {args.n} samples to {out} (EMA at {loaded.images_seen} images; {describe(loaded.cfg.sampling)})")
    return 0


def _caption_conditions(args, loaded):
    """The --caption list as the run's conditions, cycled over the n samples: caption embeddings
    (n, L, E) for runs on captioned shards, else token ids (n, L) over the built-in vocabulary."""
    import torch

    from suite.errors import SuiteError

    order = torch.arange(args.n) % len(args.caption)  # (n,)
    if int(getattr(loaded.ema, "text_dim", 0) or 0) > 0:
        from suite.text import load_recorded_text_encoder

        encoder = load_recorded_text_encoder(_text_encoder_record(loaded), args.text_weights, loaded.device)
        embeddings, _ = encoder.encode(args.caption)  # (k, L, E), padding exactly zero (the null token)
        return embeddings.cpu()[order]  # (n, L, E)
    from suite.data import condition_kind

    if condition_kind(loaded.cfg.data) != "text":
        raise SuiteError(f"--caption: run {loaded.run_dir} is class-conditional (data {loaded.cfg.data.name!r}); "
                         "captions need a text run (shapes-text, moving-shapes-text, tones-text, or captioned latent shards)")
    if args.text_weights:
        raise SuiteError("--text-weights: this run's captions are token ids over the built-in vocabulary, not a text encoder's embeddings")
    from suite.data.caption_schemes import caption_scheme

    scheme = caption_scheme(loaded.cfg.data.name)  # the run's built-in vocabulary
    return torch.stack([scheme.tokenize(c) for c in args.caption])[order]  # (n, L)


def _text_encoder_record(loaded) -> dict:
    """How the run's training captions were embedded: as its checkpoint records it, else as its shards' meta does."""
    from suite.data.datasets import read_shard_meta
    from suite.data.shard_captions import text_encoder_record
    from suite.errors import SuiteError

    record = (loaded.model_spec or {}).get("text_encoder")
    data = loaded.cfg.data
    if record is None and data.name == "latents":
        record = text_encoder_record(read_shard_meta(data.root))
    if record is None:
        raise SuiteError(f"--caption: run {loaded.run_dir} takes caption embeddings (model.text_dim={loaded.ema.text_dim}), but "
                         f"neither its checkpoint nor data.root ({data.root}) records the text encoder that made them; "
                         "point at its captioned shards with --set data.root=DIR")
    return record


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
