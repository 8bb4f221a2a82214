"""Tiny random stand-ins of the real text-encoder classes, saved with save_pretrained (tokenizer
files beside the model), built offline: the suite's loaders read them as they read the real ones."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a", "red", "blue", "green", "disk", "square", "ring", "large", "small", "in", "the", "top", "left", "right", "photo", "of", "cat")


def _bpe_vocab(specials: tuple[str, ...], suffix: str = "") -> dict[str, int]:
    """Whole words (plus every single character, so unknown words still split) as BPE pieces, no merges."""
    pieces = list(specials) + [w + suffix for w in WORDS]
    chars = sorted({c for w in WORDS for c in w} | set("abcdefghijklmnopqrstuvwxyz"))
    pieces += [c for c in chars] + [c + suffix for c in chars if suffix]
    out: dict[str, int] = {}
    for p in pieces:
        out.setdefault(p, len(out))
    return out


def _word_merges(suffix: str = "") -> list[tuple[str, str]]:
    """BPE merges that rebuild each vocabulary word from its characters (the last char carries the suffix)."""
    merges, seen = [], set()
    for w in WORDS:
        parts = list(w[:-1]) + [w[-1] + suffix]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            parts = [parts[0] + parts[1]] + parts[2:]
    return merges


def save_tiny_clip_text(path: Path, hidden: int = 32, with_vision: bool = False) -> Path:
    """A CLIPTextModel (or, with_vision, a full CLIPModel) + CLIPTokenizer directory."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig

    vocab = _bpe_vocab(("<|startoftext|>", "<|endoftext|>"), "</w>")
    merges = _word_merges("</w>")
    for a, b in merges:  # merged pieces must be in the vocabulary
        vocab.setdefault(a + b, len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    text_cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                              num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
                              bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                              pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(0)
    if with_vision:
        vision_cfg = CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
                                      image_size=32, patch_size=8, projection_dim=16)
        model = CLIPModel(CLIPConfig(text_config=text_cfg.to_dict(), vision_config=vision_cfg.to_dict(), projection_dim=16))
    else:
        model = CLIPTextModel(text_cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if with_vision:
        from transformers import CLIPImageProcessor

        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def save_tiny_t5(path: Path, hidden: int = 32) -> Path:
    """A T5EncoderModel + T5Tokenizer (a Unigram vocabulary built in memory: no sentencepiece file)."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS] + \
             [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"] + [("▁", -3.0)]
    tok = T5Tokenizer(vocab=pieces, extra_ids=0)
    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(vocab_size=len(pieces), d_model=hidden, d_kv=8, d_ff=2 * hidden, num_layers=2, num_heads=2,
                                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_qwen3(path: Path, hidden: int = 32) -> Path:
    """A Qwen3ForCausalLM (as published) + Qwen2Tokenizer (byte-level BPE, as Qwen3's)."""
    from transformers import Qwen2Tokenizer, Qwen3Config, Qwen3ForCausalLM

    vocab = _bpe_vocab(("<|endoftext|>",), "")
    merges = _word_merges("")
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab.setdefault("Ġ", len(vocab))
    for w in WORDS:
        vocab.setdefault("Ġ" + w, len(vocab))
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                                         pad_token_id=vocab["<|endoftext|>"], eos_token_id=vocab["<|endoftext|>"]))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


SAVERS = {"t5": save_tiny_t5, "clip": save_tiny_clip_text, "qwen3": save_tiny_qwen3}
