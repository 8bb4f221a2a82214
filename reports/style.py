"""The one place that names and colours methods, so every table and figure agrees.

Baselines and Self-Flow have fixed names and colours; any other method key (an ablation preset)
is shown by its own name with a colour chosen from its name alone, so it is the same in every
report whatever else the report contains.
"""
from __future__ import annotations

import zlib

METHOD_LABELS = {
    "vanilla": "Vanilla FM",
    "repa": "REPA",
    "sra": "SRA",
    "selfflow": "Self-Flow",
}
METHOD_COLORS = {
    "vanilla": "#7f7f7f",
    "repa": "#1f77b4",
    "sra": "#2ca02c",
    "selfflow": "#d62728",
}
# Colours for ablations: none of the four above, distinguishable on white.
_EXTRA_COLORS = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                 "#393b79", "#ad494a", "#637939", "#7b4173"]
METHOD_ORDER = ["vanilla", "repa", "sra", "selfflow"]

SELFFLOW = "selfflow"


def method_label(key: str) -> str:
    """Display name of a method key (ablations keep their preset name)."""
    return METHOD_LABELS.get(key, key)


def method_color(key: str) -> str:
    """Colour of a method key; stable across reports (hash of the name for ablations)."""
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    return _EXTRA_COLORS[zlib.crc32(key.encode()) % len(_EXTRA_COLORS)]


def sort_methods(keys) -> list[str]:
    """Baselines first in a fixed order, then Self-Flow, then ablations alphabetically."""
    keys = list(dict.fromkeys(keys))
    known = [k for k in METHOD_ORDER if k in keys]
    return known + sorted(k for k in keys if k not in METHOD_ORDER)
