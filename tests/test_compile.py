"""The training step's losses trace into one graph: no `.item()`, no data-dependent shapes, no
Python branching on tensor values (torch._dynamo.explain: zero graph breaks, CPU)."""
import pytest
import torch

from baselines.encoders.local import TinyViT, TinyViTConfig, save_local_encoder
from baselines.repa import EncoderSpec, RepaConfig
from baselines.sra import SraConfig
from suite.config import ModelConfig
from suite.flow import TimeSampler, TimeSamplerConfig
from suite.methods import Batch, build_method
from suite.methods.selfflow import SelfFlowConfig
from suite.methods.vanilla import VanillaConfig
from suite.models import build_model
from suite.train.ema import make_ema


def method_config(name, tmp_path):
    if name == "repa":
        torch.manual_seed(1)
        vit = TinyViT(TinyViTConfig(input_size=16, patch_size=2, embed_dim=24, depth=1, num_heads=2)).eval()
        save_local_encoder(vit, tmp_path / "enc", {"dataset": "test"})
        return RepaConfig(name="repa", encoders=[EncoderSpec(name="local", path=str(tmp_path / "enc"))], projector_hidden=32)
    return {"vanilla": lambda: VanillaConfig(name="vanilla"), "sra": lambda: SraConfig(name="sra"),
            "selfflow": lambda: SelfFlowConfig(name="selfflow"),
            "selfflow-separated": lambda: SelfFlowConfig(name="selfflow", attention_separation=True),
            "selfflow-per-token": lambda: SelfFlowConfig(name="selfflow", second_time="per_token")}[name]()


@pytest.mark.parametrize("name", ["vanilla", "selfflow", "sra", "repa", "selfflow-separated", "selfflow-per-token"])
def test_method_loss_compiles_without_graph_breaks(name, tmp_path):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="SiT-Nano/2", hidden_size=32, depth=2, num_heads=2), (4, 8, 8), 10)
    method = build_method(method_config(name, tmp_path), model, TimeSampler(TimeSamplerConfig(kind="logit_normal")))
    ema = make_ema(model)
    batch = Batch(x0=torch.randn(2, 4, 8, 8), y=torch.tensor([1, 2]), pixels=torch.rand(2, 3, 16, 16) * 2 - 1,
                  index=torch.arange(2))
    method.loss(batch, model, ema, 0)  # first call outside tracing (lazy encoder placement)

    def step(x0, y, pixels):
        out = method.loss(Batch(x0=x0, y=y, pixels=pixels), model, ema, 0)
        return out.loss, out.terms, out.logs

    explanation = torch._dynamo.explain(step)(batch.x0, batch.y, batch.pixels)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    assert "unique" not in explanation.graphs[0].code  # no data-dependent shapes (the old conditioning)
