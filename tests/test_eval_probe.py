"""Linear probe: chance on random features, ~perfect on label-encoding features, the real
model path (null label, fixed t, mean-pooled taps)."""
import pytest
import torch

from suite.config import DataConfig, ModelConfig
from suite.errors import SuiteError
from suite.evaluation.probe import block_features, linear_probe, probe_accuracy, resolve_blocks

torch.set_num_threads(1)


def _labels(n, k, seed):
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def test_random_features_give_chance():
    k, d = 10, 32
    g = torch.Generator().manual_seed(0)
    ytr, yte = _labels(800, k, 1), _labels(800, k, 2)
    xtr, xte = torch.randn(800, d, generator=g), torch.randn(800, d, generator=g)
    acc = probe_accuracy(xtr, ytr, xte, yte, k)
    assert 0.04 < acc < 0.18  # chance = 0.1; binomial sd ≈ 0.011


def test_label_encoding_features_give_near_perfect():
    k, d = 10, 32
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(k, d, generator=g)
    ytr, yte = _labels(500, k, 1), _labels(500, k, 2)
    xtr = codes[ytr] + 0.3 * torch.randn(500, d, generator=g)  # (N, D): class code + noise
    xte = codes[yte] + 0.3 * torch.randn(500, d, generator=g)
    assert probe_accuracy(xtr, ytr, xte, yte, k) > 0.97
    # a label hidden in one coordinate among noise is found too (it is linear)
    xtr2 = torch.cat([torch.randn(500, d - 1, generator=g), ytr[:, None].float()], 1)
    xte2 = torch.cat([torch.randn(500, d - 1, generator=g), yte[:, None].float()], 1)
    assert probe_accuracy(xtr2, (ytr >= 5).long(), xte2, (yte >= 5).long(), 2) > 0.97


def test_resolve_blocks():
    assert resolve_blocks([], 4) == [1, 2, 3, 4]
    assert resolve_blocks([3, 1, 3], 4) == [1, 3]
    with pytest.raises(SuiteError, match="1-indexed"):
        resolve_blocks([0], 4)
    with pytest.raises(SuiteError, match="outside"):
        resolve_blocks([5], 4)


def _tiny_model(num_classes=10):
    from suite.models import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(preset="SiT-Nano/4"), (1, 16, 16), num_classes).eval()


def test_block_features_use_null_label_fixed_t_and_mean_pool():
    model = _tiny_model()
    x0 = torch.randn(6, 1, 16, 16)
    feats = block_features(model, x0, [1, 3], t=0.5, device="cpu", batch_size=4, seed=0)
    assert set(feats) == {1, 3} and feats[3].shape == (6, model.hidden_size)
    # reproduce block 3 by hand: same noise draw, null class, mean over tokens
    g = torch.Generator().manual_seed(0)
    x1 = torch.cat([torch.randn((4, 1, 16, 16), generator=g), torch.randn((2, 1, 16, 16), generator=g)])
    xt = 0.5 * x0 + 0.5 * x1
    y = torch.full((6,), model.null_class)
    _, h = model.forward_with_taps(xt, torch.full((6,), 0.5), y, taps=(3,))
    assert torch.allclose(feats[3], h[3].mean(1), atol=1e-5)
    # the probe is label-blind: features do not depend on any label (there is none to pass), and differ with t
    feats_t = block_features(model, x0, [3], t=0.9, device="cpu", seed=0)
    assert not torch.allclose(feats_t[3], feats[3])
    with pytest.raises(SuiteError, match="probe_t"):
        block_features(model, x0, [1], t=1.5, device="cpu")


def test_linear_probe_on_a_model_returns_accuracy_per_block():
    model = _tiny_model()
    accs = linear_probe(model, DataConfig(name="digits"), [1, 4], t=0.3, n_train=200, n_test=100, device="cpu")
    assert set(accs) == {1, 4}
    assert all(0.0 <= a <= 1.0 for a in accs.values())
