"""FLUX.2-style MM-DiT (selfflow-notes.md §2.3; the paper's App. A.3) with per-token data timesteps.

    text tokens (B, L) ids ──embed──► txt (B, L, D)        data x ──patchify──► img (B, N, D)
    or caption embeddings (B, L, E) ──Linear──► txt (B, L, D)   (text_dim = E > 0)
    double-stream blocks 1..n_double: separate weights per stream, one joint attention over [txt, img]
    single-stream blocks n_double+1..depth: one set of weights over the concatenation [txt, img]
    final layer on the data tokens only → velocity, same shape as x

- SwiGLU MLPs (ratio 4), qkv bias, QK RMSNorm, RoPE over (text position, data axes…) instead of
  absolute positions (images 2-D, video 3-D, audio 1-D data axes; text 1-D).
- Shared modulation (DiT-Air / FLUX.2): ONE modulation network per kind of block — data-stream
  double (6·D), text-stream double (6·D), single (3·D) — whose output modulates every block of that
  kind. The conditioning vector is the timestep embedding.
- Per-token timesteps on the data tokens exactly as SiT: t (B,) shared or (B, N) per data token,
  each data token modulated by its own time; equal times give the scalar-time numbers. The
  modulations are computed once per distinct time level and gathered per token (`data_conditioning`).
- Text tokens' time under dual timesteps (`text_time`, a config field recorded with every run):
  mean (default) | base | min | none — see `TextTime` and docs/ARCHITECTURE.md.
- The condition `y`: (B, L) long token ids in [0, num_classes], or (B,) class labels (one token).
  Id `num_classes` is the null token: a dropped condition (CFG) is all null tokens, and captions
  are padded with it. With `text_dim` = E > 0, y is instead (B, L, E) float caption embeddings from a
  pretrained text encoder (suite.text), projected by a Linear; an all-zero token (padding, or every
  token of a dropped caption) becomes a learned null embedding — the same one-null-for-both rule
  (suite.models.conditions). Hidden-state taps and `stop_after` count blocks 1-indexed over all blocks
  (double then single, the order of `blocks`) and return data tokens only.
Time convention: suite.flow (t = 1 noise).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.models.conditions import null_condition
from suite.models.init import init_adaln_zero
from suite.models.modality import make_modality
from suite.models.qknorm import QKNorm
from suite.models.rope import apply_rope, data_positions, rope_angles, token_ids
from suite.models.sit import (Conditioning, FinalLayer, TimestepEmbedder, group_attention_mask, modulate_plus_one,
                              modulation_pieces)
from suite.models.swiglu import SwiGLU, swiglu
from suite.models.token_times import Times, TokenTimes

TEXT_TIME_RULES = ("mean", "base", "min", "none")


def data_conditioning(t: Times, t_embedder: nn.Module) -> Conditioning:
    """Data tokens' conditioning, in the time forms every backbone takes (suite.models.token_times):
    t (B,) → levels (B, 1, D); TokenTimes → levels (B, K, D) selected per token (static shapes);
    t (B, N) → (B, N, D), per token. The conditioning depends on the time only (no pooled text)."""
    if isinstance(t, TokenTimes):
        return Conditioning(t_embedder(t.levels), t)  # (B, K, D)
    if t.dim() == 1:
        return Conditioning(t_embedder(t)[:, None, :])  # (B, 1, D)
    return Conditioning(t_embedder(t))  # (B, N, D)


class TextTime:
    """The text tokens' modulation under per-token data times (the paper does not say; official issue 9).

    mean: the mean over data tokens of the data tokens' modulation (one public FLUX.2 Self-Flow port);
    base: the sample's base time t (the most frequent data-token time; R_M < 0.5 makes it t);
    min:  min(t, s) over the sample's data tokens (the time the Self-Flow teacher sees);
    none: no time at all (the modulation network's bias).
    With a shared time (B,) every rule gives the scalar-time numbers.
    """

    def __init__(self, rule: str, t: Times, data: Conditioning, t_embedder: nn.Module):
        self.rule, self.data = rule, data
        if isinstance(t, TokenTimes):
            t = t.per_token()  # (B, N): the rules read the data tokens' times
        self.vec = None  # (B, 1, D): the text stream's conditioning vector, None for `mean`
        if rule == "none":
            self.vec = torch.zeros(t.shape[0], 1, t_embedder.mlp[-1].out_features, device=t.device,
                                   dtype=t_embedder.mlp[-1].weight.dtype)
        elif rule != "mean" or t.dim() == 1:
            if t.dim() == 1:
                t_text = t
            else:
                t_text = t.amin(dim=1) if rule == "min" else torch.mode(t, dim=1).values  # (B,)
            self.vec = t_embedder(t_text)[:, None, :]  # (B, 1, D)

    def modulation(self, layer: nn.Module) -> torch.Tensor:
        """(B, 1, k·D)."""
        if self.vec is None:  # mean of the per-token data modulation
            return self.data.modulation(layer).mean(dim=1, keepdim=True)
        return layer(self.vec)

    def modulations(self, layer: nn.Module, chunks: int, scales: tuple[int, ...] = ()) -> list[torch.Tensor]:
        """As `Conditioning.modulations`: `chunks` pieces (B, 1, D), those in `scales` as 1 + piece."""
        return modulation_pieces(self.modulation(layer), chunks, scales)


def shared_modulation(dim: int, chunks: int) -> nn.Sequential:
    return nn.Sequential(nn.SiLU(), nn.Linear(dim, chunks * dim))


def joint_attention(q, k, v, angles: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """q, k, v (B, H, L+N, Dh) → RoPE on q, k → attention → (B, L+N, H·Dh)."""
    q, k = apply_rope(q, angles), apply_rope(k, angles)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, L+N, Dh)
    b, h, n, dh = out.shape
    return out.transpose(1, 2).reshape(b, n, h * dh)


def split_heads(qkv: torch.Tensor, num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N, 3·D) → q, k, v (B, H, N, Dh)."""
    b, n, three_d = qkv.shape
    d = three_d // 3
    return qkv.reshape(b, n, 3, num_heads, d // num_heads).permute(2, 0, 3, 1, 4).unbind(0)


class StreamWeights(nn.Module):
    """One stream's own weights in a double-stream block: qkv (with bias), QK norm, proj, SwiGLU."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qk_norm = QKNorm(dim // num_heads)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(dim, mlp_hidden)


class DoubleStreamBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_heads = num_heads
        self.img = StreamWeights(dim, num_heads, int(dim * mlp_ratio))
        self.txt = StreamWeights(dim, num_heads, int(dim * mlp_ratio))

    def _qkv(self, s: StreamWeights, x, shift, scale1):
        q, k, v = split_heads(s.qkv(modulate_plus_one(s.norm1(x), shift, scale1)), self.num_heads)  # (B, H, ·, Dh)
        q, k = s.qk_norm(q, k)
        return q, k, v

    def forward(self, img, txt, img_mod, txt_mod, angles, mask):
        """img (B, N, D), txt (B, L, D); img_mod six (B, N|1, D), txt_mod six (B, 1, D) (scales as 1 + scale)."""
        i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = img_mod
        t_sh1, t_sc1, t_g1, t_sh2, t_sc2, t_g2 = txt_mod
        iq, ik, iv = self._qkv(self.img, img, i_sh1, i_sc1)
        tq, tk, tv = self._qkv(self.txt, txt, t_sh1, t_sc1)
        att = joint_attention(torch.cat([tq, iq], 2), torch.cat([tk, ik], 2), torch.cat([tv, iv], 2), angles, mask)
        l = txt.shape[1]
        txt = torch.addcmul(txt, t_g1, self.txt.proj(att[:, :l]))
        img = torch.addcmul(img, i_g1, self.img.proj(att[:, l:]))
        txt = torch.addcmul(txt, t_g2, self.txt.mlp(modulate_plus_one(self.txt.norm2(txt), t_sh2, t_sc2)))
        img = torch.addcmul(img, i_g2, self.img.mlp(modulate_plus_one(self.img.norm2(img), i_sh2, i_sc2)))
        return img, txt


class SingleStreamBlock(nn.Module):
    """FLUX single-stream block: one linear makes qkv and the SwiGLU input, one linear takes both back."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_heads, self.dim, self.mlp_hidden = num_heads, dim, int(dim * mlp_ratio)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear1 = nn.Linear(dim, 3 * dim + 2 * self.mlp_hidden)
        self.qk_norm = QKNorm(dim // num_heads)
        self.linear2 = nn.Linear(dim + self.mlp_hidden, dim)

    def forward(self, x, mod, angles, mask):
        """x (B, L+N, D); mod: shift, 1 + scale, gate, each (B, L+N, D)."""
        shift, scale1, gate = mod
        qkv, mlp_in = self.linear1(modulate_plus_one(self.norm(x), shift, scale1)).split([3 * self.dim, 2 * self.mlp_hidden], dim=-1)
        q, k, v = split_heads(qkv, self.num_heads)
        q, k = self.qk_norm(q, k)
        att = joint_attention(q, k, v, angles, mask)  # (B, L+N, D)
        return torch.addcmul(x, gate, self.linear2(torch.cat([att, swiglu(mlp_in)], dim=-1)))


def joint_group_mask(groups: torch.Tensor, text_len: int) -> torch.Tensor:
    """Data groups (B, N) → (B, 1, L+N, L+N) bool: data tokens attend to the text and within their group;
    text tokens attend to the text only, so no information crosses between groups through the text."""
    b, n = groups.shape
    mask = torch.ones(b, 1, text_len + n, text_len + n, dtype=torch.bool, device=groups.device)
    mask[:, :, :text_len, text_len:] = False
    mask[:, :, text_len:, text_len:] = group_attention_mask(groups)
    return mask


class MMDiT(nn.Module):
    accepts_text = True  # y may be (B, L) caption token ids, or (B, L, text_dim) caption embeddings

    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        hidden_size: int,
        depth: int,
        num_heads: int,
        double_blocks: int,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
        text_time: str = "mean",
        text_dim: int = 0,
    ):
        super().__init__()
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(f"hidden size {hidden_size} over {num_heads} heads must give an even head dimension")
        if not 0 <= double_blocks <= depth:
            raise ValueError(f"double_blocks {double_blocks} outside 0..{depth}")
        if text_dim < 0:
            raise ValueError(f"text_dim {text_dim} must be ≥ 0 (0: caption token ids)")
        if text_time not in TEXT_TIME_RULES:
            raise ValueError(f"text_time {text_time!r}; allowed: {', '.join(TEXT_TIME_RULES)}")
        self.data_shape, self.in_channels, self.num_classes = tuple(data_shape), data_shape[0], num_classes
        self.hidden_size, self.depth, self.num_heads, self.patch_size = hidden_size, depth, num_heads, patch_size
        self.num_double, self.text_time, self.text_dim = double_blocks, text_time, text_dim
        self.null_class = num_classes  # the null token: dropped conditions and caption padding
        self.modality = make_modality(self.data_shape, patch_size, hidden_size)
        self.modality.pos_embed.zero_()  # RoPE gives positions; the patch embedding stays absolute-position free
        self.num_tokens = self.modality.num_tokens
        self.register_buffer("data_pos", data_positions(self.modality), persistent=False)  # (N, A)
        self.t_embedder = TimestepEmbedder(hidden_size)
        if text_dim:  # caption embeddings (B, L, E) → (B, L, D); all-zero tokens → the learned null token
            self.text_proj = nn.Linear(text_dim, hidden_size)
            self.null_text = nn.Parameter(torch.zeros(hidden_size))
        else:
            self.text_embedder = nn.Embedding(num_classes + 1, hidden_size)  # last row: null token
        self.img_modulation = shared_modulation(hidden_size, 6)
        self.txt_modulation = shared_modulation(hidden_size, 6)
        self.single_modulation = shared_modulation(hidden_size, 3)
        self.double_stream = nn.ModuleList([DoubleStreamBlock(hidden_size, num_heads, mlp_ratio) for _ in range(double_blocks)])
        self.single_stream = nn.ModuleList([SingleStreamBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth - double_blocks)])
        self.final_layer = FinalLayer(hidden_size, self.modality.out_dim)
        self.initialize_weights()

    @property
    def blocks(self) -> list[nn.Module]:
        """Every transformer block in order, double then single: block i of taps and `stop_after` is
        `blocks[i - 1]` (SiT's `blocks` likewise; FSDP shards each, suite.train.fsdp)."""
        return [*self.double_stream, *self.single_stream]

    def initialize_weights(self) -> None:
        """xavier linears, N(0, 0.02) embedders, zero modulation outputs and output layer (adaLN-Zero)."""
        text = [] if self.text_dim else [self.text_embedder]
        init_adaln_zero(self, [*text, self.t_embedder.mlp[0], self.t_embedder.mlp[2]],
                        [mod[-1] for mod in (self.img_modulation, self.txt_modulation, self.single_modulation,
                                             self.final_layer.adaLN_modulation)] + [self.final_layer.linear])
        if self.text_dim:
            nn.init.normal_(self.null_text, std=0.02)

    def text_tokens(self, y: torch.Tensor) -> torch.Tensor:
        """(B,) class labels, (B, L) token ids or (B, L, E) caption embeddings → (B, L, D)."""
        if not self.text_dim:
            if y.is_floating_point():
                raise ValueError("caption embeddings given to an MM-DiT built for token ids (model.text_dim=0)")
            return self.text_embedder(y[:, None] if y.dim() == 1 else y)
        if not y.is_floating_point():  # integer conditions (e.g. the probe's null label): null tokens
            return self.null_text.expand(y.shape[0], 1, -1)  # (B, 1, D)
        null = (y == 0).all(dim=-1, keepdim=True)  # (B, L, 1): padding or a dropped caption
        return torch.where(null, self.null_text, self.text_proj(y))  # (B, L, D)

    def forward_with_taps(self, x, t, y, taps=(), stop_after=None, attn_groups=None):
        """Velocity (same shape as x) and the data tokens after the requested blocks (1-indexed, double then single)."""
        img = self.modality.embed(x)  # (B, N, D)
        # The text stream in the data stream's dtype: fp32 under autocast, as with fp32 weights, even
        # when the text embedding's weights are bf16 (FSDP's bf16 policy, suite.train.fsdp).
        txt = self.text_tokens(y).to(img.dtype)  # (B, L, D)
        b, n, l = img.shape[0], img.shape[1], txt.shape[1]
        data = data_conditioning(t, self.t_embedder)
        text = TextTime(self.text_time, t, data, self.t_embedder)
        angles = rope_angles(token_ids(l, self.data_pos), self.hidden_size // self.num_heads)  # (L+N, Dh/2)
        mask = joint_group_mask(attn_groups, l) if attn_groups is not None else None
        hidden: dict[int, torch.Tensor] = {}
        last = self.depth if stop_after is None else stop_after
        if self.num_double and last >= 1:
            img_mod = data.modulations(self.img_modulation, 6, scales=(1, 4))  # six (B, N|1, D), shared by every double block
            txt_mod = text.modulations(self.txt_modulation, 6, scales=(1, 4))  # six (B, 1, D)
            for i, block in enumerate(self.double_stream[:last], start=1):
                img, txt = block(img, txt, img_mod, txt_mod, angles, mask)
                if i in taps:
                    hidden[i] = img
        if last > self.num_double:
            h = torch.cat([txt, img], dim=1)  # (B, L+N, D)
            mod = [torch.cat([t_piece.expand(b, l, -1), d_piece.expand(b, n, -1)], dim=1)  # (B, L+N, D) each
                   for t_piece, d_piece in zip(text.modulations(self.single_modulation, 3, scales=(1,)),
                                               data.modulations(self.single_modulation, 3, scales=(1,)))]
            for i, block in enumerate(self.single_stream[: last - self.num_double], start=self.num_double + 1):
                h = block(h, mod, angles, mask)
                if i in taps:
                    hidden[i] = h[:, l:]
            img = h[:, l:]
        if stop_after is not None:
            return None, hidden
        out = self.final_layer(img, data)  # (B, N, patch volume · C)
        return self.modality.unpatchify(out), hidden

    def forward(self, x, t, y, taps=None, stop_after=None, attn_groups=None):
        """Velocity; with `taps` or `stop_after`, (velocity | None, {block: (B, N, D)}) — as SiT."""
        v, hidden = self.forward_with_taps(x, t, y, taps or (), stop_after, attn_groups)
        return v if taps is None and stop_after is None else (v, hidden)

    def forward_with_cfg(self, x, t, y, cfg_scale: float) -> torch.Tensor:
        """v_u + w·(v_c − v_u) in one batched pass; the unconditional half sees all null tokens."""
        v = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null_condition(y, self.null_class)]))
        v_c, v_u = v.chunk(2)
        return v_u + cfg_scale * (v_c - v_u)
