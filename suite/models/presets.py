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


# FLUX.2-style MM-DiT (selfflow-notes.md §2.3): name → (hidden_size, depth, num_heads, double-stream blocks).
# The paper's scaling grid at hidden 1152: depth 8 / 14 / 21 / 28 ≈ 290M / 420M / 625M / 1B; only
# D21 = 7 double + 14 single is published. A double block holds 32·D² weights (two streams of
# 4·D² attention + 12·D² SwiGLU), a single block 16·D², the shared modulations 17·D²; the other
# splits are the double counts that land nearest the paper's totals: D8 4+4 (280M), D14 4+10 (408M),
# D21 7+14 (620M), D28 17+11 (982M) (SD-VAE latents, patch 2). tests/test_mmdit.py checks them within 5 %.
_MMDIT_SIZES = {
    "D8": (1152, 8, 16, 4),
    "D14": (1152, 14, 16, 4),
    "D21": (1152, 21, 16, 7),
    "D28": (1152, 28, 16, 17),
    # CPU-sized: tests and the text demo.
    "Mini": (128, 8, 4, 3),
    "Micro": (96, 6, 4, 2),
    "Nano": (64, 4, 4, 2),
}

PUBLISHED_MMDIT_PARAMS = {"MMDiT-D8/2": 290e6, "MMDiT-D14/2": 420e6, "MMDiT-D21/2": 625e6, "MMDiT-D28/2": 1.0e9}


def preset_names() -> list[str]:
    return [f"SiT-{s}/{p}" for s in _SIZES for p in (2, 4, 8)] + [f"MMDiT-{s}/{p}" for s in _MMDIT_SIZES for p in (1, 2, 4)]


def parse_preset(name: str) -> dict:
    """'SiT-XL/2' → dict(hidden_size=1152, depth=28, num_heads=16, patch_size=2);
    'MMDiT-D21/2' → the same keys plus double_blocks=7."""
    m = re.fullmatch(r"MMDiT-([A-Za-z0-9]+)/(\d+)", name)
    if m:
        if m.group(1) not in _MMDIT_SIZES:
            raise ConfigError(f"model.preset: unknown preset {name!r}; allowed: MMDiT-{{{','.join(_MMDIT_SIZES)}}}/{{1,2,4}}")
        hidden, depth, heads, double = _MMDIT_SIZES[m.group(1)]
        return dict(hidden_size=hidden, depth=depth, num_heads=heads, patch_size=int(m.group(2)), mlp_ratio=4.0,
                    double_blocks=double)
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
