"""Write synthetic latent shards in the `data.name=latents` format (suite.data.datasets), for speed
benchmarks without ImageNet or a VAE: N(0, 1) latents (4, 32, 32) as SD-VAE gives for 256×256,
uniform labels, random uint8 pixels (3, 256, 256) for external encoders. Timing only: nothing
learnable, no image metrics (no VAE).

    python scripts/make_synthetic_latents.py OUT_DIR [--n 1024] [--classes 1000] [--size 32] [--pixels 256]
"""
import argparse
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--size", type=int, default=32, help="latent side (256 px / 8)")
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--pixels", type=int, default=256, help="side of the stored raw images")
    a = p.parse_args()
    g = torch.Generator().manual_seed(0)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"latents": torch.randn(a.n, a.channels, a.size, a.size, generator=g),
            "labels": torch.randint(0, a.classes, (a.n,), generator=g),
            "pixels": torch.randint(0, 256, (a.n, 3, a.pixels, a.pixels), generator=g, dtype=torch.uint8),
            "meta": {"num_classes": a.classes, "scaling_factor": 0.18215, "synthetic": True}}
    torch.save(data, out / "shard-00000.pt")
    print(f"{a.n} synthetic latents {tuple(data['latents'].shape[1:])} in {out}")


if __name__ == "__main__":
    main()
