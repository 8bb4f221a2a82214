"""`suite data encode --folder DIR --vae PATH --out DIR` and `suite data show NAME`."""
from __future__ import annotations


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", required=True)
    e = sub.add_parser("encode", help="precompute VAE latents of an image folder (REPA-style shards)")
    e.add_argument("--folder", required=True, help="root/<class>/<image>")
    e.add_argument("--vae", required=True, help="local diffusers AutoencoderKL directory")
    e.add_argument("--out", required=True)
    e.add_argument("--image-size", type=int, default=256)
    e.add_argument("--device", default="cpu")
    s = sub.add_parser("show", help="write a grid of a dataset's images")
    s.add_argument("name", help="digits | shapes | moving-shapes (GIF) | tones (WAV + spectrogram)")
    s.add_argument("--out", default="data-grid.png")


def run(args) -> int:
    from suite.config import DataConfig
    from suite.data import build_dataset

    if args.data_command == "encode":
        from suite.data.latents import encode_dataset, load_vae

        vae = load_vae(args.vae, args.device)
        ds = build_dataset(DataConfig(name="folder", root=args.folder, image_size=args.image_size, test_fraction=0), "all")
        n = encode_dataset(ds, vae, args.out, device=args.device)
        print(f"encoded {n} images into {args.out}")
        return 0
    import torch
    from torchvision.utils import save_image

    ds = build_dataset(DataConfig(name=args.name), "train")
    imgs = torch.stack([ds[i]["pixels"] for i in range(64)])
    if imgs.dim() != 4:
        from suite.media import show_dataset

        print("wrote " + ", ".join(map(str, show_dataset(ds, args.out))))
        return 0
    save_image((imgs + 1) / 2, args.out, nrow=8)
    print(f"wrote {args.out}")
    return 0
