"""Image metrics from shared features: names, parsing, and the two backends.

Features of generated and reference images are extracted once per extractor; every metric of
that extractor reads them. Backend `torch-fidelity`: features from torch-fidelity's extractor
classes, KID/IS/precision-recall from torch-fidelity's own functions, FID from the suite's exact
Fréchet distance (frechet.py; equal to torch-fidelity's eigvals formula, tested, but an
(n, n) eigh instead of a 2048² non-symmetric eigvals when n < 2048), so numbers equal
`torch_fidelity.calculate_metrics` on the same images; backend
`clean-fid` with clean-fid's `frechet_distance` / `kernel_distance`, and its names carry a
`_cleanfid` suffix because clean-fid's resizing makes its Inception numbers incomparable with
ADM's (measuring.md §1).

Names (ARCHITECTURE.md): `fid2k_digits-classifier`, `kid500_inception`, `fd10k_dinov2`,
`fd2k_moving-shapes-classifier`, `fd2k_tones-classifier`, `fvd2k_i3d`, `fvd2k_videomae`,
`fidframes2k_inception` (frame-wise FID of video), `fad2k_clap-a`, `clapscore2k_clap-a`, `clipscore2k_clip`,
`precision2k_digits-classifier`, `isc50k_inception`, `sfid50k_inception`, `class_consistency2k`,
`fid2k_digits-classifier_cleanfid`, `caption_consistency2k_colour` / `caption_consistency2k_unseen_all`
(captioned built-ins: one per attribute and `all`, for seen and unseen combinations; caption_eval.py).
The sample count is always part of the name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from suite.errors import SuiteError

KINDS = ("fid", "sfid", "kid", "isc", "prc", "class_consistency", "caption_consistency", "fvd", "fad", "fidframes", "clapscore",
         "clipscore")
JUDGED_KINDS = ("caption_consistency",)  # sampled for captions and judged by the attribute judge: no extractor
SCORE_KINDS = ("clapscore", "clipscore")  # media–caption agreement: no reference statistics needed
FRECHET_KINDS = ("fid", "fvd", "fad", "fidframes")  # Fréchet distances of features (video: fvd, audio: fad, frames: fidframes)
ALIASES = {"is": "isc", "fd": "fid", "precision": "prc", "recall": "prc", "precision_recall": "prc", "pr": "prc",
           "fdframes": "fidframes", "fd_frames": "fidframes", "fid_frames": "fidframes", "clap_score": "clapscore",
           "clip_score": "clipscore"}
BACKENDS = ("torch-fidelity", "clean-fid")
_BACKEND_ALIASES = {"torch_fidelity": "torch-fidelity", "torchfidelity": "torch-fidelity", "cleanfid": "clean-fid", "clean_fid": "clean-fid"}
_FULL = re.compile(r"^(fidframes|fdframes|fid|sfid|fd|fvd|fad|kid|isc|precision|recall|clapscore|clipscore)(\d+k?)_([A-Za-z0-9.\-]+?)(_cleanfid)?$")
_CC = re.compile(r"^(class_consistency|caption_consistency)(\d+k?)$")


def count_label(n: int) -> str:
    """50000 → '50k', 2000 → '2k', 500 → '500', 1500 → '1500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def parse_count(s: str) -> int:
    return int(s[:-1]) * 1000 if s.endswith("k") else int(s)


def backend_name(b: str) -> str:
    b = _BACKEND_ALIASES.get(b, b)
    if b not in BACKENDS:
        raise SuiteError(f"eval.backends: unknown backend {b!r}; allowed: {', '.join(BACKENDS)}")
    return b


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # fid | sfid | kid | isc | prc | class_consistency | caption_consistency | fvd | fad | fidframes | clapscore | clipscore
    n: int  # generated samples (caption_consistency: per split, seen and unseen)
    extractor: str | None  # extractor kind as in eval.extractor (auto | inception | dinov2 | <name>); None: class / caption consistency
    backend: str = "torch-fidelity"


def parse_metric(spec: str, default_n: int, default_extractor: str, backends=("torch-fidelity",)) -> list[MetricSpec]:
    """A short kind (`fid`, with eval.n_samples/extractor/backends) or a full name (`fid2k_inception`)."""
    s = spec.strip()
    m = _FULL.match(s)
    if m:
        kind = ALIASES.get(m.group(1), m.group(1))
        if m.group(4) and kind not in ("fid", "kid"):
            raise SuiteError(f"eval.metrics: {spec!r}: clean-fid computes only fid and kid")
        return [MetricSpec(kind, parse_count(m.group(2)), m.group(3), "clean-fid" if m.group(4) else "torch-fidelity")]
    m = _CC.match(s)
    if m:
        return [MetricSpec(m.group(1), parse_count(m.group(2)), None)]
    kind = ALIASES.get(s, s)
    if kind not in KINDS:
        raise SuiteError(f"eval.metrics: unknown metric {spec!r}; allowed: {', '.join(KINDS)}, probe, or a full name like fid2k_inception")
    if kind in ("class_consistency", "caption_consistency"):
        return [MetricSpec(kind, default_n, None)]
    bs = [backend_name(b) for b in backends]
    if kind not in ("fid", "kid"):  # clean-fid has only these
        bs = ["torch-fidelity"]
    return [MetricSpec(kind, default_n, default_extractor, b) for b in bs]


def frechet_prefix(extractor_name: str | None) -> str:
    """`fid` for Inception-style image features; `fd` (Fréchet distance) for DINOv2 and the video /
    audio domain classifiers (`fd2k_moving-shapes-classifier`, `fd2k_tones-classifier`); `fvd` for
    registered video networks (`fvd2k_i3d`), `fad` for audio ones (`fad2k_clap-a`)."""
    from suite.data import MEDIA_DATASETS
    from suite.evaluation.registry import EXTRACTOR_MEDIA

    media = EXTRACTOR_MEDIA.get(extractor_name or "")
    if media in ("video", "audio"):
        return "fvd" if media == "video" else "fad"
    domain_media = {f"{d}-classifier" for d in MEDIA_DATASETS}
    return "fd" if extractor_name == "dinov2" or extractor_name in domain_media else "fid"


def metric_names(kind: str, n: int, extractor_name: str | None, backend: str = "torch-fidelity",
                 attributes: tuple[str, ...] = ()) -> list[str]:
    """The logged names for one spec (prc gives two; caption_consistency one per attribute and `all`,
    seen then unseen: `caption_consistency2k_colour`, …, `caption_consistency2k_unseen_all`)."""
    c = count_label(n)
    if kind == "class_consistency":
        return [f"class_consistency{c}"]
    if kind == "caption_consistency":
        return [f"caption_consistency{c}_{split}{a}" for split in ("", "unseen_") for a in (*attributes, "all")]
    suffix = "_cleanfid" if backend == "clean-fid" else ""
    if kind in ("fid", "fvd", "fad"):
        return [f"{frechet_prefix(extractor_name)}{c}_{extractor_name}{suffix}"]
    if kind == "fidframes":  # frame-wise: fidframes2k_inception, fdframes2k_dinov2
        return [f"{frechet_prefix(extractor_name)}frames{c}_{extractor_name}"]
    if kind == "prc":
        return [f"precision{c}_{extractor_name}{suffix}", f"recall{c}_{extractor_name}{suffix}"]
    return [f"{kind}{c}_{extractor_name}{suffix}"]


# ----------------------------------------------------------------------------- one metric from features
def _need_features(ref, kind: str):
    if ref.features is None:
        raise SuiteError(f"{kind}: the reference {ref.name} has statistics only, no features")
    return ref.features


def fidelity_metric(kind: str, gen: dict, ref, seed: int = 0) -> dict[str, float]:
    """torch-fidelity's functions on shared features. gen: {"features": (N, F), "logits": (N, K)}."""
    from torch_fidelity.metric_isc import isc_features_to_metric, KEY_METRIC_ISC_MEAN
    from torch_fidelity.metric_kid import kid_features_to_metric, KEY_METRIC_KID_MEAN
    from torch_fidelity.metric_prc import prc_features_to_metric, KEY_METRIC_PRECISION, KEY_METRIC_RECALL

    f1 = gen["features"].float()
    if kind == "fid":
        from suite.evaluation.frechet import frechet_distance_to_features

        return {"value": frechet_distance_to_features(f1.double().numpy(), ref.mu, ref.sigma)}
    if kind == "sfid":  # ADM's spatial Inception features (spatial.py)
        from suite.evaluation.frechet import frechet_distance_to_features

        if "spatial" not in gen:
            raise SuiteError("sfid: only the Inception extractor has spatial features (eval.extractor=inception)")
        if ref.spatial_mu is None:
            raise SuiteError(f"sfid: the reference {ref.name} has no spatial statistics")
        return {"value": frechet_distance_to_features(gen["spatial"].double().numpy(), ref.spatial_mu, ref.spatial_sigma)}
    if kind == "kid":
        f2 = _need_features(ref, kind).float()
        size = min(1000, f1.shape[0], f2.shape[0])
        out = kid_features_to_metric(f1, f2, kid_subset_size=size, rng_seed=seed, verbose=False)
        return {"value": out[KEY_METRIC_KID_MEAN]}
    if kind == "isc":
        if "logits" not in gen:
            raise SuiteError("isc: the extractor has no logits")
        return {"value": isc_features_to_metric(gen["logits"].float(), splits=min(10, gen["logits"].shape[0]), rng_seed=seed)[KEY_METRIC_ISC_MEAN]}
    if kind == "prc":
        f2 = _need_features(ref, kind).float()
        out = prc_features_to_metric(f1, f2, verbose=False, save_cpu_ram=max(f1.shape[0], f2.shape[0]) > 20_000)
        return {"precision": out[KEY_METRIC_PRECISION], "recall": out[KEY_METRIC_RECALL]}
    raise SuiteError(f"torch-fidelity backend has no metric {kind!r}")


def cleanfid_metric(kind: str, gen_features: torch.Tensor, ref_mu, ref_sigma, ref_features, seed: int = 0) -> float:
    """clean-fid's FID / KID on features (its KID draws from np.random: seeded, then restored)."""
    from cleanfid import fid as cfid

    f1 = gen_features.double().numpy()
    if kind == "fid":
        return float(cfid.frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), ref_mu, ref_sigma))
    if kind == "kid":
        if ref_features is None:
            raise SuiteError("kid: the reference has statistics only, no features")
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            return float(cfid.kernel_distance(f1, ref_features.double().numpy()))
        finally:
            np.random.set_state(state)
    raise SuiteError(f"clean-fid backend has no metric {kind!r} (it offers fid and kid)")


def class_consistency(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 agreement of the domain classifier with the labels the samples were generated for."""
    return float((logits.argmax(1) == labels.to(logits.device)).float().mean())


def compute_for_extractor(specs: list[MetricSpec], extractor_name: str, gen: dict, ref, labels=None,
                          seed: int = 0, cleanfid_side: tuple | None = None, rows_per_sample: int = 1) -> dict[str, float]:
    """All specs of one extractor. `gen` holds features/logits of at least max(n) samples
    (`rows_per_sample` rows each: the frames of a clip for frame-wise FID); `gen["text"]` the
    text embeddings of each sample's caption (CLAP score, CLIP score).

    `cleanfid_side` = (gen_features, ref_mu, ref_sigma, ref_features) when clean-fid computes
    its own features (Inception 'clean' mode); None: clean-fid reads the shared features.
    """
    out: dict[str, float] = {}
    for s in specs:
        rows = s.n * rows_per_sample
        g = {k: v[: (s.n if k == "text" else rows)] for k, v in gen.items()}
        if g["features"].shape[0] < rows:
            raise SuiteError(f"{s.kind}: {s.n} samples requested, {g['features'].shape[0] // rows_per_sample} generated")
        names = metric_names(s.kind, s.n, extractor_name, s.backend)
        if s.kind == "clapscore":
            from suite.evaluation.audio_features import clap_score

            if "text" not in g:
                raise SuiteError("clapscore needs the text embeddings of the samples' captions")
            out[names[0]] = clap_score(g["features"], g["text"])
        elif s.kind == "clipscore":
            from suite.evaluation.clip_score import clip_score

            if "text" not in g:
                raise SuiteError("clipscore needs the text embeddings of the samples' captions")
            out[names[0]] = clip_score(g["features"], g["text"])
        elif s.kind in FRECHET_KINDS and s.backend != "clean-fid":
            out[names[0]] = fidelity_metric("fid", g, ref, seed)["value"]
        elif s.kind == "class_consistency":
            if "logits" not in g or labels is None:
                raise SuiteError("class_consistency needs the domain classifier's logits and the sample labels")
            out[names[0]] = class_consistency(g["logits"], labels[: s.n])
        elif s.backend == "clean-fid":
            if cleanfid_side is not None:
                gf, mu, sigma, rf = cleanfid_side
                gf = gf[: s.n]
            else:
                gf, mu, sigma, rf = g["features"], ref.mu, ref.sigma, ref.features
            out[names[0]] = cleanfid_metric(s.kind, gf, mu, sigma, rf, seed)
        else:
            vals = fidelity_metric(s.kind, g, ref, seed)
            if s.kind == "prc":
                out[names[0]], out[names[1]] = vals["precision"], vals["recall"]
            else:
                out[names[0]] = vals["value"]
    return out
