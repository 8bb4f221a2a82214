"""REPA and SRA on the suite's backbone: losses from their definitions, where gradients flow,
which times/noise/labels the teacher sees, and FLOP accounting of the auxiliaries."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from baselines.encoders.local import TinyViT, TinyViTConfig, save_local_encoder
from baselines.repa import EncoderSpec, Repa, RepaConfig
from baselines.sra import Sra, SraConfig
from suite.config import ModelConfig
from suite.errors import SuiteError
from suite.flow import TimeSampler, TimeSamplerConfig
from suite.methods import Batch
from suite.methods.registry import available_methods
from suite.models import build_model
from suite.train.ema import make_ema
from suite.train.flops import count_flops, training_flops_per_image

DEPTH, D, CH, S = 4, 32, 4, 8  # generator: 4 blocks, width 32, 4-channel 8×8 "latents" → 4×4 tokens


class FixedTimes(TimeSampler):
    """p(t) replaced by fixed values, so a loss can be recomputed by hand."""

    def __init__(self, t):
        super().__init__(TimeSamplerConfig())
        self.t = t

    def sample(self, shape, device=None, generator=None):
        return self.t.clone().to(device).expand(shape).clone() if self.t.numel() > 1 else self.t.expand(shape).clone()


def make_model(seed=0, perturb=True):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(preset="SiT-Nano/2", hidden_size=D, depth=DEPTH, num_heads=2), (CH, S, S), 10)
    if perturb:  # leave adaLN-Zero's zero gates and no block would pass (or receive) gradients
        for p in model.parameters():
            if p.abs().sum() == 0:
                torch.nn.init.normal_(p, std=0.05)
    return model


def make_local_encoder(path, input_size=16, patch=2, dim=24, seed=1):
    torch.manual_seed(seed)
    vit = TinyViT(TinyViTConfig(input_size=input_size, patch_size=patch, embed_dim=dim, depth=2, num_heads=2)).eval()
    save_local_encoder(vit, path, {"dataset": "test"})
    return vit


def make_batch(b=4, pixel_size=16, seed=5):
    g = torch.Generator().manual_seed(seed)
    # x0 stands for latents; pixels are the images they came from (another size and channel count)
    return Batch(x0=torch.randn(b, CH, S, S, generator=g), y=torch.arange(b) % 10,
                 pixels=torch.rand(b, 3, pixel_size, pixel_size, generator=g) * 2 - 1, index=torch.arange(b))


def test_methods_are_registered_on_import():
    assert {"repa", "sra"} <= set(available_methods())


# ----------------------------------------------------------------------------- REPA
@pytest.fixture
def encoders(tmp_path):
    """Two local encoders: one on an 8×8 grid (resampled to the generator's 4×4), one on 4×4."""
    return [(make_local_encoder(tmp_path / "e1", 16, 2, 24, 1), str(tmp_path / "e1")),
            (make_local_encoder(tmp_path / "e2", 16, 4, 20, 2), str(tmp_path / "e2"))]


def make_repa(encoders, t=None, **cfg):
    model = make_model()
    specs = [EncoderSpec(name="local", path=p) for _, p in encoders]
    ts = FixedTimes(t) if t is not None else TimeSampler(TimeSamplerConfig())
    torch.manual_seed(0)
    return model, Repa(RepaConfig(name="repa", encoders=specs, label_dropout=0.0, projector_hidden=48, **cfg), model, ts)


def test_repa_loss_equals_its_definition(encoders):
    """L = ‖v̂ − (x1 − x0)‖² + λ · mean_e(−mean cos(h_e(z_l), resample(f_e(pixels)))), by hand."""
    t = torch.tensor([0.1, 0.4, 0.7, 0.95])
    model, m = make_repa(encoders, t=t, weight=0.5)
    batch = make_batch()
    torch.manual_seed(11)
    out = m.loss(batch, model, None, 0)

    torch.manual_seed(11)
    x1 = torch.randn_like(batch.x0)
    tt = t.view(-1, 1, 1, 1)
    xt = (1 - tt) * batch.x0 + tt * x1
    with torch.no_grad():
        h = model.modality.embed(xt)  # the blocks written out, not through the taps
        c = model.condition(t, batch.y)
        for blk in model.blocks[: m.student_block]:
            h = blk(h, c)
        v = model(xt, t, batch.y)
        gen = ((v - (x1 - batch.x0)) ** 2).mean()
        reps = []
        for (vit, _), proj in zip(encoders, m.projectors):
            pix = F.interpolate((batch.pixels + 1) / 2, size=(16, 16), mode="bicubic", align_corners=False)
            f = vit((pix - 0.5) / 0.5)  # (B, T_e, D_e)
            side = int(f.shape[1] ** 0.5)
            f = F.adaptive_avg_pool2d(f.transpose(1, 2).reshape(4, -1, side, side), 4).flatten(2).transpose(1, 2)
            q = proj(h)
            cos = (q * f).sum(-1) / (q.norm(dim=-1) * f.norm(dim=-1))
            reps.append(-cos.mean())
        rep = torch.stack(reps).mean()
    assert m.student_block == round(0.3 * DEPTH)
    torch.testing.assert_close(out.terms["gen"], gen)
    torch.testing.assert_close(out.terms["rep"], rep)
    torch.testing.assert_close(out.loss.detach(), gen + 0.5 * rep)
    assert -1 <= rep <= 1 and out.terms["rep_0"] != out.terms["rep_1"]


def _grads(m, model, batch, weight):
    m.cfg.weight = weight
    model.zero_grad(set_to_none=True)
    m.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    m.loss(batch, model, None, 0).loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else None) for n, p in [*model.named_parameters(), *m.named_parameters()]}


def test_repa_gradients_reach_projector_and_blocks_up_to_l_never_the_encoder(encoders):
    model, m = make_repa(encoders, student_block=2)
    batch = make_batch()
    with_rep, without = _grads(m, model, batch, 1.0), _grads(m, model, batch, 0.0)
    # what L_rep adds to each gradient
    diff = {n: (g - without[n]).abs().sum().item() if without[n] is not None else (g.abs().sum().item() if g is not None else 0.0)
            for n, g in with_rep.items()}
    blocks = {int(n.split(".")[1]) + 1 for n, d in diff.items() if n.startswith("blocks.") and d > 0}
    assert blocks == {1, 2}  # blocks ≤ l, not the blocks after it
    assert diff["final_layer.linear.weight"] == 0
    assert all(diff[n] > 0 for n in with_rep if n.startswith("projectors."))
    assert diff["modality.proj.weight"] > 0 and diff["y_embedder.weight"] > 0
    # the encoders: not parameters of the method (not optimised, not checkpointed), never a gradient
    assert not any("vit" in n for n, _ in m.named_parameters()) and not any("vit" in k for k in m.state_dict())
    for enc in m.encoders:
        assert not enc.training and all(p.grad is None and not p.requires_grad for p in enc.parameters())


def test_repa_encoder_sees_the_pixels_not_the_latents(encoders):
    model, m = make_repa(encoders, t=torch.full((4,), 0.5))
    batch = make_batch()
    other = Batch(x0=batch.x0, y=batch.y, pixels=-batch.pixels, index=batch.index)
    torch.manual_seed(0)
    a = m.loss(batch, model, None, 0)
    torch.manual_seed(0)
    b = m.loss(other, model, None, 0)
    assert a.terms["gen"] == b.terms["gen"] and a.terms["rep"] != b.terms["rep"]
    with pytest.raises(SuiteError, match="pixels"):
        m.loss(Batch(x0=batch.x0, y=batch.y), model, None, 0)


def test_repa_flops_aux_is_one_encoder_forward(encoders):
    """FlopCounter's aux of the whole REPA step = each encoder forward (checked against an analytic
    ViT formula) + its projector forward and backward (3× forward)."""
    model, m = make_repa(encoders)
    batch = make_batch()
    n_tok = model.num_tokens

    def vit_flops(c: TinyViTConfig):
        t, d = (c.input_size // c.patch_size) ** 2, c.embed_dim
        block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * int(d * c.mlp_ratio)
        return 2 * t * 3 * c.patch_size ** 2 * d + c.depth * block

    enc_flops = sum(vit_flops(vit.cfg) for vit, _ in encoders)
    proj_fwd = sum(2 * n_tok * (D * 48 + 48 * 48 + 48 * vit.cfg.embed_dim) for vit, _ in encoders)
    with sdpa_kernel(SDPBackend.MATH):  # count attention on CPU too (no formula for its flash kernel)
        flops = training_flops_per_image(model, make_ema(model), m, batch)
    assert flops["aux"] == pytest.approx(enc_flops + 3 * proj_fwd, rel=0.02)


# ----------------------------------------------------------------------------- SRA
def make_sra(**cfg):
    model = make_model()
    return model, Sra(SraConfig(name="sra", **cfg), model, TimeSampler(TimeSamplerConfig()))


def test_sra_teacher_time_never_noisier_than_the_student():
    _, m = make_sra()
    torch.manual_seed(0)
    t = torch.cat([torch.rand(20_000), torch.zeros(100), torch.full((100,), 0.05)])
    tt = m.teacher_times(t)
    gap = t - tt
    assert bool((tt >= 0).all()) and bool((gap >= 0).all()) and bool((gap <= 0.2 + 1e-7).all())
    assert bool((tt[t == 0] == 0).all())  # clamped at data, never below
    inner = t > 0.2
    assert abs(gap[inner].mean().item() - 0.1) < 0.005  # U(0, 0.2) where no clamping occurs


def test_sra_teacher_input_same_noise_same_labels_cleaner_time():
    model, m = make_sra(label_dropout=0.5)
    ema = make_ema(model)
    for p in ema.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    calls = []

    def spy(net):
        orig = net.forward

        def f(x, t, y, **kw):
            calls.append(dict(x=x, t=t, y=y, **kw))
            return orig(x, t, y, **kw)
        return f

    model.forward, ema.forward = spy(model), spy(ema)
    batch = make_batch(b=16)
    torch.manual_seed(4)
    out = m.loss(batch, model, ema, 0)
    student, teacher = calls
    assert student["taps"] == (m.student_block,) and teacher["stop_after"] == m.teacher_block == round(0.7 * DEPTH)
    assert bool((teacher["t"] <= student["t"]).all()) and bool((student["t"] - teacher["t"] <= 0.2 + 1e-6).all())
    assert torch.equal(teacher["y"], student["y"]) and (student["y"] == model.null_class).any()  # dropped, shared
    ts, tt = student["t"].view(-1, 1, 1, 1), teacher["t"].view(-1, 1, 1, 1)
    x1 = (student["x"] - (1 - ts) * batch.x0) / ts
    torch.testing.assert_close(teacher["x"], (1 - tt) * batch.x0 + tt * x1, rtol=1e-4, atol=1e-4)
    # 1 − cos between the projected student block and the teacher's raw block output
    with torch.no_grad():
        _, hs = model.forward_with_taps(student["x"], student["t"], student["y"], taps=(m.student_block,))
        _, ht = ema.forward_with_taps(teacher["x"], teacher["t"], teacher["y"], taps=(m.teacher_block,))
        q, z = m.projector(hs[m.student_block]), ht[m.teacher_block]
        rep = (1 - (q * z).sum(-1) / (q.norm(dim=-1) * z.norm(dim=-1))).mean()
    torch.testing.assert_close(out.terms["rep"], rep)
    torch.testing.assert_close(out.loss.detach(), out.terms["gen"] + 0.5 * rep)


def test_sra_gradients_skip_the_teacher_and_later_blocks():
    model, m = make_sra(student_block=2, teacher_block=3)
    ema = make_ema(model)
    batch = make_batch()
    grads = {}
    for w in (0.5, 0.0):
        m.cfg.weight = w
        model.zero_grad(set_to_none=True)
        torch.manual_seed(2)
        m.loss(batch, model, ema, 0).loss.backward()
        grads[w] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    reached = {int(n.split(".")[1]) + 1 for n in grads[0.5] if n.startswith("blocks.")
               and not torch.equal(grads[0.5][n], grads[0.0][n])}
    assert reached == {1, 2}
    assert all(p.grad is None for p in ema.parameters())


# ----------------------------------------------------------------------------- FLOPs of EMA teachers
def _teacher_forward(model, k):
    """Counted FLOPs of one image through the embedding and blocks 1..k (what a teacher runs)."""
    x, t, y = torch.randn(1, CH, S, S), torch.rand(1), torch.zeros(1, dtype=torch.long)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        return count_flops(lambda: model(x, t, y, stop_after=k))


def _proj_fwd_bwd(n_tok):
    return 3 * 2 * n_tok * (D * 2 * D + 2 * D * D)  # D → 2D → D, forward + backward


def test_selfflow_aux_is_a_teacher_forward_through_k_of_depth_blocks():
    """total(γ > 0) − total(γ = 0) = teacher forward through k blocks + projector fwd/bwd."""
    from suite.methods.selfflow import SelfFlow, SelfFlowConfig

    model = make_model()
    ts = TimeSampler(TimeSamplerConfig())
    batch, ema = make_batch(b=2), make_ema(model)
    with sdpa_kernel(SDPBackend.MATH):
        on, off = (training_flops_per_image(model, ema, SelfFlow(SelfFlowConfig(name="selfflow", teacher_block=3, gamma=g), model, ts), batch)
                   for g in (0.8, 0.0))
    teacher = on["total"] - off["total"] - _proj_fwd_bwd(model.num_tokens)
    assert teacher == pytest.approx(_teacher_forward(model, 3), rel=0.02)
    full = _teacher_forward(model, DEPTH)
    assert 3 / DEPTH < teacher / full < 3 / DEPTH * 1.15  # ≈ k/depth of a forward (+ the shared embedding)


def test_sra_aux_is_a_teacher_forward_through_k_blocks():
    model, m = make_sra(teacher_block=3)
    with sdpa_kernel(SDPBackend.MATH):
        aux = training_flops_per_image(model, make_ema(model), m, make_batch(b=2))["aux"]
    k_fwd = _teacher_forward(model, 3)
    assert aux == pytest.approx(k_fwd + _proj_fwd_bwd(model.num_tokens), rel=0.02)


def test_repa_under_fsdp_gathers_each_projector_and_equals_the_unsharded_loss(encoders, tmp_path):
    """REPA keeps one projector per encoder in a ModuleList, whose own forward is never called:
    sharding the list left its projectors' weights as shards (FSDP gathers in a module's forward).
    Sharded on a one-process gloo group, the loss and the projectors' gradients equal the plain ones."""
    import copy

    import torch.distributed as dist

    from suite.train import fsdp

    t = torch.tensor([0.1, 0.4, 0.7, 0.95])
    model, m = make_repa(encoders, t=t)
    plain_model, plain = copy.deepcopy(model), copy.deepcopy(m)
    batch = make_batch()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        mp = fsdp.mixed_precision(None)
        fsdp.shard_backbone(model, mp)
        fsdp.shard_method(m, mp)
        losses = []
        for mod, meth in ((model, m), (plain_model, plain)):
            torch.manual_seed(11)
            out = meth.loss(batch, mod, None, 0)
            out.loss.backward()
            losses.append(out.loss.detach())
        torch.testing.assert_close(losses[0], losses[1])
        for p, q in zip(m.projectors.parameters(), plain.projectors.parameters()):
            torch.testing.assert_close(p.grad.full_tensor(), q.grad)
    finally:
        dist.destroy_process_group()
