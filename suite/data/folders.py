"""Which media files a folder holds, and their classes: the one listing every folder dataset uses
(images, video, audio).

Layouts: `root/<class>/<file>` (one sub-folder per class, indexed in sorted order), or — where the
caller allows it (`flat`: captioned folders for `suite data encode --text-encoder`, where the
caption is the condition) — `root/<file>` with every file in one class, index 0.
"""
from __future__ import annotations

from pathlib import Path

from suite.errors import ConfigError, MissingFileError


def class_files(root: str, exts: tuple[str, ...], what: str, flat: bool = False,
                key: str | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, class index)]) of the media files with one of `exts` under `root`."""
    prefix = f"{key}: " if key else ""
    r = Path(root).expanduser()
    if not r.is_dir():
        raise MissingFileError(f"{prefix}{what} folder not found: {root}")
    classes = sorted(p.name for p in r.iterdir() if p.is_dir())
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((r / name).iterdir()) if f.suffix.lower() in exts]
    if flat:
        top = sorted(f for f in r.iterdir() if f.is_file() and f.suffix.lower() in exts)
        if top and files:
            raise ConfigError(f"{prefix}{root} holds {what} files both at its top level and in sub-folders; use one layout: "
                              f"{root}/<file> (one class) or {root}/<class>/<file>")
        if top:
            return [r.name], [(f, 0) for f in top]
    if not files:
        layout = f"{root}/<class>/<file>" + (f" or {root}/<file>" if flat else "")
        raise MissingFileError(f"{prefix}no {what} files under {root} (expected {layout} with one of {', '.join(exts)})")
    return classes, files
