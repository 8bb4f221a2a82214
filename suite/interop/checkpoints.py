"""Published SiT-family checkpoints → the suite's SiT, in the suite's time convention (t = 1 noise).

Every source has the same transformer (DiT/SiT blocks); they differ in four places, each folded
into the weights so the imported model is a plain suite SiT:

| source              | patch embed        | time fed to the net | output                        |
|---------------------|--------------------|---------------------|-------------------------------|
| `selfflow-official` | Linear (c, p1, p2) | 1 − t               | −(first C of 2C channels)     |
| `sit` (willisma)    | Conv2d             | 1 − t (t = 1 data)  | −(first C of 2C if learn-σ)   |
| `repa`              | Conv2d             | t (t = 1 noise)     | as is (C channels; projectors dropped) |
| `dit`               | refused: a DDPM ε / σ predictor on 1000 discrete steps, not a velocity field |

- time flip: the sinusoidal features of 1 − t are a fixed linear map of those of t
  (cos ω(1−t) = cos ω·cos ωt + sin ω·sin ωt, sin ω(1−t) = sin ω·cos ωt − cos ω·sin ωt), so the
  flip is folded into the first timestep-MLP layer: W' = W·M. Exact up to float rounding.
- negation and the learn-sigma channel split are folded into the final linear layer (rows of the
  velocity channels, negated).
- the class table keeps its last row as the null class (official: 1001 classes, 1000 = null;
  SiT/REPA: 1000 + the CFG row), which is the suite's `null_class = num_classes`.
- the fixed 2-D sin-cos positions are checked against the suite's (same MAE/DiT formula).
Only `torch.load(weights_only=True)` (plus argparse.Namespace, which SiT/REPA store as `args`)
or safetensors are used to read files.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from suite.errors import CheckpointError, MissingFileError, SuiteError
from suite.models import model_spec
from suite.models.modality import timestep_frequencies


@dataclass(frozen=True)
class SourceLayout:
    name: str
    linear_patch_embed: bool  # Linear over (c, p1, p2) features instead of Conv2d
    time_flip: bool  # the network is fed 1 − t
    negate: bool  # the velocity is the negated network output
    note: str


SOURCES = {
    "selfflow-official": SourceLayout("selfflow-official", True, True, True,
                                      "black-forest-labs/Self-Flow SelfFlowPerTokenDiT (wrapper: 1 − t in, −output)"),
    "sit": SourceLayout("sit", False, True, True, "willisma/SiT (t = 1 data, velocity data − noise)"),
    "repa": SourceLayout("repa", False, False, False, "sihyun-yu/REPA SiT (t = 1 noise, velocity noise − data)"),
}
DIT_REFUSAL = (
    "DiT checkpoints are not imported: DiT predicts the noise ε (and σ) of a discrete 1000-step DDPM "
    "schedule, not a flow velocity, so sampling it with the suite's flow samplers would be wrong; "
    "use a SiT or REPA checkpoint of the same architecture instead"
)
ALL_SOURCES = (*SOURCES, "dit")
# parameters that belong to training-time heads, dropped on import
_DROPPED = ("projectors.", "projector.")
# hidden size → heads of the published SiT/DiT sizes (head count is not visible in the weights)
_PUBLISHED_HEADS = {1152: 16, 1024: 16, 768: 12, 384: 6}


def _unwrap(obj) -> dict:
    """A checkpoint file's weights: EMA first (what papers evaluate), then model / state_dict."""
    if not isinstance(obj, dict):
        raise CheckpointError("checkpoint holds no state dict")
    for key in ("ema", "model", "state_dict", "module"):
        if key in obj and isinstance(obj[key], dict):
            return _unwrap(obj[key]) if not any(torch.is_tensor(v) for v in obj[key].values()) else obj[key]
    return obj


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a .pt / .pth / .safetensors checkpoint, prefixes like `module.` removed."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                sd = _unwrap(torch.load(path, map_location="cpu", weights_only=True))
    except SuiteError:
        raise
    except Exception as e:
        raise CheckpointError(f"cannot read {path} ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    out = {}
    for k, v in sd.items():
        if torch.is_tensor(v):
            out[re.sub(r"^(module\.|_orig_mod\.|model\.)+", "", k)] = v
    return out


def flip_time_matrix(freq_dim: int) -> torch.Tensor:
    """(F, F) M with features(1 − t) = M · features(t), features = [cos ωt, sin ωt] (suite's embedder)."""
    w = timestep_frequencies(freq_dim).double()  # (F/2,)
    c, s = torch.diag(torch.cos(w)), torch.diag(torch.sin(w))
    return torch.cat([torch.cat([c, s], 1), torch.cat([s, -c], 1)], 0)  # (F, F)


@dataclass
class Imported:
    state_dict: dict[str, torch.Tensor]  # suite SiT keys
    data_shape: tuple[int, int, int]
    num_classes: int
    dims: dict  # hidden_size, depth, num_heads, patch_size, mlp_ratio
    dropped: list[str]
    learn_sigma: bool


def _need(sd: dict, key: str, source: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"not a {source} checkpoint: no '{key}' entry")
    return sd[key]


def convert(sd: dict[str, torch.Tensor], source: str, in_channels: int = 4, num_heads: int | None = None) -> Imported:
    """Source state dict → suite SiT state dict (plus the sizes to build it)."""
    if source == "dit":
        raise SuiteError(DIT_REFUSAL)
    if source not in SOURCES:
        raise SuiteError(f"unknown checkpoint source {source!r}; allowed: {', '.join(ALL_SOURCES)}")
    lay = SOURCES[source]
    sd = {k: v.float() for k, v in sd.items()}
    embed_w = _need(sd, "x_embedder.proj.weight", source)
    hidden = embed_w.shape[0]
    if lay.linear_patch_embed:
        if embed_w.dim() != 2:
            raise CheckpointError(f"{source}: x_embedder.proj.weight should be a Linear weight, got {tuple(embed_w.shape)}")
        p = math.isqrt(embed_w.shape[1] // in_channels)
        if p * p * in_channels != embed_w.shape[1]:
            raise CheckpointError(f"{source}: patch features {embed_w.shape[1]} ≠ p²·{in_channels}; pass --in-channels")
        conv_w = embed_w.reshape(hidden, in_channels, p, p)  # (c, p1, p2) feature order = Conv2d's
    else:
        if embed_w.dim() != 4:
            hint = " (a Linear patch embedding: try --from selfflow-official)" if embed_w.dim() == 2 else ""
            raise CheckpointError(f"{source}: x_embedder.proj.weight should be a Conv2d weight, got {tuple(embed_w.shape)}{hint}")
        conv_w, in_channels, p = embed_w, embed_w.shape[1], embed_w.shape[2]
    depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))), default=-1)
    if depth == 0:
        raise CheckpointError(f"not a {source} checkpoint: no transformer blocks")
    pos = _need(sd, "pos_embed", source)  # (1, N, D)
    grid = math.isqrt(pos.shape[1])
    heads = num_heads or _PUBLISHED_HEADS.get(hidden)
    if heads is None:
        raise SuiteError(f"hidden size {hidden} is not a published SiT size: pass --num-heads")
    mlp_hidden = _need(sd, "blocks.0.mlp.fc1.weight", source).shape[0]
    table = _need(sd, "y_embedder.embedding_table.weight", source)  # (classes + null, D)
    lin_w, lin_b = _need(sd, "final_layer.linear.weight", source), _need(sd, "final_layer.linear.bias", source)
    out_ch = lin_w.shape[0] // (p * p)
    if out_ch not in (in_channels, 2 * in_channels):
        raise CheckpointError(f"{source}: final layer has {lin_w.shape[0]} outputs, not p²·C or p²·2C")
    learn_sigma = out_ch == 2 * in_channels

    out: dict[str, torch.Tensor] = {"modality.proj.weight": conv_w, "modality.proj.bias": _need(sd, "x_embedder.proj.bias", source)}
    t0 = _need(sd, "t_embedder.mlp.0.weight", source)  # (D, F)
    out["t_embedder.mlp.0.weight"] = (t0.double() @ flip_time_matrix(t0.shape[1])).float() if lay.time_flip else t0
    for k in ("t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias"):
        out[k] = _need(sd, k, source)
    out["y_embedder.weight"] = table
    names = {"attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.2",
             "adaLN_modulation.1": "adaLN_modulation.1"}
    for i in range(depth):
        for src, dst in names.items():
            for wb in ("weight", "bias"):
                out[f"blocks.{i}.{dst}.{wb}"] = _need(sd, f"blocks.{i}.{src}.{wb}", source)
    for wb in ("weight", "bias"):
        out[f"final_layer.adaLN_modulation.1.{wb}"] = _need(sd, f"final_layer.adaLN_modulation.1.{wb}", source)
    # final linear rows are ordered (p, q, c) with c over out_ch: keep the velocity channels c < C
    rows = torch.arange(lin_w.shape[0]).reshape(p * p, out_ch)[:, :in_channels].reshape(-1)  # (p²·C,)
    sign = -1.0 if lay.negate else 1.0
    out["final_layer.linear.weight"], out["final_layer.linear.bias"] = sign * lin_w[rows], sign * lin_b[rows]

    used = {"x_embedder.proj.weight", "x_embedder.proj.bias", "pos_embed", "y_embedder.embedding_table.weight",
            "final_layer.linear.weight", "final_layer.linear.bias", "final_layer.adaLN_modulation.1.weight",
            "final_layer.adaLN_modulation.1.bias", *(k for k in sd if k.startswith("t_embedder."))}
    used |= {f"blocks.{i}.{src}.{wb}" for i in range(depth) for src in names for wb in ("weight", "bias")}
    dropped = sorted(k for k in sd if k not in used and k.startswith(_DROPPED))
    unknown = sorted(k for k in sd if k not in used and not k.startswith(_DROPPED))
    if unknown:
        raise CheckpointError(f"{source}: {len(unknown)} entries the suite's SiT has no place for, e.g. {unknown[:3]}")
    dims = dict(hidden_size=hidden, depth=depth, num_heads=heads, patch_size=p, mlp_ratio=mlp_hidden / hidden)
    imp = Imported(out, (in_channels, grid * p, grid * p), table.shape[0] - 1, dims, dropped, learn_sigma)
    _check_positions(pos, imp)
    return imp


def build_imported_model(imp: Imported):
    from suite.models.sit import SiT

    model = SiT(data_shape=imp.data_shape, num_classes=imp.num_classes, **imp.dims)
    model.load_state_dict(imp.state_dict)
    return model.eval()


def _check_positions(pos: torch.Tensor, imp: Imported) -> None:
    from suite.models.modality import sincos_2d

    grid = imp.data_shape[1] // imp.dims["patch_size"]
    ours = torch.from_numpy(sincos_2d(imp.dims["hidden_size"], grid, grid)).float()  # (N, D)
    if not torch.allclose(pos.reshape(ours.shape).float(), ours, atol=1e-4):
        raise CheckpointError("the checkpoint's positional embedding is not the fixed 2-D sin-cos one the suite uses")


def imported_config(imp: Imported, source: str, vae: str | None = None) -> dict:
    """The run config of an imported checkpoint: its sizes, latent data (no dataset needed to sample),
    and the SDE sampler the SiT/REPA/Self-Flow papers report FID-50K with (250 steps, last step 0.04)."""
    d = imp.dims
    return {
        "name": f"imported-{source}",
        "data": {"name": "latents", "root": None, "vae": vae, "num_classes": imp.num_classes},
        "model": {"preset": f"SiT-XL/{d['patch_size']}", **d},
        "method": {"name": "vanilla"},
        "sampling": {"sampler": "sde", "steps": 250, "sde_last_step": 0.04, "cfg_scale": 1.0},
    }


def import_checkpoint(path, source: str, out_dir, in_channels: int = 4, num_heads: int | None = None,
                      vae: str | None = None, force: bool = False) -> Imported:
    """Write a run directory (config.yaml, checkpoints/latest.pt, state.json) that `suite sample` and
    `suite eval` load like a trained run."""
    import json

    from suite.config import config_from_dict, config_hash, dump_config
    from suite.train.checkpoint import LATEST, save_atomic

    if source == "dit":
        raise SuiteError(DIT_REFUSAL)
    if source not in SOURCES:
        raise SuiteError(f"unknown checkpoint source {source!r}; allowed: {', '.join(ALL_SOURCES)}")
    out_dir = Path(out_dir)
    if (out_dir / "config.yaml").exists() and not force:
        raise SuiteError(f"{out_dir} already holds a run; choose another --out (or pass --force)")
    imp = convert(read_state_dict(path), source, in_channels, num_heads)
    build_imported_model(imp)  # fails here, before anything is written, if the sizes do not fit
    cfg = config_from_dict(imported_config(imp, source, vae))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(dump_config(cfg))
    ckpt = {"model": imp.state_dict, "ema": imp.state_dict, "step": 0, "images_seen": 0,
            "model_spec": model_spec(cfg.model, imp.data_shape, imp.num_classes),  # rebuilt without data
            "imported_from": {"source": source, "path": str(Path(path).resolve()), "learn_sigma": imp.learn_sigma,
                              "dropped": imp.dropped}}
    save_atomic(ckpt, out_dir / "checkpoints" / LATEST)
    state = {"status": "finished", "images_seen": 0, "config_hash": config_hash(cfg), "model_spec": ckpt["model_spec"],
             "imported_from": ckpt["imported_from"]}
    (out_dir / "state.json").write_text(json.dumps(state, indent=1))
    return imp
