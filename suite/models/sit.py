"""SiT / DiT transformer with per-token adaLN-Zero conditioning (selfflow.md §3).

- timesteps of shape (B,) or (B, N): each token's time goes through the sinusoidal + MLP embedder,
  the class embedding (per sample) is added, so conditioning c is (B, N, D) (or (B, 1, D) when the
  time is shared, which broadcasts to the same numbers).
- every adaLN-Zero modulation (6 per block, 2 in the final layer) is computed from c per token.
- hidden-state taps after any block (1-indexed) so alignment methods read features without forking.
- class index `num_classes` is the null class (CFG / dropped label).
Time convention: suite.flow (t = 1 noise). This model takes that t as is.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from suite.models.modality import make_modality, timestep_frequencies


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift  # x (B, N, D); shift/scale (B, N|1, D)


class Conditioning:
    """Per-token conditioning stored by its distinct levels.

    Dual-timestep training has two times per sample, so the per-token conditioning c (B, N, D)
    has at most 2·B distinct rows. Every adaLN modulation is a function of c alone, so it is
    computed once per distinct row and gathered per token: the same numbers as computing it for
    every token, at 2/N of the cost (measuring.md §5: per-token adaLN is otherwise a large share
    of the FLOPs). `levels` (U, D) or (B, 1, D) when the time is shared; `index` (B, N) or None.
    """

    def __init__(self, levels: torch.Tensor, index: torch.Tensor | None = None):
        self.levels, self.index = levels, index

    def modulation(self, layer: nn.Module) -> torch.Tensor:
        out = layer(self.levels)  # (U, k·D) or (B, 1, k·D)
        return out if self.index is None else out[self.index]  # (B, N, k·D)


class TimestepEmbedder(nn.Module):
    """t in [0, 1] (no ×1000) → 256 sinusoidal features, max period 1e4 → MLP → D."""

    def __init__(self, hidden_size: int, freq_dim: int = 256):
        super().__init__()
        self.register_buffer("freqs", timestep_frequencies(freq_dim), persistent=False)  # (F/2,)
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float()[..., None] * self.freqs  # (..., F/2)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (..., F)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))  # (..., D)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, N, Dh)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, Dh)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class SiTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: Conditioning, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x (B, N, D); modulations (B, N, D) per token or (B, 1, D) shared
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = c.modulation(self.adaLN_modulation).chunk(6, dim=-1)
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), attn_mask)
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: Conditioning) -> torch.Tensor:
        shift, scale = c.modulation(self.adaLN_modulation).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (B, N, patch volume · C)


def group_attention_mask(groups: torch.Tensor) -> torch.Tensor:
    """(B, N) integer groups → (B, 1, N, N) boolean mask: tokens attend only within their group."""
    return (groups[:, :, None] == groups[:, None, :]).unsqueeze(1)


class SiT(nn.Module):
    def __init__(
        self,
        data_shape: tuple[int, ...],
        num_classes: int,
        hidden_size: int,
        depth: int,
        num_heads: int,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden size {hidden_size} not divisible by {num_heads} heads")
        self.data_shape, self.in_channels, self.num_classes = tuple(data_shape), data_shape[0], num_classes
        self.hidden_size, self.depth, self.num_heads, self.patch_size = hidden_size, depth, num_heads, patch_size
        self.null_class = num_classes
        self.modality = make_modality(self.data_shape, patch_size, hidden_size)  # image / video / audio
        self.num_tokens = self.modality.num_tokens
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = nn.Embedding(num_classes + 1, hidden_size)  # last row: null class
        self.blocks = nn.ModuleList([SiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, self.modality.out_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT init: xavier linears, N(0, 0.02) embedders, zero adaLN and output (adaLN-Zero)."""

        def _basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def condition(self, t: torch.Tensor, y: torch.Tensor) -> Conditioning:
        """t (B,) or (B, N), y (B,) → c = t_embed(t) + y_embed(y), per token, by distinct level."""
        if t.dim() == 1:  # shared by every token
            return Conditioning((self.t_embedder(t) + self.y_embedder(y))[:, None, :])  # (B, 1, D)
        b, n = t.shape
        sample = torch.arange(b, device=t.device).repeat_interleave(n)  # (B·N,)
        keys = torch.stack([sample.to(t.dtype), t.reshape(-1)], dim=1)  # (B·N, 2): (sample, time)
        uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)  # (U, 2), (B·N,)
        levels = self.t_embedder(uniq[:, 1]) + self.y_embedder(y[uniq[:, 0].long()])  # (U, D)
        return Conditioning(levels, inverse.view(b, n))

    def forward_with_taps(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        taps: tuple[int, ...] = (),
        stop_after: int | None = None,
        attn_groups: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, dict[int, torch.Tensor]]:
        """Velocity (same shape as x) and the hidden states after the requested blocks (1-indexed).

        `stop_after=k` runs blocks 1..k only (teachers) and returns velocity None.
        `attn_groups` (B, N) restricts attention to tokens of the same group.
        """
        h = self.modality.embed(x)  # (B, N, D)
        c = self.condition(t, y)  # levels of c: (U, D) per token, (B, 1, D) shared
        mask = group_attention_mask(attn_groups) if attn_groups is not None else None
        hidden: dict[int, torch.Tensor] = {}
        last = self.depth if stop_after is None else stop_after
        for i, block in enumerate(self.blocks[:last], start=1):
            h = block(h, c, mask)
            if i in taps:
                hidden[i] = h
        if stop_after is not None:
            return None, hidden
        out = self.final_layer(h, c)  # (B, N, patch volume · C)
        return self.modality.unpatchify(out), hidden

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, taps=None, stop_after=None, attn_groups=None):
        """Velocity (B, C, H, W); with `taps` or `stop_after`, (velocity | None, {block: (B, N, D)}).

        Methods call the model through `forward` (not `forward_with_taps`) so DistributedDataParallel
        sees every pass.
        """
        v, hidden = self.forward_with_taps(x, t, y, taps or (), stop_after, attn_groups)
        return v if taps is None and stop_after is None else (v, hidden)

    def forward_with_cfg(self, x, t, y, cfg_scale: float) -> torch.Tensor:
        """v_u + w·(v_c − v_u) in one batched pass."""
        v = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, self.null_class)]))
        v_c, v_u = v.chunk(2)
        return v_u + cfg_scale * (v_c - v_u)
