"""`suite encoder train|list`: train a local encoder for REPA, list the registered encoders."""
from __future__ import annotations

import argparse
from dataclasses import fields


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from baselines.encoders.train import DATASETS, EncoderTrainConfig

    sub = parser.add_subparsers(dest="encoder_command", required=True)
    tr = sub.add_parser("train", help="train a small ViT encoder on a built-in dataset: images, video or audio (REPA's offline encoder)")
    defaults = EncoderTrainConfig()
    tr.add_argument("--dataset", choices=list(DATASETS), default=defaults.dataset,
                    help="digits, shapes (images), moving-shapes (video), tones (audio)")
    tr.add_argument("--kind", choices=["classifier", "ssl"], default=defaults.kind,
                    help="classifier: supervised; ssl: SimCLR, no labels")
    tr.add_argument("--out", required=True, help="output directory (encoder.json + encoder.pt)")
    for f in fields(EncoderTrainConfig):
        if f.name in ("dataset", "kind"):
            continue
        tr.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name))
    sub.add_parser("list", help="list the registered encoder names")


def run(args: argparse.Namespace) -> int:
    if args.encoder_command == "list":
        from baselines.encoders import available_encoders

        print("\n".join(available_encoders()))
        return 0
    from baselines.encoders.train import EncoderTrainConfig, train_encoder

    cfg = EncoderTrainConfig(**{f.name: getattr(args, f.name) for f in fields(EncoderTrainConfig)})
    train_encoder(cfg, args.out)
    print(f"encoder written to {args.out}: use method.encoders=[{{name: local, path: {args.out}}}]")
    return 0
