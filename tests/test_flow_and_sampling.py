"""Time convention, time samplers, and samplers on a field with a closed form."""
import math

import pytest
import torch

from suite.flow import TimeSampler, TimeSamplerConfig, interpolate, time_shift, velocity_target
from suite.sampling import euler, euler_maruyama, heun, score_from_velocity, time_grid


def test_convention_endpoints():
    x0, x1 = torch.randn(3, 2), torch.randn(3, 2)
    torch.testing.assert_close(interpolate(x0, x1, torch.tensor(0.0)), x0)  # t = 0 is data
    torch.testing.assert_close(interpolate(x0, x1, torch.tensor(1.0)), x1)  # t = 1 is noise
    t = torch.tensor(0.3)
    eps = 1e-3
    deriv = (interpolate(x0, x1, t + eps) - interpolate(x0, x1, t - eps)) / (2 * eps)
    torch.testing.assert_close(deriv, velocity_target(x0, x1), rtol=1e-3, atol=1e-3)


def test_time_shift_properties():
    t = torch.linspace(0, 1, 11)
    torch.testing.assert_close(time_shift(t, 1.0), t)
    s = time_shift(t, 3.0)
    assert s[0] == 0 and s[-1] == 1 and bool((s >= t).all())  # α > 1 moves mass to noise
    torch.testing.assert_close(time_shift(s, 1 / 3.0), t, rtol=1e-5, atol=1e-6)  # inverse


@pytest.mark.parametrize("kind,shift", [("uniform", 1.0), ("logit_normal", 1.0), ("logit_normal", 2.95)])
def test_time_sampler_matches_its_density(kind, shift):
    sampler = TimeSampler(TimeSamplerConfig(kind=kind, shift=shift))
    t = sampler.sample(200_000, generator=torch.Generator().manual_seed(0))
    hist = torch.histc(t, bins=20, min=0, max=1) / t.numel() * 20
    centres = (torch.arange(20) + 0.5) / 20
    dens = sampler.density(centres)
    assert torch.allclose(hist[2:-2], dens[2:-2], rtol=0.08, atol=0.05)


def test_low_snr_mix_fraction():
    sampler = TimeSampler(TimeSamplerConfig(kind="logit_normal", low_snr_fraction=0.05))
    t = sampler.sample(100_000, generator=torch.Generator().manual_seed(0))
    base = TimeSampler(TimeSamplerConfig(kind="logit_normal")).sample(100_000, generator=torch.Generator().manual_seed(1))
    extra = (t >= 0.95).float().mean() - (base >= 0.95).float().mean()
    assert abs(extra.item() - 0.05 * (base < 0.95).float().mean().item()) < 0.005


# A Gaussian data distribution N(mu, s²): the exact velocity E[x1 − x0 | x_t] in closed form.
MU, S = 1.5, 0.5


def gaussian_velocity(x, t, **_):
    t = t.view(-1, 1)
    m, var = (1 - t) * MU, (1 - t) ** 2 * S**2 + t**2
    e_x1 = t / var * (x - m)
    e_x0 = MU + (1 - t) * S**2 / var * (x - m)
    return e_x1 - e_x0


@pytest.mark.parametrize("sampler,kw", [(euler, {"steps": 100}), (heun, {"steps": 25}), (euler, {"steps": 100, "shift": 3.0}),
                                        (euler_maruyama, {"steps": 250})])
def test_samplers_recover_gaussian_target(sampler, kw):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 2, generator=g)
    if sampler is euler_maruyama:
        kw = {**kw, "generator": torch.Generator().manual_seed(1)}
    out = sampler(gaussian_velocity, x, **kw)
    assert abs(out.mean().item() - MU) < 0.02
    assert abs(out.std().item() - S) < 0.02


def test_score_from_velocity_is_the_gaussian_score():
    x, t = torch.randn(5, 1), torch.full((5,), 0.4)
    var = (1 - 0.4) ** 2 * S**2 + 0.4**2
    exact = -(x - (1 - 0.4) * MU) / var
    torch.testing.assert_close(score_from_velocity(gaussian_velocity(x, t), x, t), exact, rtol=1e-5, atol=1e-5)


def test_time_grid_endpoints():
    g = time_grid(10, shift=2.0, t_end=0.04)
    assert math.isclose(g[0].item(), 1.0) and math.isclose(g[-1].item(), 0.04, rel_tol=1e-5)
    assert bool((g[1:] < g[:-1]).all())


def test_cfg_applies_only_inside_the_guidance_interval():
    from suite.sampling import guided

    class Field(torch.nn.Module):
        """v(x, t, y) = y (conditional: the label, null class 9 → 0)."""

        null_class = 9

        def forward(self, x, t, y):
            return torch.where(y == self.null_class, 0.0, y.float()).view(-1, 1).expand_as(x)

        def forward_with_cfg(self, x, t, y, w):
            v_c, v_u = self(x, t, y), self(x, t, torch.full_like(y, self.null_class))
            return v_u + w * (v_c - v_u)

    v = guided(Field(), cfg_scale=3.0, interval=(0.0, 0.7))
    x, y = torch.zeros(2, 1), torch.tensor([1, 2])
    torch.testing.assert_close(v(x, torch.full((2,), 0.5), y), torch.tensor([[3.0], [6.0]]))  # inside: w·v_c
    torch.testing.assert_close(v(x, torch.full((2,), 0.9), y), torch.tensor([[1.0], [2.0]]))  # outside: v_c
