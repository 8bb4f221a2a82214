"""The Self-Flow ablation presets (suite/configs/ablations/*.yaml): each changes exactly the switch
it names. Checked on what the method feeds the networks in one training step (per-token times,
attention groups, taps, teacher call, which feature loss), compared with default Self-Flow."""
import pytest
import torch
import torch.nn.functional as F
import yaml

from suite.config import BUILTIN_CONFIG_DIR, load_run_config
from suite.flow import TimeSampler
from suite.methods import Batch, build_method
from suite.models import build_model
from suite.models.token_times import TokenTimes, per_token_times
from suite.train.ema import make_ema

PRESETS = sorted(p.stem for p in (BUILTIN_CONFIG_DIR / "ablations").glob("*.yaml"))
B = 32


def trace(tmp_path, tiny_cfg, preset=None) -> dict:
    """Run one Self-Flow loss with spies; return what the student and teacher were given."""
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(tiny_cfg()))
    cfg = load_run_config([base] + ([f"builtin:ablations/{preset}"] if preset else []))
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 8, 8), 10)
    method = build_method(cfg.method, model, TimeSampler(cfg.time))
    ema = make_ema(model)
    for p in ema.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    seen = {"teacher": None}
    fwd_s, fwd_t = model.forward, ema.forward

    def student(x, t, y, taps=None, stop_after=None, attn_groups=None):
        seen.update(tau=per_token_times(t, model.num_tokens), taps=tuple(taps or ()), groups=attn_groups)
        return fwd_s(x, t, y, taps=taps, stop_after=stop_after, attn_groups=attn_groups)

    def teacher(x, t, y, taps=None, stop_after=None, attn_groups=None):
        out = fwd_t(x, t, y, taps=taps, stop_after=stop_after, attn_groups=attn_groups)
        t = per_token_times(t, model.num_tokens) if isinstance(t, TokenTimes) else t  # structured → (B, N)
        seen["teacher"] = dict(t=t, stop_after=stop_after, groups=attn_groups, z=out[1][stop_after])
        return out

    model.forward, ema.forward = student, teacher
    q = []
    method.projector.register_forward_hook(lambda mod, inp, out: q.append(out.detach()))
    g = torch.Generator().manual_seed(1)
    batch = Batch(x0=torch.randn(B, 1, 8, 8, generator=g), y=torch.arange(B) % 10)
    torch.manual_seed(7)
    out = method.loss(batch, model, ema, 0)
    seen["feature_loss"] = None
    if "rep" in out.terms:
        z = seen["teacher"]["z"]
        losses = {"cosine": (1 - F.cosine_similarity(q[0], z, dim=-1)).mean(), "l1": (q[0] - z).abs().mean()}
        seen["feature_loss"] = [k for k, v in losses.items() if torch.allclose(v, out.terms["rep"], rtol=1e-5)]
    seen["n_tokens"] = model.num_tokens
    return seen


def row_values(tau):
    return [torch.unique(r) for r in tau]


def check_default(d):
    """Default Self-Flow: two levels per sample, masked ≈ 25 %, teacher at the cleaner one, cosine."""
    vals = row_values(d["tau"])
    assert all(len(v) <= 2 for v in vals) and sum(len(v) == 2 for v in vals) > B // 2
    assert torch.equal(d["teacher"]["t"], d["tau"].amin(1))
    assert max((v.max() - v.min()).item() for v in vals) > 0.2
    assert d["groups"] is None and d["taps"] and d["feature_loss"] == ["cosine"]


def check_no_rep(d):
    assert d["teacher"] is None and d["taps"] == () and d["feature_loss"] is None


def check_no_mask(d):
    assert all(len(v) == 1 for v in row_values(d["tau"]))  # one t for every token
    tt = d["teacher"]["t"]
    assert torch.equal(tt if tt.dim() == 2 else tt[:, None].expand_as(d["tau"]), d["tau"])  # teacher at that t too


def check_window(d):
    vals = row_values(d["tau"])
    assert sum(len(v) == 2 for v in vals) > B // 2
    assert all((v.max() - v.min()).item() <= 0.2 + 1e-6 for v in vals)  # s ∈ [t − 0.2, t]
    assert torch.equal(d["teacher"]["t"], d["tau"].amin(1))


def check_l1(d):
    assert d["feature_loss"] == ["l1"]


def check_diffusion_forcing(d):
    assert all(len(v) == d["n_tokens"] for v in row_values(d["tau"]))  # an independent t per token
    assert torch.equal(d["teacher"]["t"], d["tau"].amin(1))


def check_full_mask(d):
    tau = d["tau"]
    ones = tau == 1.0
    assert 0.1 < ones.float().mean().item() < 0.4  # R_M = 0.25 of the tokens are pure noise
    for r, m in zip(tau, ones):
        assert len(torch.unique(r[~m])) <= 1  # the rest share one t
    t = torch.where(ones, torch.full_like(tau, 2.0), tau).amin(1)
    torch.testing.assert_close(d["teacher"]["t"], torch.minimum(t, torch.ones_like(t)))


def check_attn_sep(d):
    groups = d["groups"]
    assert groups is not None and groups.shape == d["tau"].shape
    for r, gr in zip(d["tau"], groups):  # the two groups are exactly the two noise levels
        for k in gr.unique():
            assert len(torch.unique(r[gr == k])) == 1
        assert len(gr.unique()) == len(torch.unique(r))


# preset → (its behavioural check, the aspects it is allowed to change)
EXPECTED = {
    "selfflow-no-rep": (check_no_rep, {"teacher", "teacher_t", "taps", "feature_loss"}),
    "selfflow-no-mask": (check_no_mask, {"tau", "teacher_t"}),
    "selfflow-window": (check_window, {"tau", "teacher_t"}),
    "selfflow-l1": (check_l1, {"feature_loss"}),
    "selfflow-diffusion-forcing": (check_diffusion_forcing, {"tau", "teacher_t"}),
    "selfflow-full-mask": (check_full_mask, {"tau", "teacher_t"}),
    "selfflow-attn-sep": (check_attn_sep, {"groups"}),
}


def aspects(d) -> dict:
    t = d["teacher"]
    return {"tau": d["tau"], "teacher_t": None if t is None else t["t"], "groups": d["groups"], "taps": d["taps"],
            "teacher": None if t is None else (t["stop_after"], t["groups"] is None), "feature_loss": d["feature_loss"]}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    return a == b if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor) else False


def test_every_paper_ablation_has_a_preset():
    assert set(PRESETS) == set(EXPECTED)


def test_default_trace(tmp_path, tiny_cfg):
    check_default(trace(tmp_path, tiny_cfg))


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_changes_exactly_its_switch(tmp_path, tiny_cfg, preset):
    check, allowed = EXPECTED[preset]
    base, d = aspects(trace(tmp_path, tiny_cfg)), trace(tmp_path, tiny_cfg, preset)
    check(d)
    changed = {k for k, v in aspects(d).items() if not same(v, base[k])}
    assert changed - allowed == set(), f"{preset} also changed {changed - allowed}"
    assert changed & allowed, f"{preset} changed nothing it names"
