"""SiT / DiT transformer with per-token adaLN-Zero conditioning (selfflow.md §3).

- timesteps (suite.models.token_times): (B,) shared, (B, N) per token, or `TokenTimes` (K levels per
  sample + a per-token index, as dual-timestep training has). Each time goes through the sinusoidal
  + MLP embedder and the class embedding (per sample) is added: conditioning c is (B, N, D) in effect.
- every adaLN-Zero modulation (6 per block, 2 in the final layer) is a function of c alone, so it
  is computed per level (B, K) and selected per token (one-hot matmuls): static shapes, no host sync.
- hidden-state taps after any block (1-indexed) so alignment methods read features without forking.
- class index `num_classes` is the null class (CFG / dropped label).
Time convention: suite.flow (t = 1 noise). This model takes that t as is.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from suite.models.init import init_adaln_zero
from suite.models.modality import make_modality, timestep_frequencies
from suite.models.token_times import Times, TokenTimes


def modulate_plus_one(x: torch.Tensor, shift: torch.Tensor, one_plus_scale: torch.Tensor) -> torch.Tensor:
    """adaLN's x·(1 + scale) + shift, with 1 + scale already formed (per level: `modulation_pieces`),
    as one fused op."""
    return torch.addcmul(shift, x, one_plus_scale)  # x (B, N, D); shift, 1 + scale (B, N|1, D)


def modulation_pieces(out: torch.Tensor, chunks: int, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """A modulation network's output (..., chunks·D) → `chunks` pieces (..., D), those in `scales` as 1 + piece."""
    pieces = list(out.chunk(chunks, dim=-1))
    for i in scales:
        pieces[i] = 1 + pieces[i]
    return pieces


class Conditioning:
    """Per-token conditioning stored by level.

    `levels` (B, K, D) and `times` a TokenTimes: K levels per sample, reaching each token through its
    level's one-hot (dual timesteps: K = 2, so adaLN costs 2/N of the per-token computation,
    measuring.md §5). `levels` (B, 1, D) (shared time) or (B, N, D) (arbitrary per-token times) with
    `times` None: broadcast as is. Every shape is fixed by (B, K, N), never by the data.

    Blocks modulate with per-level pieces (`level_modulations`, then `modulate` / `add_gated`): a
    level's shift enters through one `baddbmm` (one-hot @ shift added onto x·(1 + scale)), so no
    (B, N, D) shift is ever written; scales and gates reach tokens by a (B, N, K) @ (B, K, D) matmul,
    whose backward is one matmul too. On a CPU this halves the per-token modulation's extra cost
    against selecting every piece per token (docs/PERFORMANCE.md).
    """

    def __init__(self, levels: torch.Tensor, times: TokenTimes | None = None):
        self.levels, self.times = levels, times
        self._one_hot: dict[torch.dtype, torch.Tensor] = {}

    def one_hot(self, dtype: torch.dtype) -> torch.Tensor:
        """(B, N, K): which level each token has, built once per dtype."""
        if dtype not in self._one_hot:
            self._one_hot[dtype] = self.times.one_hot(dtype)
        return self._one_hot[dtype]

    def per_token(self, piece: torch.Tensor) -> torch.Tensor:
        """A per-level piece (B, K|1|N, F) → its value at every token (B, N|1, F)."""
        return piece if self.times is None else torch.bmm(self.one_hot(piece.dtype), piece)

    def modulation(self, layer: nn.Module) -> torch.Tensor:
        return self.per_token(layer(self.levels))  # (B, N|1, k·D)

    def level_modulations(self, layer: nn.Module, chunks: int, scales: tuple[int, ...] = ()) -> list[torch.Tensor]:
        """layer(c) as `chunks` per-level pieces (B, K|1|N, D), those in `scales` as 1 + piece
        (for `modulate` / `add_gated`)."""
        return modulation_pieces(layer(self.levels), chunks, scales)

    def modulations(self, layer: nn.Module, chunks: int, scales: tuple[int, ...] = ()) -> list[torch.Tensor]:
        """As `level_modulations`, each piece brought to every token (B, N|1, D): for pieces shared by
        several blocks (MM-DiT's shared modulation), taken per token once."""
        return [self.per_token(p) for p in self.level_modulations(layer, chunks, scales)]

    def modulate(self, x: torch.Tensor, shift: torch.Tensor, one_plus_scale: torch.Tensor) -> torch.Tensor:
        """x (B, N, D) · (1 + scale) + shift, the pieces per level (`level_modulations`)."""
        if self.times is None:
            return modulate_plus_one(x, shift, one_plus_scale)
        return torch.baddbmm(x * self.per_token(one_plus_scale), self.one_hot(shift.dtype), shift)  # (B, N, D)

    def add_gated(self, x: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The gated residual x + gate · y, x and y (B, N, D), the gate per level."""
        return torch.addcmul(x, self.per_token(gate), y)


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
        # x (B, N, D); modulation pieces per level (B, K, D), or (B, 1, D) shared, (B, N, D) per token
        shift_msa, scale1_msa, gate_msa, shift_mlp, scale1_mlp, gate_mlp = c.level_modulations(self.adaLN_modulation, 6, scales=(1, 4))
        x = c.add_gated(x, gate_msa, self.attn(c.modulate(self.norm1(x), shift_msa, scale1_msa), attn_mask))
        return c.add_gated(x, gate_mlp, self.mlp(c.modulate(self.norm2(x), shift_mlp, scale1_mlp)))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: Conditioning) -> torch.Tensor:
        shift, scale1 = c.level_modulations(self.adaLN_modulation, 2, scales=(1,))
        return self.linear(c.modulate(self.norm_final(x), shift, scale1))  # (B, N, patch volume · C)


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
        self.grad_checkpointing = False  # recompute each block in backward (torch.utils.checkpoint)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT init: xavier linears, N(0, 0.02) embedders, zero adaLN and output (adaLN-Zero)."""
        init_adaln_zero(self, [self.y_embedder, self.t_embedder.mlp[0], self.t_embedder.mlp[2]],
                        [*(b.adaLN_modulation[-1] for b in self.blocks), self.final_layer.adaLN_modulation[-1],
                         self.final_layer.linear])

    def condition(self, t: Times, y: torch.Tensor) -> Conditioning:
        """t (B,), (B, N) or TokenTimes; y (B,) → c = t_embed(t) + y_embed(y) by level."""
        y_emb = self.y_embedder(y)[:, None, :]  # (B, 1, D)
        if isinstance(t, TokenTimes):  # K levels per sample, selected per token
            return Conditioning(self.t_embedder(t.levels) + y_emb, t)  # (B, K, D)
        if t.dim() == 1:  # shared by every token
            return Conditioning(self.t_embedder(t)[:, None, :] + y_emb)  # (B, 1, D)
        return Conditioning(self.t_embedder(t) + y_emb)  # (B, N, D): arbitrary per-token times

    def forward_with_taps(
        self,
        x: torch.Tensor,
        t: Times,
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
        c = self.condition(t, y)  # levels of c: (B, K, D), (B, N, D) per token, (B, 1, D) shared
        mask = group_attention_mask(attn_groups) if attn_groups is not None else None
        hidden: dict[int, torch.Tensor] = {}
        last = self.depth if stop_after is None else stop_after
        recompute = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks[:last], start=1):
            h = checkpoint(block, h, c, mask, use_reentrant=False) if recompute else block(h, c, mask)  # (B, N, D)
            if i in taps:
                hidden[i] = h
        if stop_after is not None:
            return None, hidden
        out = self.final_layer(h, c)  # (B, N, patch volume · C)
        return self.modality.unpatchify(out), hidden

    def forward(self, x: torch.Tensor, t: Times, y: torch.Tensor, taps=None, stop_after=None, attn_groups=None):
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
