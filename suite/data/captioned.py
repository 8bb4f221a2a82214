"""Captions of real media files, for captioned latent shards (`suite data encode --text-encoder`).

A caption comes from a text file beside each media file (`cat/0001.png` + `cat/0001.txt`) or from
a manifest (`--captions manifest.jsonl|.csv`, columns `file` and `caption`; `file` relative to the
folder, or absolute). Every media file must have one: a missing caption is one line naming the
file and where it was looked for. `CaptionedFolder` wraps a folder dataset (images, video or
audio: anything with `files` = [(path, class)]) so each item also carries its `caption`.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from torch.utils.data import Dataset

from suite.errors import ConfigError, MissingFileError


def read_manifest(path: str | Path) -> dict[str, str]:
    """manifest.jsonl (one {"file", "caption"} object a line) or manifest.csv (header file,caption) → {file: caption}."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"--captions: manifest not found: {p} (a .jsonl or .csv with columns file, caption)")
    if p.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise ConfigError(f"--captions: {p} line {n} is not JSON") from None
    elif p.suffix.lower() == ".csv":
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ConfigError(f"--captions: {p} must be a .jsonl or .csv manifest (columns file, caption)")
    out = {}
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not isinstance(r.get("file"), str) or not isinstance(r.get("caption"), str):
            raise ConfigError(f"--captions: {p} row {n} needs the columns file and caption (strings)")
        out[r["file"]] = r["caption"]
    return out


def file_captions(folder: str | Path, files: list[Path], manifest: str | Path | None = None) -> list[str]:
    """One caption per media file, in order: from the manifest when given, else from `<file>.txt` beside it."""
    root = Path(folder).expanduser()
    table = read_manifest(manifest) if manifest is not None else None
    captions = []
    for f in map(Path, files):
        if table is not None:
            rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
            caption = table.get(rel, table.get(str(f)))
            if caption is None:
                raise MissingFileError(f"--captions: no caption for {rel} in {manifest} (its `file` column holds paths relative to {root})")
        else:
            txt = f.with_suffix(".txt")
            if not txt.is_file():
                raise MissingFileError(f"caption not found: {txt} (a caption file beside each media file, or --captions manifest)")
            caption = txt.read_text().strip()
        captions.append(caption)
    return captions


class CaptionedFolder(Dataset):
    """A media folder dataset whose items also carry `caption` (a string)."""

    def __init__(self, folder_dataset, captions: list[str]):
        self.dataset, self.captions = folder_dataset, list(captions)
        if len(self.captions) != len(folder_dataset):
            raise ValueError(f"{len(self.captions)} captions for {len(folder_dataset)} files")

    def __getattr__(self, k):
        if k in ("dataset", "captions"):
            raise AttributeError(k)
        return getattr(self.dataset, k)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "caption": self.captions[i]}


def captioned_folder(folder_dataset, folder: str | Path, manifest: str | Path | None = None) -> CaptionedFolder:
    return CaptionedFolder(folder_dataset, file_captions(folder, [f for f, _ in folder_dataset.files], manifest))
