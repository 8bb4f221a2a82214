"""ADM-evaluator sample batches: `arr_0` (N, H, W, 3) uint8 (and `arr_1` labels), as guided-diffusion's
sample scripts write them and its `evaluator.py` reads them.

Written as a stream (one chunk of images in memory at a time: 50k × 256² × 3 is 9.8 GB), and read
back in chunks, so `suite sample --format npz` output can be evaluated by the suite itself
(`Evaluator.evaluate_images`) or by the TensorFlow reference evaluator.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from suite.errors import SuiteError


def _npy_header(f, shape: tuple[int, ...], dtype) -> None:
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})


def write_adm_npz(path, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int, meta: dict | None = None) -> Path:
    """Stream batches of (pixels (b, 3, H, W) uint8, labels (b,)) into `path` (.npz) and `meta` into
    `<path>.json` beside it. Atomic: the .npz appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    labels, written = [], 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        f = None
        for pixels, y in batches:
            if pixels.dtype != torch.uint8 or pixels.dim() != 4 or pixels.shape[1] != 3:
                raise SuiteError(f"npz export needs (b, 3, H, W) uint8 pixels, got {pixels.dtype} {tuple(pixels.shape)}")
            if f is None:
                f = zf.open("arr_0.npy", "w", force_zip64=True)
                _npy_header(f, (n, pixels.shape[2], pixels.shape[3], 3), np.uint8)
            f.write(pixels.permute(0, 2, 3, 1).contiguous().numpy().tobytes())  # (b, H, W, 3)
            labels.append(y.cpu().long())
            written += pixels.shape[0]
        if f is not None:
            f.close()
        if written != n:
            raise SuiteError(f"npz export: {written} images written, {n} announced")
        with zf.open("arr_1.npy", "w") as g:
            np.lib.format.write_array(g, torch.cat(labels).numpy().astype(np.int64))
    os.replace(tmp, path)
    if meta is not None:
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_adm_batches(path, batch_size: int = 250, n: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(pixels (b, 3, H, W) uint8, labels (b,)) chunks of an ADM npz (`arr_1` labels, or zeros if
    absent), read chunk by chunk from the archive: memory holds one chunk, not the 50k images."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"sample batch not found: {p}")
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile:
        raise SuiteError(f"{p}: not an .npz archive") from None
    with zf:
        names = set(zf.namelist())
        if "arr_0.npy" not in names:
            raise SuiteError(f"{p}: no arr_0 (not an ADM sample batch)")
        labels = None
        if "arr_1.npy" in names:
            with zf.open("arr_1.npy") as g:
                labels = np.lib.format.read_array(g).astype(np.int64)
        with zf.open("arr_0.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8 or fortran:
                raise SuiteError(f"{p}: arr_0 must be uint8 (N, H, W, 3), got {dtype} {shape}")
            total = shape[0] if n is None else min(n, shape[0])
            labels = labels if labels is not None else np.zeros(shape[0], dtype=np.int64)
            per_image = shape[1] * shape[2] * 3
            for s in range(0, total, batch_size):
                b = min(batch_size, total - s)
                chunk = np.frombuffer(f.read(b * per_image), dtype=np.uint8).reshape(b, shape[1], shape[2], 3)
                yield torch.from_numpy(chunk.copy()).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels[s:s + b])
