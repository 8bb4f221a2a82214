"""Self-Flow (selfflow.md §2–4): Dual-Timestep Scheduling statistics and where gradients flow."""
import pytest
import torch

from suite.config import ModelConfig
from suite.flow import TimeSampler, TimeSamplerConfig
from suite.methods import Batch
from suite.methods.selfflow import SelfFlow, SelfFlowConfig
from suite.models import build_model
from suite.models.token_times import TokenTimes
from suite.train.ema import make_ema


def make(depth=6, sampler=None, **cfg):
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="SiT-Nano/2", hidden_size=32, depth=depth, num_heads=2), (1, 8, 8), 10)
    ts = TimeSampler(sampler or TimeSamplerConfig())
    return model, SelfFlow(SelfFlowConfig(name="selfflow", **cfg), model, ts)


def test_dual_timestep_statistics():
    model, m = make(mask_ratio=0.25, sampler=TimeSamplerConfig(kind="logit_normal", shift=2.0))
    torch.manual_seed(1)
    d = m.draw_timesteps(20_000, model.num_tokens, "cpu")
    assert abs(d.mask.float().mean().item() - 0.25) < 0.005  # masked fraction ≈ R_M
    counts = d.mask.sum(1)
    assert counts.min() < counts.max()  # independent Bernoulli per token: the count varies
    assert 0.45 < (d.s > d.t).float().mean().item() < 0.55  # unsorted: both orders occur
    # each token's marginal time follows p(t): compare the histogram with the density
    tau = d.tau.flatten()
    hist = torch.histc(tau, bins=20, min=0, max=1) / tau.numel() * 20
    dens = m.time_sampler.density((torch.arange(20) + 0.5) / 20)
    assert torch.allclose(hist[2:-2], dens[2:-2], rtol=0.06, atol=0.03)
    # per-token time = s where masked, t elsewhere; the teacher sees min(t, s)
    torch.testing.assert_close(d.tau, torch.where(d.mask, d.s[:, None], d.t[:, None]))
    torch.testing.assert_close(d.teacher_t, torch.minimum(d.t, d.s))


def record_inputs(net) -> dict:
    """Make `net` remember the (x, t, y) of its last forward call (structured times as (B, N))."""
    seen, orig = {}, net.forward

    def spy(x, t, y, **kw):
        seen["x"], seen["t"], seen["y"] = x, t.per_token() if isinstance(t, TokenTimes) else t, y
        return orig(x, t, y, **kw)

    net.forward = spy
    return seen


def test_teacher_input_is_the_cleaner_interpolation():
    """The teacher's x is built from the same x0 and x1 at min(t, s) for every token."""
    model, m = make()
    ema = make_ema(model)
    seen, student_in = record_inputs(ema), record_inputs(model)
    batch = Batch(x0=torch.randn(8, 1, 8, 8), y=torch.arange(8))
    torch.manual_seed(3)
    m.loss(batch, model, ema, 0)
    # recover x1 from the student's input on an unmasked token and check the teacher's x
    t_s, t_t = student_in["t"], seen["t"]
    assert t_s.shape == (8, model.num_tokens) and t_t.shape == (8,)
    assert bool((t_t[:, None] <= t_s + 1e-7).all())  # teacher never noisier than any student token
    tau_map = model.modality.expand_token_values(t_s)
    x1 = (student_in["x"] - (1 - tau_map) * batch.x0) / tau_map
    expected = (1 - t_t.view(-1, 1, 1, 1)) * batch.x0 + t_t.view(-1, 1, 1, 1) * x1
    torch.testing.assert_close(seen["x"], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(seen["y"], student_in["y"])  # label dropout shared with the teacher


def test_gradients_rep_loss_reaches_projector_and_blocks_up_to_l_only():
    model, m = make(depth=6, student_block=2, teacher_block=4, gamma=1.0)
    for p in model.parameters():  # leave adaLN-Zero's zero gates, or no block would pass gradients
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.05)
    ema = make_ema(model)
    for p in ema.parameters():  # a teacher that differs from the student
        p.data.add_(0.05 * torch.randn_like(p))
    out = m.loss(Batch(x0=torch.randn(4, 1, 8, 8), y=torch.arange(4)), model, ema, 0)
    named = list(model.named_parameters())
    grads = torch.autograd.grad(out.terms["rep"], [p for _, p in named] + list(m.projector.parameters()), allow_unused=True, retain_graph=True)
    reached = {n for (n, _), g in zip(named, grads) if g is not None and g.abs().sum() > 0}
    blocks_reached = {int(n.split(".")[1]) + 1 for n in reached if n.startswith("blocks.")}
    assert blocks_reached == {1, 2}  # blocks ≤ l only
    assert not any(n.startswith("final_layer") for n in reached)
    assert {"modality.proj.weight", "t_embedder.mlp.0.weight", "y_embedder.weight"} <= reached
    assert all(g is not None and g.abs().sum() > 0 for g in grads[len(named):])  # the projector learns
    out.loss.backward()
    assert all(p.grad is None for p in ema.parameters())  # the teacher receives none


@pytest.mark.parametrize("switch,check", [
    ({"mask_ratio": 0.0}, lambda d: not d.mask.any() and torch.equal(d.tau, d.t[:, None].expand_as(d.tau))),
    ({"second_time": "window"}, lambda d: bool(((d.t - d.s) <= 0.2 + 1e-6).all() and (d.s <= d.t).all())),
    ({"second_time": "noise"}, lambda d: bool((d.tau[d.mask] == 1).all())),
    ({"second_time": "per_token"}, lambda d: d.tau.std(dim=1).min() > 0),
    ({"sort_times": True}, lambda d: bool((d.s >= d.t).all())),
])
def test_switches_change_the_timesteps_fed_to_the_model(switch, check):
    model, m = make(**switch)
    torch.manual_seed(0)
    assert check(m.draw_timesteps(512, model.num_tokens, "cpu"))


def test_gamma_zero_skips_the_teacher():
    model, m = make(gamma=0.0)
    ema = make_ema(model)
    ema.forward = lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher must not run"))
    out = m.loss(Batch(x0=torch.randn(2, 1, 8, 8), y=torch.arange(2)), model, ema, 0)
    assert "rep" not in out.terms


def test_flops_follow_the_methods_own_time_form():
    """FLOPs are counted with what Self-Flow feeds the backbone. With static-shape conditioning adaLN
    runs on the (B, 2) levels whatever the mask, so mask ratio 0.5 and 0.25 cost the same (backbone and
    total), and the dual levels cost exactly one more conditioning row per sample than a shared time:
    t-embedder MLP (2·256·D + 2·D·D) + every adaLN linear (depth · 2·D·6D + 2·D·2D), forward, plus the
    one-hot matmuls that take each modulation to the tokens (2·K·D per token and modulation).
    Diffusion forcing (arbitrary per-token times) pays adaLN per token and counts more."""
    from suite.models.token_times import TokenTimes
    from suite.train.flops import forward_flops, training_flops_per_image

    model, _ = make(depth=4)
    batch = Batch(x0=torch.randn(4, 1, 8, 8), y=torch.arange(4))
    ema = make_ema(model)
    ts = TimeSampler(TimeSamplerConfig())
    counts = {}
    for key, cfg in {"0.25": dict(mask_ratio=0.25), "0.5": dict(mask_ratio=0.5), "df": dict(second_time="per_token")}.items():
        m = SelfFlow(SelfFlowConfig(name="selfflow", **cfg), model, ts)
        counts[key] = training_flops_per_image(model, ema, m, batch)
    assert counts["0.5"]["backbone"] == counts["0.25"]["backbone"]
    assert counts["0.5"]["total"] == counts["0.25"]["total"]
    assert counts["df"]["backbone"] > 1.2 * counts["0.25"]["backbone"]

    m = SelfFlow(SelfFlowConfig(name="selfflow", mask_ratio=0.5), model, ts)
    tt = m.student_times(4, model.num_tokens, "cpu")
    assert isinstance(tt, TokenTimes) and tt.levels.shape == (4, 2) and tt.index.shape == (4, model.num_tokens)
    d, b, n = model.hidden_size, 4, model.num_tokens
    per_row = 2 * 256 * d + 2 * d * d + model.depth * 2 * d * 6 * d + 2 * d * 2 * d
    # and the one-hot matmuls that bring the levels to the tokens, counted as they run: (B, N, 2) @
    # (B, 2, D) for each of a block's six modulations and the final layer's two
    select = (model.depth * 6 + 2) * 2 * n * 2 * d
    shared = forward_flops(model, batch.x0, torch.rand(b), batch.y)
    assert forward_flops(model, batch.x0, tt, batch.y) - shared == b * (per_row + select)
