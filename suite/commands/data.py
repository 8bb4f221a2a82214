"""`suite data encode --folder DIR --vae PATH --out DIR` (images, video or audio → latent shards)
and `suite data show NAME`."""
from __future__ import annotations


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", required=True)
    e = sub.add_parser("encode", help="precompute VAE latents of an image, video or audio folder (REPA-style shards)")
    e.add_argument("--folder", required=True, help="root/<class>/<file>: images, videos (GIF/WebP/MP4/WebM/MOV) or audio (WAV/FLAC/OGG)")
    e.add_argument("--vae", required=True, help="local diffusers VAE directory: AutoencoderKL (images), "
                                                "AutoencoderKLWan (video), AutoencoderOobleck (audio)")
    e.add_argument("--vae-kind", choices=["auto", "image", "video", "audio"], default="auto",
                   help="auto: the VAE directory's config.json _class_name decides")
    e.add_argument("--out", required=True)
    e.add_argument("--image-size", type=int, default=256, help="images and video frames: side after centre crop")
    e.add_argument("--frames", type=int, default=17, help="video: frames per clip (WAN: 1 + 4k)")
    e.add_argument("--audio-length", type=int, default=131072, help="audio: samples per clip at the VAE's rate (a multiple of its hop, 2048)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--shard-size", type=int, default=4096)
    e.add_argument("--device", default="cpu")
    s = sub.add_parser("show", help="write a grid of a dataset's images")
    s.add_argument("name", help="digits | shapes | moving-shapes (GIF) | tones (WAV + spectrogram)")
    s.add_argument("--out", default="data-grid.png")


def run(args) -> int:
    from suite.config import DataConfig
    from suite.data import build_dataset

    if args.data_command == "encode":
        from suite.data.latents import encode_dataset, folder_dataset, load_vae
        from suite.data.vae import vae_modality

        vae = load_vae(args.vae, args.device, args.vae_kind)
        modality = vae_modality(vae)
        ds = folder_dataset(vae, args.folder, image_size=args.image_size, frames=args.frames, audio_length=args.audio_length)
        n = encode_dataset(ds, vae, args.out, shard_size=args.shard_size, batch_size=args.batch_size, device=args.device)
        print(f"encoded {n} {'images' if modality == 'image' else modality + ' clips'} with {type(vae).__name__} into {args.out}: "
              f"train with data.name=latents data.root={args.out} data.vae={args.vae}")
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
