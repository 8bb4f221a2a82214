"""Backbone forward+backward of SiT-Mini/2 (batch 32, 32×32, 2 threads) with a shared time vs
dual-timestep times, alternating; works on trees before and after TokenTimes (docs/PERFORMANCE.md)."""
import time, statistics, torch
torch.set_num_threads(2); torch.manual_seed(0)
from suite.config import ModelConfig
from suite.models import build_model
m = build_model(ModelConfig(preset="SiT-Mini/2"), (3, 32, 32), 10)
x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
t, s = torch.rand(32), torch.rand(32)
mask = torch.rand(32, m.num_tokens) < 0.25
try:
    from suite.models.token_times import TokenTimes
    dual = TokenTimes.dual(t, s, mask)
except ImportError:
    dual = torch.where(mask, s[:, None], t[:, None])
res = {"shared": [], "dual": []}
for r in range(4):
    for k, tt in (("shared", t), ("dual", dual)) if r % 2 == 0 else (("dual", dual), ("shared", t)):
        t0 = time.perf_counter(); m(x, tt, y).square().mean().backward(); res[k].append(time.perf_counter() - t0)
print({k: round(statistics.median(v[1:]), 3) for k, v in res.items()}, "dual/shared", round(statistics.median(res["dual"][1:]) / statistics.median(res["shared"][1:]), 3))
