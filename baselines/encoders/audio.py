"""Self-supervised speech/audio encoders in `transformers` (no remote code): HuBERT, wav2vec 2.0,
data2vec-audio, for REPA on audio.

Input: waveforms (B, C, L) in [-1, 1] at the data's sample rate (`input_rate`, filled from the
data's `clip_rate` when the config is loaded); channels are averaged to mono, the clip is
resampled (band-limited) to the encoder's 16 kHz and, for the checkpoints trained that way,
normalised to zero mean and unit variance per clip (their feature extractors' `do_normalize`).
Output: the last hidden state, one token per 20 ms frame (the conv front end's stride of 320
samples), a 1-D grid that REPA resamples to the generator's token sequence.
"""
from __future__ import annotations

import torch

from suite.data.resample import resample_audio

from baselines.encoders.base import Encoder
from baselines.encoders.hf import load_hf_model
from baselines.encoders.registry import register_encoder

ENCODER_RATE = 16_000  # every checkpoint below was trained on 16 kHz audio

# name → (transformers class, hub repo, normalise each clip (feature extractor's do_normalize))
VARIANTS = {
    "hubert-base": ("HubertModel", "facebook/hubert-base-ls960", False),
    "hubert-large": ("HubertModel", "facebook/hubert-large-ll60k", True),
    "wav2vec2-base": ("Wav2Vec2Model", "facebook/wav2vec2-base", True),
    "wav2vec2-large": ("Wav2Vec2Model", "facebook/wav2vec2-large-lv60", True),
    "data2vec-audio-base": ("Data2VecAudioModel", "facebook/data2vec-audio-base", True),
    "data2vec-audio-large": ("Data2VecAudioModel", "facebook/data2vec-audio-large", True),
}


class SpeechSSLEncoder(Encoder):
    modality = "audio"
    input_rate: float | None = None  # the data's sample rate; set by REPA from method.encoders[].input_rate

    def __init__(self, name: str, model, normalize: bool):
        super().__init__()
        self.name, self.model, self.normalize = name, model, normalize
        self.embed_dim = model.config.hidden_size
        self.patch_size, self.input_size = 1, ENCODER_RATE  # frames, not patches: see token_grid

    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, L) in [-1, 1] at `input_rate` → (B, L') mono at 16 kHz (normalised per clip if the checkpoint expects it)."""
        from suite.errors import SuiteError

        if pixels.dim() != 3:
            raise SuiteError(f"encoder {self.name}: expected audio (B, C, L), got {tuple(pixels.shape)}")
        if not self.input_rate:
            raise SuiteError(f"encoder {self.name}: the data's sample rate is unknown (method.encoders[].input_rate)")
        x = resample_audio(pixels.float().mean(1), self.input_rate, self.input_size)  # (B, L')
        if self.normalize:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
        return x

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=x).last_hidden_state  # (B, frames, D)

    def token_grid(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[int, ...]:
        return (tokens.shape[1],)


def _load(name: str, path: str | None, cache_dir: str | None) -> Encoder:
    import transformers

    cls_name, repo_id, normalize = VARIANTS[name]
    return SpeechSSLEncoder(name, load_hf_model(getattr(transformers, cls_name), name, repo_id, path, cache_dir), normalize)


for _name in VARIANTS:
    register_encoder(_name)(lambda path=None, cache_dir=None, _n=_name: _load(_n, path, cache_dir))
