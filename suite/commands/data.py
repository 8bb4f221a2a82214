"""`suite data encode --folder DIR --vae PATH --out DIR` (images, video or audio → latent shards;
with `--text-encoder NAME --text-weights DIR`, captioned shards: docs/TEXT_TO_X.md) and `suite data show NAME`."""
from __future__ import annotations

import os
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")  # `data show` image grids (Pillow writes each)


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", required=True)
    e = sub.add_parser("encode", help="precompute VAE latents of an image, video or audio folder (REPA-style shards)")
    e.add_argument("--folder", required=True, help="root/<class>/<file>: images, videos (GIF/WebP/MP4/WebM/MOV) or audio (WAV/FLAC/OGG); "
                                                   "with --text-encoder also root/<file> (no class folders: class 0)")
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
    e.add_argument("--text-encoder", default=None, help="captioned shards: t5 | clip | qwen3 (suite.text); captions from x.txt beside "
                                                        "each media file x.png, or --captions")
    e.add_argument("--text-weights", default=None, help="local transformers directory of the text encoder (model + tokenizer); "
                                                        "unset: its usual repo in the pre-filled Hugging Face cache")
    e.add_argument("--captions", default=None, help="manifest.jsonl or .csv with columns file (relative to --folder), caption")
    e.add_argument("--text-max-length", type=int, default=None, help="tokens per caption (default: the encoder's: t5 256, clip 77, qwen3 512)")
    e.add_argument("--text-layers", default="", help="comma-separated hidden-state indices concatenated along D (e.g. 9,18,27); "
                                                     "empty: the last hidden state")
    s = sub.add_parser("show", help="write a grid of a dataset's images")
    s.add_argument("name", help="digits | shapes | shapes-text | moving-shapes(-text) (GIF) | tones(-text) (WAV + spectrogram)")
    s.add_argument("--out", default="data-grid.png",
                   help=f"images: a file ending in {', '.join(IMAGE_EXTENSIONS)}; video / audio: its extension becomes .gif / "
                        ".wav (+ .spectrogram.png, .captions.txt); an existing directory (or a path ending in /): NAME.<ext> inside it")


def run(args) -> int:
    from suite.config import DataConfig
    from suite.data import build_dataset

    if args.data_command == "encode":
        from suite.data.latents import encode_dataset, folder_dataset, load_vae
        from suite.data.vae import vae_modality

        from suite.errors import ConfigError

        if (args.captions or args.text_weights) and not args.text_encoder:
            raise ConfigError("--captions / --text-weights: captioned shards need --text-encoder (t5 | clip | qwen3)")
        try:
            layers = tuple(int(v) for v in args.text_layers.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--text-layers: expected comma-separated integers, got {args.text_layers!r}") from None
        vae = load_vae(args.vae, args.device, args.vae_kind)
        modality = vae_modality(vae)
        ds = folder_dataset(vae, args.folder, image_size=args.image_size, frames=args.frames, audio_length=args.audio_length,
                            flat=bool(args.text_encoder))  # captioned: root/x.png + root/x.txt works too (one class)
        text_encoder = None
        if args.text_encoder:
            from suite.data.captioned import captioned_folder
            from suite.text import load_text_encoder

            ds = captioned_folder(ds, args.folder, args.captions)  # every file's caption, before any weights load
            text_encoder = load_text_encoder(args.text_encoder, args.text_weights, args.text_max_length, layers, args.device,
                                             key="--text-weights")
        n = encode_dataset(ds, vae, args.out, shard_size=args.shard_size, batch_size=args.batch_size, device=args.device,
                           text_encoder=text_encoder)
        what = f"{'images' if modality == 'image' else modality + ' clips'}"
        train = f"data.name=latents data.root={args.out} data.vae={args.vae}"
        if text_encoder is not None:
            what += f" and their captions ({text_encoder.name}, {text_encoder.dim}-dim)"
            train += f" model.backbone=mmdit model.text_dim={text_encoder.dim}"
        print(f"encoded {n} {what} with {type(vae).__name__} into {args.out}: train with {train}")
        return 0
    return _show(args.name, args.out, build_dataset(DataConfig(name=args.name), "train"))


def _show(name: str, out: str, ds) -> int:
    """`data show`: the first 64 examples as an image grid (the format --out's extension names), or as
    GIF / WAV + spectrogram clips. Everything is rendered before anything is written; a bad --out is one line."""
    import io

    import torch
    from torchvision.utils import save_image

    from suite.errors import ConfigError, SuiteError

    p = Path(out).expanduser()
    into_dir = p.is_dir() or out.endswith(("/", os.sep))  # an existing directory, or one the user marked as such
    folder = p if into_dir else p.parent
    nearest = next(a for a in (folder, *folder.parents) if a.exists() or a == a.parent)  # the deepest part that exists
    if nearest.exists() and not nearest.is_dir():
        raise ConfigError(f"--out {out}: {nearest} is a file, not a directory")
    imgs = torch.stack([ds[i]["pixels"] for i in range(min(64, len(ds)))])
    try:
        if imgs.dim() != 4:  # video / audio: the file names are the stem's, the extensions the media's
            from suite.media import show_dataset

            paths = show_dataset(ds, folder, name if into_dir else p.stem)
            print("wrote " + ", ".join(map(str, paths)))
            return 0
        target = folder / f"{name}.png" if into_dir else p
        if target.suffix.lower() not in IMAGE_EXTENSIONS:
            what = f"unknown image extension {target.suffix!r}" if target.suffix else "no image extension"
            raise ConfigError(f"--out {out}: {what}; give a file ending in {', '.join(IMAGE_EXTENSIONS)} "
                              f"or an existing directory (writes {name}.png inside it)")
        from PIL import Image

        buf = io.BytesIO()
        save_image((imgs + 1) / 2, buf, format=Image.registered_extensions()[target.suffix.lower()], nrow=8)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buf.getvalue())
    except OSError as e:
        why = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        raise SuiteError(f"--out {out}: cannot write there ({why})") from None
    print(f"wrote {target}")
    return 0
