"""Backbone facts: published sizes, per-token conditioning, taps, attention groups."""
import pytest
import torch

from suite.config import ModelConfig
from suite.models import build_model, default_layers
from suite.models.presets import PUBLISHED_PARAMS


@pytest.mark.parametrize("preset", sorted(PUBLISHED_PARAMS))
def test_preset_parameter_counts_match_published(preset):
    # ImageNet-256 setting: 32×32×4 SD-VAE latents, 1000 classes.
    with torch.device("meta"):
        model = build_model(ModelConfig(preset=preset), (4, 32, 32), 1000)
    n = sum(p.numel() for p in model.parameters())
    # published counts include a learned-sigma output head and the (frozen) positional table: < 0.5 % apart
    assert abs(n - PUBLISHED_PARAMS[preset]) / PUBLISHED_PARAMS[preset] < 0.005


def test_paper_alignment_blocks():
    assert default_layers(28) == (8, 20)  # SiT-XL: l = 8, k = 20
    assert default_layers(12)[0] == 4  # REPA's convention for SiT-B


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    m = build_model(ModelConfig(preset="SiT-Nano/2", hidden_size=32, depth=3, num_heads=2), (3, 8, 8), 5)
    # adaLN-Zero starts at zero: give the modulations weights so the test is not trivially true
    for p in m.parameters():
        if p.dim() > 0 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    return m.eval()


def test_per_token_equal_timesteps_match_scalar():
    m = _tiny_model()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 5])  # 5 = null class
    t = torch.rand(4)
    v_scalar = m(x, t, y)
    v_tokens = m(x, t[:, None].expand(4, m.num_tokens).contiguous(), y)
    torch.testing.assert_close(v_tokens, v_scalar, rtol=1e-5, atol=1e-6)


def test_per_token_timesteps_change_only_through_conditioning():
    m = _tiny_model()
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    tau = torch.full((2, m.num_tokens), 0.3)
    tau[:, 0] = 0.9
    assert not torch.allclose(m(x, tau, y), m(x, torch.full((2,), 0.3), y))


def test_taps_and_stop_after():
    m = _tiny_model()
    x, t, y = torch.randn(2, 3, 8, 8), torch.rand(2), torch.tensor([0, 1])
    v, hidden = m(x, t, y, taps=(1, 3))
    assert set(hidden) == {1, 3} and hidden[1].shape == (2, m.num_tokens, 32)
    none, partial = m(x, t, y, taps=(2,), stop_after=2)
    assert none is None
    _, full = m(x, t, y, taps=(2,))
    torch.testing.assert_close(partial[2], full[2])
    torch.testing.assert_close(v, m(x, t, y))


def test_attention_groups_block_information_flow():
    m = _tiny_model()
    x, t, y = torch.randn(1, 3, 8, 8), torch.rand(1), torch.tensor([0])
    groups = torch.zeros(1, m.num_tokens, dtype=torch.long)
    groups[:, m.num_tokens // 2:] = 1
    _, h = m(x, t, y, taps=(3,), attn_groups=groups)
    x2 = x.clone()
    x2[..., 4:, :] += 1.0  # change only the bottom half: tokens of group 1 (row-major grid)
    _, h2 = m(x2, t, y, taps=(3,), attn_groups=groups)
    top = m.num_tokens // 2
    torch.testing.assert_close(h[3][:, :top], h2[3][:, :top])  # group 0 never saw group 1
    assert not torch.allclose(h[3][:, top:], h2[3][:, top:])


def test_patchify_roundtrip_and_token_expansion():
    m = _tiny_model()
    vals = torch.arange(m.num_tokens, dtype=torch.float).view(1, -1)
    img = m.modality.expand_token_values(vals)  # (1, 1, 8, 8)
    assert img.shape == (1, 1, 8, 8)
    assert img[0, 0, 0, 0] == 0 and img[0, 0, 0, 2] == 1 and img[0, 0, 2, 0] == m.modality.grid


@pytest.mark.parametrize("shape", [(4, 16), (3, 4, 8, 8)], ids=["audio", "video"])
def test_other_modalities_roundtrip_and_train_with_selfflow(shape):
    from suite.flow import TimeSampler, TimeSamplerConfig
    from suite.methods import Batch
    from suite.methods.selfflow import SelfFlow, SelfFlowConfig
    from suite.train.ema import make_ema

    torch.manual_seed(0)
    m = build_model(ModelConfig(preset="SiT-Nano/2", hidden_size=32, depth=4, num_heads=2), shape, 3)
    x = torch.randn(2, *shape)
    tokens = torch.randn(2, m.num_tokens, m.modality.out_dim)
    # unpatchify is the inverse of the patch layout: a per-token value lands on exactly its patch
    vals = torch.arange(m.num_tokens, dtype=torch.float).expand(2, -1)
    spread = m.modality.expand_token_values(vals)
    assert spread.shape == (2, 1, *shape[1:]) and spread.unique().numel() == m.num_tokens
    assert m.modality.unpatchify(tokens).shape == x.shape
    t = torch.rand(2)
    for p in m.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    torch.testing.assert_close(m(x, t[:, None].expand(2, m.num_tokens).contiguous(), torch.tensor([0, 1])),
                               m(x, t, torch.tensor([0, 1])), rtol=1e-5, atol=1e-6)
    method = SelfFlow(SelfFlowConfig(name="selfflow"), m, TimeSampler(TimeSamplerConfig()))
    out = method.loss(Batch(x0=x, y=torch.tensor([0, 2])), m, make_ema(m), 0)
    out.loss.backward()
    assert torch.isfinite(out.loss) and set(out.terms) == {"gen", "rep"}


@pytest.mark.parametrize("levels", [2, 3])
def test_structured_token_times_equal_the_per_token_computation(levels):
    """TokenTimes (K levels, adaLN per level, selected per token) = brute force: every token's
    conditioning and modulations computed on its own, with the (B, N) general path and by hand."""
    from suite.models.sit import Conditioning
    from suite.models.token_times import TokenTimes

    m = _tiny_model()
    x, y = torch.randn(3, 3, 8, 8), torch.tensor([0, 4, 5])
    lv = torch.rand(3, levels)  # (B, K)
    idx = torch.randint(0, levels, (3, m.num_tokens))  # (B, N)
    tt = TokenTimes(lv, idx) if levels != 2 else TokenTimes.dual(lv[:, 0], lv[:, 1], idx.bool())
    tau = tt.per_token()  # (B, N)
    torch.testing.assert_close(tau, lv.gather(1, idx))
    v = m(x, tt, y)
    torch.testing.assert_close(m(x, tau, y), v, rtol=1e-5, atol=1e-6)  # general (B, N) path
    per_token = m.t_embedder(tau) + m.y_embedder(y)[:, None]  # (B, N, D), no sharing
    m.condition = lambda t_, y_: Conditioning(per_token)
    torch.testing.assert_close(m(x, tau, y), v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("levels", [2, 3])
def test_structured_token_times_give_the_per_token_gradients(levels):
    """The per-level select has its own backward (a one-hot matmul): the gradients of every weight
    and of the input must equal those of the general (B, N) per-token path."""
    from suite.models.token_times import TokenTimes

    m = _tiny_model()
    x, y = torch.randn(3, 3, 8, 8), torch.tensor([0, 4, 5])
    lv, idx = torch.rand(3, levels), torch.randint(0, levels, (3, m.num_tokens))  # (B, K), (B, N)
    for p in m.parameters():  # adaLN-Zero starts at zero; random weights make every path count
        torch.nn.init.normal_(p, std=0.1)
    grads = []
    for t in (TokenTimes(lv, idx), TokenTimes(lv, idx).per_token()):
        m.zero_grad()
        xg = x.clone().requires_grad_(True)
        m(xg, t, y).square().mean().backward()
        grads.append([xg.grad, *(p.grad for p in m.parameters())])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_structured_conditioning_has_static_shapes_and_no_unique():
    """Whatever the mask, the conditioning levels are (B, 2, D): no shape depends on the data."""
    from suite.models.token_times import TokenTimes

    m = _tiny_model()
    y = torch.tensor([0, 1])
    for mask in (torch.zeros(2, m.num_tokens, dtype=torch.bool), torch.rand(2, m.num_tokens) < 0.5):
        c = m.condition(TokenTimes.dual(torch.full((2,), 0.3), torch.full((2,), 0.3), mask), y)
        assert c.levels.shape == (2, 2, 32)
        assert c.modulation(m.blocks[0].adaLN_modulation).shape == (2, m.num_tokens, 6 * 32)


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    from suite.models.token_times import TokenTimes

    m = _tiny_model().train()
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    tt = TokenTimes.dual(torch.rand(2), torch.rand(2), torch.rand(2, m.num_tokens) < 0.25)
    grads = []
    for on in (False, True):
        m.grad_checkpointing = on
        m.zero_grad()
        loss = m(x, tt, y).square().mean()
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in m.parameters()]))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=0, atol=0)
    for a, b in zip(grads[1][1], grads[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_dual_timesteps_cost_about_what_one_timestep_costs():
    """adaLN runs once per (sample, level), not once per token (measuring.md §5)."""
    from suite.models.token_times import TokenTimes
    from suite.train.flops import forward_flops

    m = build_model(ModelConfig(preset="SiT-S/2"), (4, 32, 32), 1000)
    x, y = torch.randn(2, 4, 32, 32), torch.tensor([1, 2])
    tt = TokenTimes.dual(torch.full((2,), 0.7), torch.full((2,), 0.2), torch.rand(2, m.num_tokens) < 0.25)
    ratio = forward_flops(m, x, tt, y) / forward_flops(m, x, torch.full((2,), 0.7), y)
    assert 1.0 <= ratio < 1.01
