"""REPA (Yu et al., 2025; selfflow.md §7): align a student block to frozen external encoders.

    t ~ p(t) (B,);  x_t = (1 − t)·x0 + t·x1;  v̂, z_l = model(x_t, t, y_dropped)
    for each encoder e:  q_e = h_e(z_l)  (D → 2048 → 2048 → D_e, SiLU)
                         f_e = resample(e(pixels))          frozen, eval, no grad
    L = mean‖v̂ − (x1 − x0)‖² + λ · mean_e( −mean_tokens cos(q_e, f_e) ),  λ = 0.5

Only the method object differs from vanilla/Self-Flow: same backbone, time sampler, label dropping.
The encoders see `batch.pixels` (the raw images that belong to each example, also when the
generator learns latents), resized and normalised their own way; their token grid is resampled
to the generator's when the two differ. They are kept outside this module's parameters so the
optimizer and checkpoints never hold them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from suite.errors import ConfigError, SuiteError
from suite.flow import broadcast_time, interpolate, velocity_target
from suite.methods.base import Batch, Method, MethodConfig, MethodOutput, Projector, mse, negative_cosine, resolve_block
from suite.methods.registry import register_method
from suite.models.presets import default_layers

from baselines.encoders import ENCODERS, Encoder, available_encoders, load_encoder, resample_tokens


@dataclass
class EncoderSpec:
    """One external encoder: a registry name plus where its weights are (see `suite encoder list`)."""

    name: str = "dinov2-vitb14"
    path: Optional[str] = None  # weights directory / file; `local`: a `suite encoder train --out` dir
    cache_dir: Optional[str] = None  # a pre-filled Hugging Face cache instead of a path
    input_size: Optional[int] = None  # resolution the encoder sees; None: its default (DINOv2: 224)
    input_rate: Optional[float] = None  # audio encoders: samples per second of the data's waveforms; None: the data's (clip_rate)


@dataclass
class RepaConfig(MethodConfig):
    encoders: list[EncoderSpec] = field(default_factory=lambda: [EncoderSpec()])  # paper: DINOv2-B
    weight: float = 0.5  # λ
    student_block: Optional[int] = None  # l (1-indexed); None: round(0.3·depth) (8 of 28, 4 of 12)
    projector_hidden: int = 2048
    projector_hidden_layers: int = 2  # REPA: Linear → SiLU → Linear → SiLU → Linear

    def resolve(self, data_cfg) -> None:
        """Audio encoders resample from the data's sample rate: fill `input_rate` from the data
        (suite.data.clip_rate) where unset, so the resolved config records it."""
        from suite.data import clip_rate

        rate = None
        for e in self.encoders:
            if e.input_rate is None:
                rate = clip_rate(data_cfg) if rate is None else rate
                e.input_rate = rate

    def validate(self, model) -> None:
        super().validate(model)
        if not self.encoders:
            raise ConfigError("method.encoders: REPA needs at least one encoder")
        for i, e in enumerate(self.encoders):
            if e.name not in ENCODERS:
                raise ConfigError(f"method.encoders[{i}].name: unknown encoder {e.name!r}; allowed: {', '.join(available_encoders())}")
        if self.weight < 0:
            raise ConfigError(f"method.weight: must be ≥ 0, got {self.weight}")
        resolve_block("method.student_block", self.student_block, default_layers(model.depth)[0], model.depth)


def check_encoder_fits(i: int, spec: EncoderSpec, enc: Encoder, data_kind: str) -> None:
    """An encoder reads the run's kind of data; an audio encoder knows the data's sample rate."""
    if enc.modality != data_kind:
        raise ConfigError(f"method.encoders[{i}].name: {spec.name} is a{'n' if enc.modality[0] in 'aeiou' else ''} "
                          f"{enc.modality} encoder; this run's data is {data_kind}")
    if enc.modality == "audio":
        if spec.input_rate is None or spec.input_rate <= 0:
            raise ConfigError(f"method.encoders[{i}].input_rate: the audio encoder {spec.name} needs the data's sample rate "
                              f"(samples per second; the data gives none)")
        enc.input_rate = float(spec.input_rate)


def repa_alignment(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """−mean over tokens and samples of cos(q, target) (REPA's `proj_loss`, in [−1, 1]).

    Same gradient as the core's 1 − cos; shifted so the logged value reads like REPA's.
    """
    return negative_cosine(q, target) - 1.0


@register_method("repa", RepaConfig)
class Repa(Method):
    def __init__(self, cfg: RepaConfig, model, time_sampler):
        super().__init__(cfg, model, time_sampler)
        self.student_block = resolve_block("method.student_block", cfg.student_block, default_layers(model.depth)[0], model.depth)
        # A plain list: frozen encoders are not parameters of the method (optimizer, checkpoint, DDP).
        self.encoders: list[Encoder] = [load_encoder(e.name, e.path, e.cache_dir, e.input_size) for e in cfg.encoders]
        for i, (spec, enc) in enumerate(zip(cfg.encoders, self.encoders)):
            check_encoder_fits(i, spec, enc, model.modality.kind)
        self.projectors = torch.nn.ModuleList(
            Projector(model.hidden_size, cfg.projector_hidden, enc.embed_dim, hidden_layers=cfg.projector_hidden_layers)
            for enc in self.encoders
        )

    @torch.no_grad()
    def encoder_targets(self, pixels: torch.Tensor, grid: tuple[int, ...]) -> list[torch.Tensor]:
        """Each frozen encoder's tokens on the generator's token grid (images (h, w), video
        (t, h, w), audio (n,)): [(B, N, D_e)]."""
        out = []
        for enc in self.encoders:
            if next(enc.parameters()).device != pixels.device:
                enc.to(pixels.device)
            tokens, enc_grid = enc.encode(pixels)  # (B, N_e, D_e) on the encoder's own grid
            out.append(resample_tokens(tokens, grid, enc_grid))  # (B, N, D_e)
        return out

    def loss(self, batch: Batch, model, ema_model, step: int) -> MethodOutput:
        if batch.pixels is None:
            raise SuiteError("REPA needs the raw pixels of each example (batch.pixels); this dataset provides none")
        x0 = batch.x0  # (B, C, H, W)
        core = getattr(model, "module", model)
        t = self.time_sampler.sample((x0.shape[0],), device=x0.device)  # (B,)
        x1 = torch.randn_like(x0)
        xt = interpolate(x0, x1, broadcast_time(t, x0))
        y = self.drop_labels(batch.y)
        v, hidden = model(xt, t, y, taps=(self.student_block,))
        loss_gen = mse(v, velocity_target(x0, x1))
        z = hidden[self.student_block]  # (B, N, D)
        targets = self.encoder_targets(batch.pixels, core.modality.token_grid())
        per_enc = [repa_alignment(proj(z), f) for proj, f in zip(self.projectors, targets)]
        loss_rep = torch.stack(per_enc).mean()
        terms = {"gen": loss_gen.detach(), "rep": loss_rep.detach()}
        if len(per_enc) > 1:
            terms.update({f"rep_{i}": l.detach() for i, l in enumerate(per_enc)})
        return MethodOutput(loss=loss_gen + self.cfg.weight * loss_rep, terms=terms, logs={"t_mean": t.mean().detach()})
