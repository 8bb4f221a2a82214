"""suite.text: T5 / CLIP / Qwen3 text encoders read offline, tested on tiny stand-ins of the same classes."""
import json

import pytest
import torch

from suite.errors import ConfigError, MissingFileError
from suite.text import TEXT_ENCODERS, load_text_encoder
from text_standins import SAVERS

CAPTIONS = ["a large red disk in the top left", "cat", "a photo of a blue ring"]


@pytest.fixture(scope="module")
def encoder_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    return {name: save(root / name) for name, save in SAVERS.items()}


def test_registry_names_the_three_encoders():
    assert TEXT_ENCODERS.names() == ["clip", "qwen3", "t5"]
    with pytest.raises(ConfigError, match="text.encoder: unknown text encoder 'bert'; allowed: clip, qwen3, t5"):
        load_text_encoder("bert", "/nowhere")


@pytest.mark.parametrize("name", ["t5", "clip", "qwen3"])
def test_embeddings_are_the_models_own_hidden_states_padded_with_zeros(name, encoder_dirs):
    enc = load_text_encoder(name, str(encoder_dirs[name]), max_length=12)
    emb, mask = enc.encode(CAPTIONS)
    assert emb.shape == (3, 12, enc.dim) and emb.dtype == torch.float32 and mask.dtype == torch.bool
    # independent: tokenizer + model called directly, one caption at a time, no padding at all
    for i, c in enumerate(CAPTIONS):
        tok = enc.tokenizer([c], truncation=True, max_length=12, return_tensors="pt")
        n = tok["input_ids"].shape[1]
        direct = enc.model(**tok).last_hidden_state[0]  # (n, D)
        assert int(mask[i].sum()) == n and mask[i, :n].all()
        torch.testing.assert_close(emb[i, :n], direct, atol=1e-5, rtol=1e-5)  # padding changed nothing
        assert (emb[i, n:] == 0).all()  # padded tokens: exactly zero (the MM-DiT's null token)


def test_chosen_layers_are_concatenated(encoder_dirs):
    enc = load_text_encoder("qwen3", str(encoder_dirs["qwen3"]), max_length=8, layers=(1, -1))
    emb, mask = enc.encode(["a red disk"])
    assert enc.dim == 2 * enc.model.config.hidden_size and emb.shape == (1, 8, enc.dim)
    tok = enc.tokenizer(["a red disk"], return_tensors="pt")
    hs = enc.model(**tok, output_hidden_states=True).hidden_states
    n = tok["input_ids"].shape[1]
    torch.testing.assert_close(emb[0, :n], torch.cat([hs[1][0], hs[-1][0]], -1), atol=1e-5, rtol=1e-5)
    assert enc.describe()["text_layers"] == [1, -1] and enc.describe()["text_dim"] == enc.dim
    with pytest.raises(ConfigError, match="text.layers: layer 7 outside"):
        load_text_encoder("qwen3", str(encoder_dirs["qwen3"]), layers=(7,))


def test_missing_or_wrong_weights_are_one_line(tmp_path, encoder_dirs):
    with pytest.raises(MissingFileError, match=r"text.weights: text encoder t5 needs .*nope/config.json") as e:
        load_text_encoder("t5", str(tmp_path / "nope"))
    assert "\n" not in str(e.value)
    (tmp_path / "cfg-only").mkdir()
    (tmp_path / "cfg-only" / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(MissingFileError, match="model.safetensors"):
        load_text_encoder("t5", str(tmp_path / "cfg-only"))
    with pytest.raises(ConfigError, match="holds a 'qwen3' model, not t5"):
        load_text_encoder("t5", str(encoder_dirs["qwen3"]))
    with pytest.raises(MissingFileError, match="openai/clip-vit-large-patch14 is not in the Hugging Face cache"):
        load_text_encoder("clip", None, cache_dir=str(tmp_path / "empty-cache"))
