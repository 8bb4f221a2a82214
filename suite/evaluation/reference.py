"""Reference statistics: features of real images, computed once per (source, extractor, n), cached.

Two sources:
- a split of the run's dataset (`digits` test split, …): features + logits + labels + μ, Σ;
- an ADM reference batch (`VIRTUAL_imagenet256_labeled.npz`: `arr_0` uint8 images (N, H, W, 3),
  `mu`, `sigma` Inception pool3 statistics, `mu_s`, `sigma_s` the spatial ones of sFID). Its
  published statistics are used as they are with the Inception extractor, so numbers sit beside
  published ones; features for KID and precision/recall (and for any other extractor, or sFID when
  the file has no `mu_s`) are computed from `arr_0`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from suite.data import media_identity
from suite.errors import MissingFileError, SuiteError
from suite.evaluation.cache import atomic_write, cache_root, entry_lock, read_provenance, stable_hash, write_provenance
from suite.evaluation.frechet import feature_stats


@dataclass
class Reference:
    """What metrics need of the real side. `features`/`logits` may be None (ADM stats only)."""

    name: str
    mu: np.ndarray  # (F,)
    sigma: np.ndarray  # (F, F)
    features: torch.Tensor | None = None  # (N, F)
    logits: torch.Tensor | None = None  # (N, K)
    labels: torch.Tensor | None = None  # (N,)
    provenance: dict = field(default_factory=dict)
    spatial_mu: np.ndarray | None = None  # (2023,) sFID statistics (Inception only; ADM's mu_s)
    spatial_sigma: np.ndarray | None = None  # (2023, 2023) (ADM's sigma_s)

    @property
    def n(self) -> int:
        return int(self.provenance.get("n", 0 if self.features is None else self.features.shape[0]))


def _save(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda tmp: np.savez(open(tmp, "wb"), **{k: v for k, v in arrays.items() if v is not None}))


def _load(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _tensor(a):
    return None if a is None else torch.from_numpy(np.asarray(a))


def dataset_reference(extractor, data_cfg, split: str = "test", n: int | None = None, seed: int = 0,
                      cache_dir=None) -> Reference:
    """Features of up to n images of a split (all of it if n is None or larger), cached."""
    key = {"dataset": media_identity(data_cfg), "split": split, "n": n, "seed": seed, "extractor": extractor.fingerprint}
    if getattr(extractor, "has_spatial", False):
        key["spatial"] = 1  # entries that also hold sFID statistics
    stem = f"{data_cfg.name}-{split}-{extractor.name}-{'all' if n is None else n}-{stable_hash(key)}"
    path = cache_root(cache_dir) / "reference" / f"{stem}.npz"
    with entry_lock(path):
        if not path.is_file():
            _fill_dataset_reference(path, extractor, data_cfg, split, n, seed, key)
    arrays = _load(path)
    prov = read_provenance(path.with_suffix(".json")) if path.with_suffix(".json").is_file() else {}
    return Reference(
        name=f"{data_cfg.name}-{split}", mu=arrays["mu"], sigma=arrays["sigma"], features=_tensor(arrays["features"]),
        logits=_tensor(arrays.get("logits")), labels=_tensor(arrays.get("labels")),
        provenance={**prov, "n": int(arrays["features"].shape[0]), "cache_file": str(path)},
        spatial_mu=arrays.get("mu_s"), spatial_sigma=arrays.get("sigma_s"),
    )


def _fill_dataset_reference(path: Path, extractor, data_cfg, split, n, seed, key) -> None:
    from suite.evaluation.images import load_split

    images, labels = load_split(data_cfg, split, n, seed)
    out = extractor.extract(images)
    mu, sigma = feature_stats(out["features"].double().numpy())
    arrays = {"features": out["features"].numpy(), "logits": out["logits"].numpy() if "logits" in out else None,
              "labels": labels.numpy(), "mu": mu, "sigma": sigma}
    if "spatial" in out:
        arrays["mu_s"], arrays["sigma_s"] = feature_stats(out["spatial"].double().numpy())
    prov = {"what": "reference features", "source": f"{data_cfg.name}:{split}", "n": int(images.shape[0]),
            "requested_n": n, "key": key, "extractor": extractor.name}
    write_provenance(path.with_suffix(".json"), prov)
    _save(path, arrays)  # last: its presence means the entry is complete


def load_adm_npz(path, with_images: bool = True) -> dict:
    """Read an ADM reference batch, checking its layout: arr_0 (N, H, W, 3) uint8, mu (F,), sigma (F, F).

    `with_images=False` skips the (large: 10k × 256² × 3) image array when only μ, Σ are needed.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(
            f"ADM reference batch not found: {p} (e.g. VIRTUAL_imagenet256_labeled.npz from openai/guided-diffusion's evaluations)"
        )
    wanted = ("arr_0", "mu", "sigma") if with_images else ("mu", "sigma")
    try:
        with np.load(p) as z:
            missing = [k for k in ("arr_0", "mu", "sigma") if k not in z.files]
            out = {k: z[k] for k in (*wanted, "mu_s", "sigma_s") if k in z.files}
    except Exception as e:
        raise SuiteError(f"cannot read ADM reference batch {p}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    if missing:
        raise SuiteError(f"{p}: not an ADM reference batch (missing {', '.join(missing)})")
    mu, sigma = out["mu"], out["sigma"]
    if "arr_0" in out and (out["arr_0"].ndim != 4 or out["arr_0"].shape[-1] != 3 or out["arr_0"].dtype != np.uint8):
        raise SuiteError(f"{p}: arr_0 must be uint8 (N, H, W, 3), got {out['arr_0'].dtype} {out['arr_0'].shape}")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise SuiteError(f"{p}: mu {mu.shape} and sigma {sigma.shape} do not match")
    return out


def adm_reference(extractor, path, cache_dir=None, need_features: bool = True, n: int | None = None,
                  need_spatial: bool = False) -> Reference:
    """ADM batch as a Reference. With the Inception extractor its μ, Σ are the published ones;
    features of `arr_0` (first n) are computed (and cached) when KID/precision-recall need them or
    when the extractor is not the ADM Inception."""
    z = load_adm_npz(path, with_images=False)
    use_published = bool(getattr(extractor, "adm_compatible", False))
    if use_published and z["mu"].shape[0] != 2048:
        raise SuiteError(f"{path}: mu has {z['mu'].shape[0]} dims; Inception pool3 has 2048")
    ref = Reference(name=f"adm:{Path(path).stem}", mu=z["mu"].astype(np.float64), sigma=z["sigma"].astype(np.float64),
                    provenance={"what": "ADM reference batch", "file": str(path), "published_stats": use_published})
    published_spatial = use_published and "mu_s" in z
    if published_spatial:
        ref.spatial_mu, ref.spatial_sigma = z["mu_s"].astype(np.float64), z["sigma_s"].astype(np.float64)
    if use_published and not need_features and (published_spatial or not need_spatial):
        return ref
    key = {"file": str(Path(path).resolve()), "size": Path(path).stat().st_size, "n": n, "extractor": extractor.fingerprint}
    if getattr(extractor, "has_spatial", False):
        key["spatial"] = 1  # entries that also hold sFID features
    cpath = cache_root(cache_dir) / "reference" / f"{Path(path).stem}-{extractor.name}-{stable_hash(key)}.npz"
    with entry_lock(cpath):
        if not cpath.is_file():
            images = torch.from_numpy(load_adm_npz(path)["arr_0"][:n]).permute(0, 3, 1, 2)  # (N, 3, H, W) uint8
            out = extractor.extract(images)
            write_provenance(cpath.with_suffix(".json"), {"what": "ADM reference features", "key": key, "n": int(images.shape[0])})
            _save(cpath, {"features": out["features"].numpy(), "logits": out["logits"].numpy() if "logits" in out else None,
                          "spatial": out["spatial"].numpy() if "spatial" in out else None})
    arrays = _load(cpath)
    ref.features, ref.logits = _tensor(arrays["features"]), _tensor(arrays.get("logits"))
    if not use_published:
        ref.mu, ref.sigma = feature_stats(arrays["features"].astype(np.float64))
    if "spatial" in arrays and not published_spatial:
        ref.spatial_mu, ref.spatial_sigma = feature_stats(arrays["spatial"].astype(np.float64))
    ref.provenance.update(n=int(ref.features.shape[0]), cache_file=str(cpath))
    return ref
