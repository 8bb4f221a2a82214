"""Named model sizes, one row per preset (EDM2 style). `SiT-XL/2` = hidden 1152, depth 28, 16 heads.

Published sizes (DiT/SiT, 256×256 images as 32×32×4 SD-VAE latents, patch 2):
S 33M, B 130M, L 458M, XL 675M. The small presets train on a CPU in minutes.
"""
from __future__ import annotations

import re

from suite.errors import ConfigError

# name → (hidden_size, depth, num_heads)
_SIZES = {
    "XL": (1152, 28, 16),
    "L": (1024, 24, 16),
    "B": (768, 12, 12),
    "S": (384, 12, 6),
    # CPU-sized: demo, tests, scaling grids on built-in data.
    "Mini": (128, 8, 4),
    "Micro": (96, 6, 4),
    "Nano": (64, 4, 4),
}

PUBLISHED_PARAMS = {"SiT-S/2": 33.0e6, "SiT-B/2": 130.5e6, "SiT-L/2": 458.1e6, "SiT-XL/2": 675.1e6}


def preset_names() -> list[str]:
    return [f"SiT-{s}/{p}" for s in _SIZES for p in (2, 4, 8)]


def parse_preset(name: str) -> dict:
    """'SiT-XL/2' → dict(hidden_size=1152, depth=28, num_heads=16, patch_size=2)."""
    m = re.fullmatch(r"SiT-([A-Za-z]+)/(\d+)", name)
    if not m or m.group(1) not in _SIZES:
        raise ConfigError(f"model.preset: unknown preset {name!r}; allowed: SiT-{{{','.join(_SIZES)}}}/{{2,4,8}}")
    hidden, depth, heads = _SIZES[m.group(1)]
    return dict(hidden_size=hidden, depth=depth, num_heads=heads, patch_size=int(m.group(2)), mlp_ratio=4.0)


def default_layers(depth: int, student_frac: float = 0.3, teacher_frac: float = 0.7) -> tuple[int, int]:
    """Alignment blocks (1-indexed): l = round(0.3·depth), k = round(0.7·depth); SiT-XL → (8, 20)."""
    l = max(1, min(depth, int(round(student_frac * depth))))
    k = max(1, min(depth, int(round(teacher_frac * depth))))
    return l, k
