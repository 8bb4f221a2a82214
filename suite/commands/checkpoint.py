"""`suite checkpoint import --from {selfflow-official,repa,sit,dit} PATH --out RUN_DIR` (logic: suite.interop)."""
from __future__ import annotations


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="turn a published checkpoint into a suite run directory")
    from suite.interop.checkpoints import ALL_SOURCES

    imp.add_argument("--from", dest="source", required=True, choices=ALL_SOURCES)
    imp.add_argument("path", help="the published .pt / .pth / .safetensors file")
    imp.add_argument("--out", required=True, help="run directory to write")
    imp.add_argument("--in-channels", type=int, default=4, help="latent channels (selfflow-official: 4, SD-VAE)")
    imp.add_argument("--num-heads", type=int, default=None, help="needed only for non-published widths")
    imp.add_argument("--vae", default=None, help="local AutoencoderKL directory recorded as data.vae (to decode samples)")
    imp.add_argument("--force", action="store_true", help="overwrite a run directory that exists")


def run(args) -> int:
    from suite.interop.checkpoints import SOURCES, import_checkpoint

    imp = import_checkpoint(args.path, args.source, args.out, args.in_channels, args.num_heads, args.vae, args.force)
    d = imp.dims
    print(f"imported {SOURCES[args.source].note}: depth {d['depth']}, hidden {d['hidden_size']}, patch {d['patch_size']}, "
          f"{imp.num_classes} classes, data {tuple(imp.data_shape)}"
          + (f"; dropped {len(imp.dropped)} training-head tensors" if imp.dropped else "")
          + f" → {args.out} (use `suite sample {args.out}` / `suite eval {args.out}`)")
    return 0
