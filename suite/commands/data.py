"""`suite data encode --folder DIR --vae PATH --out DIR` (images, video or audio → latent shards;
with `--text-encoder NAME --text-weights DIR`, captioned shards: docs/TEXT_TO_X.md) and `suite data show NAME`."""
from __future__ import annotations


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
    s.add_argument("--out", default="data-grid.png")


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
