"""MM-DiT backbone: published sizes, per-token timesteps, taps, attention groups, and every method on it."""
import json

import pytest
import torch

from suite.config import ModelConfig, load_run_config
from suite.models import build_model, mmdit
from suite.models.mmdit import MMDiT
from suite.models.presets import PUBLISHED_MMDIT_PARAMS, parse_preset
from suite.models.sit import Conditioning
from suite.models.token_times import TokenTimes, per_token_times


@pytest.mark.parametrize("preset", sorted(PUBLISHED_MMDIT_PARAMS))
def test_scaling_grid_parameter_counts_match_the_paper(preset):
    """SD-VAE latents 32×32×4, patch 2 → 256 tokens (the T2I setting); within 5 % of 290M/420M/625M/1B."""
    with torch.device("meta"):
        m = build_model(ModelConfig(backbone="mmdit", preset=preset), (4, 32, 32), 1000)
    n = sum(p.numel() for p in m.parameters())
    assert abs(n / PUBLISHED_MMDIT_PARAMS[preset] - 1) < 0.05, (preset, n)
    assert m.num_tokens == 256 and m.hidden_size == 1152 and m.num_heads == 16
    if preset == "MMDiT-D21/2":
        assert (m.num_double, m.depth - m.num_double) == (7, 14)


def _tiny(text_time="mean", double=2, depth=4) -> MMDiT:
    torch.manual_seed(0)
    m = MMDiT((3, 8, 8), 10, hidden_size=32, depth=depth, num_heads=2, double_blocks=double, text_time=text_time)
    for p in m.parameters():  # leave the zero init so every path carries signal
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.1)
    return m.eval()


@pytest.mark.parametrize("rule", mmdit.TEXT_TIME_RULES)
def test_equal_per_token_times_equal_the_scalar_time(rule):
    m = _tiny(rule)
    x, y, t = torch.randn(2, 3, 8, 8), torch.randint(0, 11, (2, 5)), torch.rand(2)
    torch.testing.assert_close(m(x, t[:, None].expand(2, m.num_tokens).contiguous(), y), m(x, t, y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rule", mmdit.TEXT_TIME_RULES)
def test_per_token_modulation_equals_a_brute_force_per_token_computation(rule, monkeypatch):
    m = _tiny(rule)
    x, y = torch.randn(3, 3, 8, 8), torch.randint(0, 11, (3, 4))
    t, s = torch.rand(3), torch.rand(3)
    times = TokenTimes.dual(t, s, torch.rand(3, m.num_tokens) < 0.3)  # two levels per sample, as Self-Flow feeds
    v = m(x, times, y)  # modulation per level, selected per token (static shapes)

    def per_token(t_, emb):  # brute force: every token embeds its own time, nothing shared
        return Conditioning(emb(per_token_times(t_, m.num_tokens)))  # (B, N, D)

    monkeypatch.setattr(mmdit, "data_conditioning", per_token)
    torch.testing.assert_close(m(x, times.per_token(), y), v, rtol=1e-5, atol=1e-6)


def test_text_time_rules_pick_the_documented_time():
    """Under dual times the text stream sees min(t, s), the base t, the mean modulation, or no time."""
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 11, (2, 3))
    t, s = torch.tensor([0.8, 0.3]), torch.tensor([0.2, 0.9])
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :4] = True  # 4 of 16 tokens at s: the base time is t
    tau = torch.where(mask, s[:, None], t[:, None])
    outs = {}
    for rule in mmdit.TEXT_TIME_RULES:
        m = _tiny(rule)
        data = mmdit.data_conditioning(tau, m.t_embedder)
        text = mmdit.TextTime(rule, tau, data, m.t_embedder).modulation(m.txt_modulation)  # (B, 1, 6D)
        outs[rule] = text
        expect = {"min": m.txt_modulation(m.t_embedder(torch.minimum(t, s))[:, None]),
                  "base": m.txt_modulation(m.t_embedder(t)[:, None]),
                  "mean": m.txt_modulation(m.t_embedder(tau)).mean(1, keepdim=True),
                  "none": m.txt_modulation(torch.zeros(2, 1, 32))}[rule]
        torch.testing.assert_close(text, expect, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(outs["min"], outs["base"])


def test_taps_return_data_tokens_and_stop_after_matches_the_full_pass():
    m = _tiny(depth=5, double=2)
    x, y, t = torch.randn(2, 3, 8, 8), torch.randint(0, 11, (2, 3)), torch.rand(2, 16)
    v, hidden = m(x, t, y, taps=(1, 2, 3, 5))
    assert v.shape == x.shape and all(h.shape == (2, 16, 32) for h in hidden.values())
    for k in (2, 3):  # the last double block, the first single block
        none, early = m(x, t, y, taps=(k,), stop_after=k)
        assert none is None and set(early) == {k}
        torch.testing.assert_close(early[k], hidden[k])
    assert not torch.allclose(hidden[3], hidden[5])


def test_attention_groups_block_information_flow_also_through_the_text():
    m = _tiny()
    x, y, t = torch.randn(1, 3, 8, 8), torch.randint(0, 11, (1, 3)), torch.rand(1)
    groups = (torch.arange(16) >= 8).long()[None]  # top half / bottom half of the 4×4 token grid
    x2 = x.clone()
    x2[:, :, 4:] += 1.0  # change only group 1's pixels (rows 4..7 = token rows 2..3)
    _, a = m(x, t, y, taps=(4,), attn_groups=groups)
    _, b = m(x2, t, y, taps=(4,), attn_groups=groups)
    torch.testing.assert_close(a[4][:, :8], b[4][:, :8])  # group 0 never saw group 1
    _, c = m(x2, t, y, taps=(4,))
    assert not torch.allclose(a[4][:, :8], c[4][:, :8])  # without groups it does


def test_class_labels_are_one_token_and_cfg_uses_the_null_token():
    m = _tiny()
    x, t = torch.randn(2, 3, 8, 8), torch.rand(2)
    labels = torch.tensor([3, 7])
    torch.testing.assert_close(m(x, t, labels), m(x, t, labels[:, None]))
    null = torch.full((2, 1), m.null_class)
    torch.testing.assert_close(m.forward_with_cfg(x, t, labels[:, None], 1.0), m(x, t, labels[:, None]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.forward_with_cfg(x, t, labels[:, None], 0.0), m(x, t, null), rtol=1e-5, atol=1e-5)


def test_caption_dropout_is_one_draw_per_sample():
    from suite.flow import TimeSampler, TimeSamplerConfig
    from suite.methods.vanilla import VanillaConfig, VanillaFlowMatching

    m = _tiny()
    method = VanillaFlowMatching(VanillaConfig(name="vanilla", label_dropout=0.5), m, TimeSampler(TimeSamplerConfig()))
    torch.manual_seed(0)
    y = torch.randint(0, 10, (400, 6))
    dropped = method.drop_labels(y)
    null_rows = (dropped == m.null_class).all(1)
    assert torch.equal(dropped[~null_rows], y[~null_rows])  # a row is dropped whole or kept whole
    assert 0.4 < null_rows.float().mean() < 0.6


def _mmdit_cfg(tiny_cfg, **over):
    return tiny_cfg(**{"model": {"backbone": "mmdit", "preset": "MMDiT-Nano/2", "hidden_size": 32, "depth": 4,
                                 "num_heads": 2}, **over})


@pytest.mark.parametrize("method", ["vanilla", "selfflow", "sra", "selfflow-ablation"])
def test_methods_train_on_mmdit_unchanged(method, tiny_cfg):
    from suite.train import train

    m = {"name": "selfflow", "attention_separation": True, "second_time": "per_token"} if method == "selfflow-ablation" else {"name": method}
    res = train(load_run_config(_mmdit_cfg(tiny_cfg, name=method, method=m, **{"train.total_images": 96})))
    rows = [json.loads(l) for l in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert res.status == "finished" and len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    if method != "vanilla":
        assert any("train/loss_rep" in r for r in rows)


def test_repa_trains_on_mmdit(tiny_cfg, tmp_path):
    from suite.cli import main
    from suite.train import train

    enc = tmp_path / "enc"
    assert main(["encoder", "train", "--dataset", "digits", "--kind", "classifier", "--out", str(enc), "--steps", "1",
                 "--batch-size", "8", "--embed-dim", "16", "--depth", "1", "--num-heads", "2", "--threads", "1"]) == 0
    method = {"name": "repa", "encoders": [{"name": "local", "path": str(enc)}], "projector_hidden": 16}
    res = train(load_run_config(_mmdit_cfg(tiny_cfg, name="repa", method=method, **{"train.total_images": 64})))
    assert res.status == "finished"


def test_mmdit_selfflow_resumes_exactly(tiny_cfg):
    from suite.train import train

    over = {"train.total_images": 256, "train.ckpt_every_images": 128}
    full = train(load_run_config(_mmdit_cfg(tiny_cfg, name="full", **over)))
    part = train(load_run_config(_mmdit_cfg(tiny_cfg, name="killed", **over, **{"train.max_steps": 6})))
    assert part.status == "interrupted"
    resumed = train(load_run_config(_mmdit_cfg(tiny_cfg, name="killed", **over)))
    read = lambda r: {x["images_seen"]: x["train/loss"] for x in map(json.loads, (r.run_dir / "metrics.jsonl").read_text().splitlines()) if "train/loss" in x}
    a, b = read(full), read(resumed)
    assert sorted(a) == sorted(b) == list(range(32, 257, 32))
    torch.testing.assert_close(torch.tensor([b[k] for k in sorted(b)]), torch.tensor([a[k] for k in sorted(a)]), rtol=1e-5, atol=1e-6)


def test_backbone_and_preset_must_agree():
    from suite.errors import ConfigError

    with pytest.raises(ConfigError, match="model.backbone"):
        build_model(ModelConfig(backbone="sit", preset="MMDiT-Nano/2"), (3, 8, 8), 10)
    from suite.models import check_condition

    with pytest.raises(ConfigError, match="text conditions need model.backbone=mmdit"):
        check_condition(build_model(ModelConfig(), (3, 8, 8), 10), "text")
    check_condition(build_model(ModelConfig(backbone="mmdit", preset="MMDiT-Nano/2"), (3, 8, 8), 10), "text")
    assert parse_preset("MMDiT-D21/2")["double_blocks"] == 7
