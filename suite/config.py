"""Typed, strict run configuration (lingua-style nested dataclasses).

A run is fully described by one `RunConfig`: YAML files merged in order, then `--set key=value`
overrides, then validated field by field. An unknown key or a wrong type fails before anything
starts, with one line naming the key and what is allowed. The resolved config is saved beside
the run (`config.yaml`) and logged to MLflow.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from suite.errors import ConfigError, MissingFileError
from suite.flow import TimeSamplerConfig

BUILTIN_CONFIG_DIR = Path(__file__).parent / "configs"


# ----------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    name: str = "digits"  # a registered dataset: digits | shapes | moving-shapes (video) | tones (audio) | shapes-text | moving-shapes-text | tones-text (captioned) | folder | latents | plugins' own
    root: Optional[str] = None  # folder / latent shards directory
    image_size: int = 16  # built-in data are rendered/upscaled to this size (moving-shapes: frame size)
    num_images: int = 2000  # built-in data (but digits): how many to generate
    num_classes: int = 10  # shapes, moving-shapes, tones: how many classes (folder/latents: read from data)
    frames: int = 8  # moving-shapes(-text): frames per clip
    audio_length: int = 4096  # tones(-text): samples per clip (4096 at 8 kHz ≈ 0.5 s)
    sample_rate: int = 8000  # tones(-text): samples per second
    test_fraction: float = 0.2  # held-out split of built-in data
    seed: int = 0  # data generation / split seed
    hflip: bool = False  # random horizontal flips (never for digits)
    vae: Optional[str] = None  # latents: local AutoencoderKL directory, to decode samples for image metrics
    audio_view: Literal["waveform", "spectrogram"] = "waveform"  # tones(-text): what the generator models (suite/data/spectrogram.py)


@dataclass
class ModelConfig:
    backbone: str = "sit"  # a registered backbone (suite.models.BACKBONES): sit | mmdit (FLUX.2-style MM-DiT, text or class tokens)
    preset: str = "SiT-Nano/2"  # see suite/models/presets.py (SiT-*/p for sit, MMDiT-*/p for mmdit)
    hidden_size: Optional[int] = None  # overrides the preset (scaling grids)
    depth: Optional[int] = None
    num_heads: Optional[int] = None
    patch_size: Optional[int] = None
    mlp_ratio: Optional[float] = None
    double_blocks: Optional[int] = None  # mmdit: how many of the `depth` blocks are double-stream; None: the preset's split
    text_time: Literal["mean", "base", "min", "none"] = "mean"  # mmdit: time conditioning of the text tokens (docs/ARCHITECTURE.md)
    text_dim: int = 0  # mmdit: 0 caption token ids (built-in vocabulary); E > 0 precomputed caption embeddings (B, L, E) from a text encoder (docs/TEXT_TO_X.md)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8
    grad_clip: float = 1.0
    warmup_images: int = 0  # linear warm-up, then constant (SiT/REPA recipe)
    ema_decay: float = 0.9999


@dataclass
class TrainConfig:
    runs_root: str = "runs"
    run_dir: Optional[str] = None  # default: <runs_root>/<name>
    batch_size: int = 32
    total_images: int = 20_000  # the budget, in images seen (EDM2 style)
    log_every_images: int = 512
    ckpt_every_images: int = 4096
    sample_every_images: int = 0  # 0: only at the end
    val_every_images: int = 0  # fixed-t validation loss; 0: only at the end
    val_times: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    val_images: int = 256
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the backbone
    parallel: Literal["auto", "ddp", "fsdp"] = "auto"  # several processes: ddp | fsdp (FSDP2, sharded) | auto (fsdp from 500M parameters)
    tf32: bool = True  # CUDA: TF32 matmuls/convolutions for the fp32 parts (no effect on CPU)
    fused_optimizer: bool = True  # CUDA: fused AdamW kernel (CPU: foreach)
    pin_memory: bool = True  # CUDA: page-locked batches copied with non_blocking=True
    activation_checkpointing: bool = False  # recompute each block in backward (non-reentrant): less memory, ~1/3 more compute
    threads: int = 0  # torch CPU threads; 0: torch's default
    progress: bool = True
    max_steps: int = 0  # stop after this many steps in this process (tests: simulate a kill); 0: off


@dataclass
class SamplingConfig:
    sampler: Literal["euler", "heun", "sde"] = "euler"
    steps: int = 50
    shift: float = 1.0  # sample shift on the time grid
    cfg_scale: float = 1.0  # 1.0: no guidance
    guidance_interval: tuple[float, float] = (0.0, 0.7)  # guidance only for t in [lo, hi] (t = 1 noise)
    sde_last_step: float = 0.04  # Euler–Maruyama: final mean step (SiT)
    diffusion_scale: float = 1.0  # SDE diffusion coefficient multiplier
    label_sampling: Literal["uniform", "balanced"] = "uniform"
    seed: int = 0


@dataclass
class EvalConfig:
    every_images: int = 0  # 0: only at the end of training (if metrics is not empty)
    n_samples: int = 500
    batch_size: int = 250
    metrics: list[str] = field(default_factory=list)  # e.g. [fid, kid, class_consistency, probe]; captioned built-ins: caption_consistency
    extractor: str = "auto"  # auto: the dataset's domain classifier; inception; dinov2
    reference_split: Literal["train", "test", "all"] = "test"
    backends: list[str] = field(default_factory=lambda: ["torch-fidelity"])  # torch-fidelity and/or clean-fid
    inception_weights: Optional[str] = None
    dinov2_weights: Optional[str] = None
    i3d_weights: Optional[str] = None  # FVD-I3D: StyleGAN-V's i3d_torchscript.pt or TATS' i3d_pretrained_400.pt
    videomae_weights: Optional[str] = None  # FVD-VideoMAE: VideoMAE-v2 vit_g_hybrid_pt_1200e_ssv2_ft.pth
    clap_music_weights: Optional[str] = None  # FAD-CLAP-M: LAION-CLAP music_audioset_epoch_15_esc_90.14.pt
    clap_audio_weights: Optional[str] = None  # FAD-CLAP-A / CLAP score: LAION-CLAP 630k-audioset-best.pt
    clip_weights: Optional[str] = None  # CLIP score (clipscore<n>_clip): a local transformers CLIPModel directory (openai/clip-vit-large-patch14)
    clap_text_model: Optional[str] = None  # CLAP's roberta-base: a local directory; None: the Hugging Face cache
    reference_npz: Optional[str] = None  # ADM reference batch (VIRTUAL_imagenet256_labeled.npz)
    probe_blocks: list[int] = field(default_factory=list)  # empty: every block
    probe_t: float = 0.5
    probe_n_train: int = 1000
    probe_n_test: int = 400
    seed: int = 0
    cache_dir: Optional[str] = None  # None: $SUITE_CACHE, else ~/.cache/selfflow-suite (domain classifiers, reference stats)
    classifier_steps: int = 600  # domain-classifier training steps (part of its cache key)
    judge_steps: int = 400  # caption consistency: attribute-judge training steps (part of its cache key)
    judge_images: int = 2000  # caption consistency: real examples the judge trains on (part of its cache key)


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: Optional[str] = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///<runs_root>/mlflow.db
    experiment: str = "selfflow-suite"
    parent_run_id: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    log_samples: bool = True


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: Any = None  # the registered method's own config dataclass (validated by name)
    time: TimeSamplerConfig = field(default_factory=TimeSamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


# ----------------------------------------------------------------------------- strict parsing
_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value, tp, key: str):
    """Check `value` against the annotation `tp`; return the converted value or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:  # Optional[X]: X's own message names the inner key
            return _coerce(value, non_none[0], key)
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        vt = args[1] if args else Any
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads `3e-4` (no dot) as a string
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


@functools.lru_cache(maxsize=None)
def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)  # evaluates string annotations: once per class, not per config


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types."""
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else k
            raise ConfigError(f"unknown config key '{where}'; allowed here: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], f"{prefix}.{f.name}" if prefix else f.name)
    return cls(**kwargs)


def _method_from_dict(d: dict | None):
    from suite.methods.registry import method_config_class

    d = dict(d or {"name": "vanilla"})
    name = d.pop("name", "vanilla")
    if not isinstance(name, str):
        raise ConfigError(f"method.name: expected a string, got {name!r}")
    cls = method_config_class(name)
    obj = from_dict(cls, d, "method")
    obj.name = name
    return obj


def config_from_dict(d: dict) -> RunConfig:
    d = copy.deepcopy(d)
    method = d.pop("method", None)
    if method is not None and not isinstance(method, dict):
        raise ConfigError(f"method: expected a mapping with a 'name', got {method!r}")
    cfg = from_dict(RunConfig, d)
    cfg.method = _method_from_dict(method)
    cfg.method.resolve(cfg.data)  # fields that default to a fact about the data
    _check_values(cfg)
    return cfg


def _check_values(cfg: RunConfig) -> None:
    """Cross-field facts that types alone cannot express, checked when the config is loaded, so
    `suite config` rejects everything `suite train` would reject while building the run."""
    from suite.validation import check_run_config

    check_run_config(cfg)


# ----------------------------------------------------------------------------- YAML, overrides
def deep_merge(base: dict, extra: dict) -> dict:
    """Merge `extra` over `base`; a `method` section naming another method replaces the old one."""
    out = dict(base)
    for k, v in extra.items():
        old = out.get(k)
        both_maps = isinstance(v, dict) and isinstance(old, dict)
        if both_maps and k == "method" and v.get("name", old.get("name")) != old.get("name"):
            both_maps = False
        out[k] = deep_merge(old, v) if both_maps else copy.deepcopy(v)
    return out


def resolve_config_path(path: str | Path, relative_to: Path | None = None) -> Path:
    """A YAML path; `builtin:NAME` names a shipped config under suite/configs/."""
    s = str(path)
    if s.startswith("builtin:"):
        p = BUILTIN_CONFIG_DIR / (s[len("builtin:"):] + ("" if s.endswith(".yaml") else ".yaml"))
    else:
        p = Path(s)
        if not p.is_absolute() and relative_to is not None and not p.exists():
            p = relative_to / p
    if not p.is_file():
        avail = ", ".join(sorted(str(q.relative_to(BUILTIN_CONFIG_DIR).with_suffix("")) for q in BUILTIN_CONFIG_DIR.rglob("*.yaml")))
        raise MissingFileError(f"config file not found: {s} (built-in configs: {avail})")
    return p


def read_yaml_config(path: str | Path, relative_to: Path | None = None, _seen=()) -> dict:
    """Read a YAML run config; a top-level `base:` (path or list of paths) is merged underneath."""
    p = resolve_config_path(path, relative_to)
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    bases = d.pop("base", None)
    if bases is None:
        return d
    merged: dict = {}
    for b in [bases] if isinstance(bases, str) else bases:
        if str(b) in _seen:
            raise ConfigError(f"{p}: circular 'base: {b}'")
        merged = deep_merge(merged, read_yaml_config(b, p.parent, (*_seen, str(b))))
    return deep_merge(merged, d)


@functools.lru_cache(maxsize=4096)
def _parsed_override(raw: str):
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _override_value(raw: str):
    """An override's value parsed as YAML (cached: a 1,000-point sweep parses the same strings
    thousands of times); a copy, so callers may change it."""
    return copy.deepcopy(_parsed_override(raw))


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides; values are parsed as YAML (so 1e-4, true, [1,2] work)."""
    d = copy.deepcopy(d)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        value = _override_value(raw)
        node = d
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: '{p}' is not a section")
        if parts == ["method", "name"] and isinstance(d.get("method"), dict) and d["method"].get("name") != value:
            d["method"] = {}  # switching method: the old method's fields do not apply
            node = d["method"]
        node[parts[-1]] = value
    return d


def load_run_config(source, overrides: list[str] | None = None) -> RunConfig:
    """Config from a YAML path (or list of paths merged in order) or a dict, plus overrides."""
    if isinstance(source, dict):
        d = copy.deepcopy(source)
    else:
        d = {}
        for s in [source] if isinstance(source, (str, Path)) else source:
            d = deep_merge(d, read_yaml_config(s))
    return config_from_dict(apply_overrides(d, overrides or []))


def _plain(x):
    """Dataclasses → dicts, tuples → lists, recursively (what `dataclasses.asdict` gives, without
    its deep copies: config leaves are str / int / float / bool / None)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def config_to_dict(cfg: RunConfig) -> dict:
    d = _plain(cfg)
    method = d["method"]
    d["method"] = {"name": cfg.method.name, **{k: v for k, v in method.items() if k != "name"}}
    return d


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


# Fields that change where/how a run is stored or shown, not what it computes.
_HASH_EXCLUDE = ("name", "tracking", "train.runs_root", "train.run_dir", "train.num_workers", "train.progress", "train.max_steps", "train.threads",
                 "train.parallel", "train.pin_memory", "train.fused_optimizer", "train.activation_checkpointing",
                 "train.tf32")  # how it is computed (or where it is kept), not what


_HASH_EXCLUDED = re.compile(r"^(?:%s)(?:\.|$)" % "|".join(map(re.escape, _HASH_EXCLUDE)))  # an excluded key or below it


# Fields added after runs existed, with the value that reproduces what runs did before them: at
# that value a field is left out of the hash, so upgrading the suite keeps every existing run's
# identity (resume, sweep skipping). Any other value is hashed. A field added later goes here with
# its behaviour-preserving value — not its current default, which may change.
_HASH_NEUTRAL = {"model.text_dim": 0, "eval.clip_weights": None, "data.audio_view": "waveform"}


def config_hash(cfg: RunConfig) -> str:
    """Identity of a run's computation (sweeps skip points whose hash already finished)."""
    flat = flatten(config_to_dict(cfg))
    keep = {k: v for k, v in flat.items()
            if not _HASH_EXCLUDED.match(k) and not (k in _HASH_NEUTRAL and v == _HASH_NEUTRAL[k])}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
