"""Linear probe per block (measuring.md §4; paper Fig. 4b): how linearly decodable the class is
from the frozen EMA backbone's hidden states.

Protocol (recorded with the result): images noised to a fixed t (paper convention, t = 1 noise)
with a seeded noise draw, the **null label** so the probe cannot read the class embedding,
hidden state after block l (1-indexed) mean-pooled over tokens, then a multinomial logistic
regression fitted full-batch (L-BFGS, small L2) on train features and scored on held-out ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from suite.errors import SuiteError
from suite.flow import broadcast_time, interpolate


def resolve_blocks(blocks, depth: int) -> list[int]:
    """Empty → every block 1..depth; otherwise checked against the depth."""
    out = sorted(set(int(b) for b in blocks)) if blocks else list(range(1, depth + 1))
    bad = [b for b in out if not 1 <= b <= depth]
    if bad:
        raise SuiteError(f"eval.probe_blocks: {bad} outside 1..{depth} (blocks are 1-indexed)")
    return out


@torch.no_grad()
def block_features(model, x0: torch.Tensor, blocks: list[int], t: float, device, batch_size: int = 250,
                   seed: int = 0) -> dict[int, torch.Tensor]:
    """{block: (N, D)} mean-pooled tokens of x_t = (1 − t)·x0 + t·x1 under the null label."""
    if not 0.0 <= t <= 1.0:
        raise SuiteError(f"eval.probe_t: must be in [0, 1] (t = 1 is noise), got {t}")
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out: dict[int, list[torch.Tensor]] = {b: [] for b in blocks}
    try:
        for i in range(0, x0.shape[0], batch_size):
            xb = x0[i : i + batch_size].float()  # (b, C, H, W)
            x1 = torch.randn(xb.shape, generator=g)  # drawn on CPU: identical on every device
            tt = torch.full((xb.shape[0],), float(t))  # (b,)
            xt = interpolate(xb, x1, broadcast_time(tt, xb)).to(device)
            y = torch.full((xb.shape[0],), model.null_class, dtype=torch.long, device=device)
            # through the model's __call__, never forward_with_taps: a sharded (FSDP) model gathers its
            # weights and computes under autocast only there
            _, hidden = model(xt, tt.to(device), y, taps=tuple(blocks), stop_after=max(blocks))
            for b in blocks:
                out[b].append(hidden[b].float().mean(dim=1).cpu())  # (b, N, D) → (b, D)
    finally:
        model.train(was_training)
    return {b: torch.cat(v) for b, v in out.items()}


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-4, max_iter: int = 300):
    """Multinomial logistic regression on standardised features; returns a predict function."""
    x = x.double()
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-8)
    z = (x - mean) / std  # (N, D)
    w = torch.zeros(z.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda q: (((q.double() - mean) / std) @ w + b).argmax(1)


def probe_accuracy(train_x, train_y, test_x, test_y, num_classes: int, l2: float = 1e-4) -> float:
    predict = fit_logistic(train_x, train_y, num_classes, l2)
    return float((predict(test_x) == test_y).double().mean())


def load_x0(data_cfg, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to n (x0, y) of a split, a fixed random subset by seed."""
    from suite.data import build_dataset

    ds = build_dataset(data_cfg, split=split)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[: min(n, len(ds))].tolist()
    items = [ds[i] for i in idx]
    return torch.stack([it["x0"] for it in items]).float(), torch.tensor([int(it["y"]) for it in items])


def linear_probe(model, data_cfg, blocks, t: float, n_train: int, n_test: int, device, batch_size: int = 250,
                 seed: int = 0, num_classes: int | None = None) -> dict[int, float]:
    """{block: held-out accuracy}. Train features from the train split, test from the test split."""
    blocks = resolve_blocks(blocks, model.depth)
    x_tr, y_tr = load_x0(data_cfg, "train", n_train, seed)
    x_te, y_te = load_x0(data_cfg, "test", n_test, seed + 1)
    k = num_classes or getattr(model, "num_classes", None) or int(max(y_tr.max(), y_te.max())) + 1
    f_tr = block_features(model, x_tr, blocks, t, device, batch_size, seed)
    f_te = block_features(model, x_te, blocks, t, device, batch_size, seed + 1)
    return {b: probe_accuracy(f_tr[b], y_tr, f_te[b], y_te, k) for b in blocks}
