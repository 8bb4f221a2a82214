"""Published checkpoints import with the source's own velocity formula (time flip, negation, channel split).

Each source is restated here at a tiny size, independently of suite.models and suite.interop: its
state-dict key names and shapes, the fixed MAE/DiT positions, and a plain functional forward. The
imported suite model must give the source's velocity in the suite convention (t = 1 noise).
"""
import argparse
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from suite.cli import main

D, DEPTH, HEADS, P, C, SIZE, CLASSES = 32, 2, 4, 2, 4, 8, 10
GRID = SIZE // P


def mae_positions(dim: int, grid: int) -> np.ndarray:
    """The MAE / DiT get_2d_sincos_pos_embed formula (meshgrid(w, h); first half from grid[0])."""
    gh, gw = np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32)
    g = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)

    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one(dim // 2, g[0]), one(dim // 2, g[1])], axis=1)


def source_state_dict(source: str, seed: int = 0) -> dict:
    """Random weights under the source's exact key names and shapes (nothing zero, so nothing hides)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    out_ch = 2 * C if source in ("selfflow-official", "sit") else C  # learn-sigma for official and SiT
    rows = CLASSES + 1  # official: 1001 (1000 = null); SiT/REPA: 1000 + CFG row
    sd = {
        "x_embedder.proj.weight": r(D, C * P * P) if source == "selfflow-official" else r(D, C, P, P),
        "x_embedder.proj.bias": r(D),
        "pos_embed": torch.from_numpy(mae_positions(D, GRID)).float()[None],
        "t_embedder.mlp.0.weight": r(D, 256), "t_embedder.mlp.0.bias": r(D),
        "t_embedder.mlp.2.weight": r(D, D), "t_embedder.mlp.2.bias": r(D),
        "y_embedder.embedding_table.weight": r(rows, D),
        "final_layer.linear.weight": r(P * P * out_ch, D), "final_layer.linear.bias": r(P * P * out_ch),
        "final_layer.adaLN_modulation.1.weight": r(2 * D, D), "final_layer.adaLN_modulation.1.bias": r(2 * D),
    }
    for i in range(DEPTH):
        for name, shape in (("attn.qkv", (3 * D, D)), ("attn.proj", (D, D)), ("mlp.fc1", (4 * D, D)),
                            ("mlp.fc2", (D, 4 * D)), ("adaLN_modulation.1", (6 * D, D))):
            sd[f"blocks.{i}.{name}.weight"], sd[f"blocks.{i}.{name}.bias"] = r(*shape), r(shape[0])
    if source == "repa":  # REPA's projector MLP (dropped on import)
        sd.update({"projectors.0.0.weight": r(64, D), "projectors.0.0.bias": r(64)})
    if source == "selfflow-official":  # the self-distillation head (dropped on import)
        sd.update({"projector.linear1.weight": r(2 * D, D), "projector.linear1.bias": r(2 * D)})
    return sd


def source_net(sd: dict, tokens: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DiT/SiT body on embedded tokens (B, N, D), scalar time (B,) as the source sees it → (B, N, p²·C_out)."""
    half = 128
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    temb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    temb = F.linear(F.silu(F.linear(temb, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
                    sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    c = temb + sd["y_embedder.embedding_table.weight"][y]  # (B, D)
    x = tokens + sd["pos_embed"]
    b, n, d = x.shape

    def lin(h, k):
        return F.linear(h, sd[k + ".weight"], sd[k + ".bias"])

    def ln(h):
        return F.layer_norm(h, (d,), eps=1e-6)

    for i in range(DEPTH):
        k = f"blocks.{i}."
        sh1, sc1, g1, sh2, sc2, g2 = lin(F.silu(c), k + "adaLN_modulation.1").chunk(6, dim=-1)
        h = ln(x) * (1 + sc1[:, None]) + sh1[:, None]
        q, kk, v = lin(h, k + "attn.qkv").reshape(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(d // HEADS), dim=-1)
        x = x + g1[:, None] * lin((att @ v).transpose(1, 2).reshape(b, n, d), k + "attn.proj")
        h = ln(x) * (1 + sc2[:, None]) + sh2[:, None]
        x = x + g2[:, None] * lin(F.gelu(lin(h, k + "mlp.fc1"), approximate="tanh"), k + "mlp.fc2")
    sh, sc = lin(F.silu(c), "final_layer.adaLN_modulation.1").chunk(2, dim=-1)
    return lin(ln(x) * (1 + sc[:, None]) + sh[:, None], "final_layer.linear")


def conv_tokens(sd, x):
    return F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=P).flatten(2).transpose(1, 2)


def unpatchify_pqc(out, c):  # SiT/DiT layout (p, q, c)
    b = out.shape[0]
    return torch.einsum("nhwpqc->nchpwq", out.reshape(b, GRID, GRID, P, P, c)).reshape(b, c, SIZE, SIZE)


def official_velocity(sd, x, t, y):
    """The official wrapper: patchify (c p1 p2), inner(x, 1 − t), reorder (p q c)→(c p q), keep the
    first half (learn-sigma), unpatchify, negate."""
    b = x.shape[0]
    tokens = x.reshape(b, C, GRID, P, GRID, P).permute(0, 2, 4, 1, 3, 5).reshape(b, GRID * GRID, C * P * P)
    out = source_net(sd, F.linear(tokens, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"]), 1 - t, y)
    out = out.reshape(b, GRID * GRID, P, P, 2 * C).permute(0, 1, 4, 2, 3).reshape(b, GRID * GRID, 2 * C * P * P)
    out = out[:, :, : C * P * P].reshape(b, GRID, GRID, C, P, P).permute(0, 3, 1, 4, 2, 5).reshape(b, C, SIZE, SIZE)
    return -out


def sit_velocity(sd, x, t, y):
    """willisma/SiT: t = 1 data, output data − noise, learn-sigma chunk → v_suite(x, t) = −v_sit(x, 1 − t)."""
    out = unpatchify_pqc(source_net(sd, conv_tokens(sd, x), 1 - t, y), 2 * C)
    return -out.chunk(2, dim=1)[0]


def repa_velocity(sd, x, t, y):
    """REPA: linear path with t = 1 noise, target noise − data: the suite convention already."""
    return unpatchify_pqc(source_net(sd, conv_tokens(sd, x), t, y), C)


FORMULAS = {"selfflow-official": official_velocity, "sit": sit_velocity, "repa": repa_velocity}


def random_inputs(seed=1, b=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, C, SIZE, SIZE, generator=g), torch.rand(b, generator=g),
            torch.tensor([0, 7, CLASSES])[:b])  # the last label is the null class


@pytest.mark.parametrize("source", sorted(FORMULAS))
def test_import_reproduces_source_velocity(source):
    from suite.interop.checkpoints import build_imported_model, convert

    sd = source_state_dict(source)
    imp = convert(dict(sd), source, in_channels=C, num_heads=HEADS)
    assert imp.data_shape == (C, SIZE, SIZE) and imp.num_classes == CLASSES and imp.dims["depth"] == DEPTH
    model = build_imported_model(imp)
    x, t, y = random_inputs()
    with torch.no_grad():
        want, got = FORMULAS[source](sd, x, t, y), model(x, t, y)
    assert want.abs().mean() > 0.1  # a real signal, not zeros
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # a converter that forgot the time flip or the sign would be caught:
    if source != "repa":
        assert not torch.allclose(model(x, 1 - t, y), want, atol=1e-3)
    # per-token times equal to the scalar give the same velocity (the suite's per-token path)
    n = model.num_tokens
    with torch.no_grad():
        torch.testing.assert_close(model(x, t[:, None].expand(-1, n).contiguous(), y), want, atol=1e-5, rtol=1e-5)


def test_cli_import_then_load_run_and_sample(tmp_path, capsys):
    from suite.commands.run_loading import load_run

    sd = source_state_dict("repa")
    path = tmp_path / "repa.pt"
    torch.save({"model": {f"module.{k}": v + 1 for k, v in sd.items()}, "ema": sd, "opt": {}, "steps": 4000,
                "args": argparse.Namespace(model="SiT-XL/2", encoder_depth=8)}, path)
    out = tmp_path / "run"
    assert main(["checkpoint", "import", "--from", "repa", str(path), "--out", str(out), "--num-heads", str(HEADS)]) == 0
    assert "dropped 2 training-head tensors" in capsys.readouterr().out
    loaded = load_run(out, device="cpu")
    x, t, y = random_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded.ema(x, t, y), repa_velocity(sd, x, t, y), atol=1e-5, rtol=1e-5)  # EMA, not model
    assert loaded.cfg.sampling.sampler == "sde" and loaded.cfg.sampling.steps == 250
    assert main(["checkpoint", "import", "--from", "repa", str(path), "--out", str(out), "--num-heads", str(HEADS)]) == 2


def test_import_user_errors(tmp_path, capsys):
    sd = source_state_dict("sit")
    path = tmp_path / "dit.pt"
    torch.save(sd, path)
    assert main(["checkpoint", "import", "--from", "dit", str(path), "--out", str(tmp_path / "a")]) == 2
    assert "not a flow velocity" in capsys.readouterr().err
    assert main(["checkpoint", "import", "--from", "sit", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "b")]) == 2
    assert "nope.pt" in capsys.readouterr().err
    # a Linear patch embedding read as SiT: one clear line that names the right source
    torch.save(source_state_dict("selfflow-official"), path)
    assert main(["checkpoint", "import", "--from", "sit", str(path), "--out", str(tmp_path / "c"), "--num-heads", "4"]) == 2
    err = capsys.readouterr().err
    assert "selfflow-official" in err and err.count("\n") == 1
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, path)
    assert main(["checkpoint", "import", "--from", "sit", str(path), "--out", str(tmp_path / "d"), "--num-heads", "4"]) == 2
    assert "extra.weight" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_imported_official_run_samples_an_adm_npz_through_its_vae(tmp_path):
    """No latent shards: `suite sample --format npz` decodes through data.vae alone (a tiny random VAE)."""
    import numpy as np
    from diffusers import AutoencoderKL

    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                  up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
                  latent_channels=C, norm_num_groups=4, sample_size=16).save_pretrained(tmp_path / "vae")
    path = tmp_path / "selfflow.pt"
    torch.save({"ema": source_state_dict("selfflow-official")}, path)
    run = tmp_path / "run"
    assert main(["checkpoint", "import", "--from", "selfflow-official", str(path), "--out", str(run),
                 "--num-heads", str(HEADS), "--vae", str(tmp_path / "vae")]) == 0
    out = tmp_path / "npz"
    assert main(["sample", str(run), "--n", "3", "--format", "npz", "--out", str(out),
                 "--set", "sampling.steps=2", "--set", "sampling.sampler=euler"]) == 0
    with np.load(out / "samples.npz") as z:
        assert z["arr_0"].shape == (3, 2 * SIZE, 2 * SIZE, 3) and z["arr_0"].dtype == np.uint8
        assert set(z["arr_1"].tolist()) <= set(range(CLASSES))
