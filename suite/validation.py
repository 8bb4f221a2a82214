"""Cross-field checks of a run config, run when it is loaded (suite.config.config_from_dict).

Types and choices (Literal fields) are checked while parsing; this module checks the facts that
involve several fields or the registries: known dataset / backbone / extractor / metric names,
model sizes that fit the data (the backbone is built on the meta device, so this costs no memory
and runs the backbone's own checks), the method's own switches against that backbone, and value
ranges. `suite config` and `suite train` share this one path, so both reject the same configs
with the same one-line message naming the key.
"""
from __future__ import annotations

import functools
import re

import torch

from suite.errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_run_config(cfg) -> None:
    _check_ranges(cfg)
    model = meta_backbone(cfg)
    if model is not None:
        cfg.method.validate(model)
        for b in cfg.eval.probe_blocks:
            if not 1 <= b <= model.depth:
                raise ConfigError(f"eval.probe_blocks: block {b} outside 1..{model.depth}")
    _check_eval(cfg)


def meta_backbone(cfg):
    """The run's backbone on the meta device (no memory, no data read), or None when the data
    shape is only known from the data itself (folders of latents). Raises its ConfigError.
    Cached by what defines it, so a 1,000-point sweep validates in well under a second."""
    import dataclasses

    from suite.data import caption_dim, condition_kind, describe_dataset
    from suite.models import model_dims

    model_dims(cfg.model)  # sizes and heads, even when the data shape is unknown
    described = describe_dataset(cfg.data)  # also: unknown data.name → one line
    if described is None:
        return None
    shape, num_classes = described
    model_key = tuple(sorted(dataclasses.asdict(cfg.model).items()))
    return _meta_backbone(type(cfg.model), model_key, tuple(shape), num_classes or 1,
                          condition_kind(cfg.data), caption_dim(cfg.data))


@functools.lru_cache(maxsize=256)
def _meta_backbone(config_type: type, model_key: tuple, shape: tuple, num_classes: int,
                   condition: str, text_dim: int = 0):
    # config_type is passed in (not imported) so validation never imports suite.config, which
    # imports it: the core's packages stay acyclic.
    from suite.models import build_model, check_condition

    with torch.device("meta"):
        model = build_model(config_type(**dict(model_key)), shape, num_classes)
    check_condition(model, condition, text_dim)
    return model


def _positive(key: str, value) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be positive, got {value}")


def _check_ranges(cfg) -> None:
    t, o, s, d = cfg.train, cfg.optim, cfg.sampling, cfg.data
    for key, v in (("train.batch_size", t.batch_size), ("train.total_images", t.total_images),
                   ("optim.lr", o.lr), ("sampling.steps", s.steps), ("data.image_size", d.image_size),
                   ("eval.n_samples", cfg.eval.n_samples), ("eval.batch_size", cfg.eval.batch_size),
                   ("eval.judge_steps", cfg.eval.judge_steps), ("eval.judge_images", cfg.eval.judge_images)):
        _positive(key, v)
    if not 0 < o.ema_decay < 1:
        raise ConfigError(f"optim.ema_decay: must be in (0, 1), got {o.ema_decay}")
    if o.grad_clip < 0 or o.weight_decay < 0 or o.warmup_images < 0:
        raise ConfigError("optim: grad_clip, weight_decay and warmup_images must be ≥ 0")
    if d.audio_view != "waveform":
        from suite.data.spectrogram import check_spectrogram_view

        check_spectrogram_view(d)
    if not 0 <= d.test_fraction < 1:
        raise ConfigError(f"data.test_fraction: must be in [0, 1), got {d.test_fraction}")
    if not _DEVICE.match(t.device):
        raise ConfigError(f"train.device: {t.device!r} not allowed; allowed: auto, cpu, cuda, cuda:N")
    lo, hi = s.guidance_interval
    if not 0 <= lo <= hi <= 1:
        raise ConfigError(f"sampling.guidance_interval: expected 0 ≤ lo ≤ hi ≤ 1, got [{lo}, {hi}]")
    if s.shift <= 0 or cfg.time.shift <= 0:
        raise ConfigError("sampling.shift and time.shift: must be positive")
    if not 0 <= cfg.time.low_snr_fraction <= 1:
        raise ConfigError(f"time.low_snr_fraction: must be in [0, 1], got {cfg.time.low_snr_fraction}")
    if not 0 <= cfg.eval.probe_t <= 1:
        raise ConfigError(f"eval.probe_t: must be in [0, 1], got {cfg.eval.probe_t}")


def _check_eval(cfg) -> None:
    from suite.data.caption_schemes import CAPTIONED_BUILTINS
    from suite.evaluation.caption_eval import check_captioned
    from suite.evaluation.metrics import JUDGED_KINDS, backend_name, parse_metric
    from suite.evaluation.registry import extractor_kind, metric_group

    e = cfg.eval
    for b in e.backends:
        _as_config_error(backend_name, b)
    extractor_kind(e.extractor, cfg.data.name)
    for m in e.metrics:
        if m.strip() == "probe" or m.strip().startswith("probe_acc"):
            continue
        for spec in _as_config_error(parse_metric, m, e.n_samples, e.extractor, e.backends):
            if spec.kind in JUDGED_KINDS:  # caption consistency: a captioned built-in, no extractor
                check_captioned(cfg.data)
                continue
            if spec.kind == "class_consistency" and cfg.data.name in CAPTIONED_BUILTINS:
                raise ConfigError(f"eval.metrics: class_consistency needs class labels; {cfg.data.name!r} is captioned "
                                  f"(use caption_consistency)")
            if spec.extractor is not None:
                extractor_kind(spec.extractor, cfg.data.name)
            if spec.kind != "class_consistency":
                metric_group(spec, cfg.data)  # the metric suits its extractor (fvd: video, fad: audio, …)


def _as_config_error(fn, *args):
    """The metric parser speaks SuiteError; at load time it is a config error (same line)."""
    from suite.errors import SuiteError

    try:
        return fn(*args)
    except ConfigError:
        raise
    except SuiteError as e:
        raise ConfigError(str(e)) from None
