"""LAION-CLAP audio (and text) embeddings for FAD-CLAP and the CLAP score, through `laion_clap`.

- `clap-a`: the general-audio checkpoint `630k-audioset-best.pt` (HTSAT-tiny) — FAD-CLAP-A and the
  CLAP score; `clap-m`: the music checkpoint `music_audioset_epoch_15_esc_90.14.pt` (HTSAT-base) —
  FAD-CLAP-M. The audio encoder (HTSAT tiny / base / large) is read from the checkpoint's shapes,
  the model is `laion_clap.CLAP_Module(enable_fusion=False, amodel=...)` and the weights come in
  through its own `load_ckpt(ckpt=<path>)`.
- Audio: the suite's clips (B, 1, L) in [-1, 1] at the dataset's rate (`suite.data.clip_rate`) are
  resampled to CLAP's 48 kHz with a polyphase filter (scipy `resample_poly`), then go through
  `get_audio_embedding_from_data` as laion-clap does it (int16 round trip; clips shorter than
  10 s repeated and zero-padded to 10 s, longer ones cropped at a seeded offset). Embeddings are
  L2-normalised (512 dims).
- Text: CLAP's RoBERTa (`roberta-base`: tokenizer + model, whose weights the checkpoint then
  overwrites) from `eval.clap_text_model` (a local directory) or the pre-filled Hugging Face
  cache. laion-clap asks the hub for `roberta-base` (and at import, for tokenizers it does not use
  here); the loader points those calls at the local copy and imports with HF_HUB_OFFLINE=1, so
  nothing is fetched.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from math import gcd
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from suite.errors import CheckpointError, MissingFileError, SuiteError

CLAP_RATE = 48_000
CLAP_CHECKPOINTS = {  # extractor → (config key, file, what)
    "clap-a": ("eval.clap_audio_weights", "630k-audioset-best.pt", "LAION-CLAP general audio (HTSAT-tiny)"),
    "clap-m": ("eval.clap_music_weights", "music_audioset_epoch_15_esc_90.14.pt", "LAION-CLAP music (HTSAT-base)"),
}
CLAP_SOURCE = "huggingface.co/lukewys/laion_clap"
HTSAT_BY_WIDTH = {96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}
TEXT_MODEL = "roberta-base"
TEXT_FILES = ("config.json", "tokenizer_config.json")  # plus the tokenizer itself: tokenizer.json or vocab.json


def _text_missing(d: Path) -> str | None:
    for f in TEXT_FILES:
        if not (d / f).is_file():
            return f
    return None if (d / "tokenizer.json").is_file() or (d / "vocab.json").is_file() else "tokenizer.json"


# ----------------------------------------------------------------------------- offline pieces
def text_model_dir(path=None, hub_cache=None) -> Path:
    """CLAP's `roberta-base`: an explicit directory, else its snapshot in the Hugging Face cache."""
    if path is not None:
        p = Path(path).expanduser()
        missing = _text_missing(p)
        if missing:
            raise MissingFileError(f"eval.clap_text_model: {p / missing} not found (need a local copy of {TEXT_MODEL})")
        return p
    from huggingface_hub import constants, snapshot_download

    try:
        snap = Path(snapshot_download(TEXT_MODEL, local_files_only=True, cache_dir=hub_cache))
    except Exception:  # LocalEntryNotFoundError and friends: not in the cache
        snap = None
    cache = hub_cache or constants.HF_HUB_CACHE
    if snap is None or _text_missing(snap):
        raise MissingFileError(f"CLAP text model {TEXT_MODEL} not in the Hugging Face cache {cache} "
                               f"(fill it once with `huggingface-cli download {TEXT_MODEL}`, or set eval.clap_text_model=<dir>)")
    return snap


def _redirect(cls, local: Path):
    """cls.from_pretrained('roberta-base', …) → cls.from_pretrained(local, …) (other names untouched)."""
    orig = cls.from_pretrained.__func__

    def from_pretrained(klass, name, *args, **kwargs):
        return orig(klass, str(local) if str(name) == TEXT_MODEL else name, *args, **kwargs)

    return mock.patch.object(cls, "from_pretrained", classmethod(from_pretrained))


def import_laion_clap():
    """`import laion_clap` without the hub: offline mode, and its import-time tokenizers (used only
    by its training code) not built."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        transformers = None
    with contextlib.ExitStack() as stack:
        if transformers is not None:
            for name in ("BertTokenizer", "RobertaTokenizer", "BartTokenizer"):
                stack.enter_context(mock.patch.object(getattr(transformers, name), "from_pretrained", lambda *a, **k: None))
        try:
            import laion_clap
        except ImportError as e:
            raise SuiteError(f"FAD-CLAP needs laion-clap ({e}); install it with scripts/install.sh (pip install --no-deps laion-clap)") from None
    return laion_clap


def audio_model_name(state_dict: dict) -> str:
    """HTSAT variant of a CLAP state dict, from its patch-embedding width."""
    for k, v in state_dict.items():
        if k.endswith("audio_branch.patch_embed.proj.weight"):
            width = int(v.shape[0])
            if width in HTSAT_BY_WIDTH:
                return HTSAT_BY_WIDTH[width]
            raise SuiteError(f"CLAP checkpoint: unknown HTSAT width {width}; known: {sorted(HTSAT_BY_WIDTH)}")
    raise SuiteError("CLAP checkpoint: no HTSAT audio branch (audio_branch.patch_embed.proj.weight) found")


def load_clap(name: str, path, text_dir: Path, device="cpu"):
    """laion_clap.CLAP_Module for extractor `name` (clap-a | clap-m) with the checkpoint at `path`."""
    key, file, what = CLAP_CHECKPOINTS[name]
    if path is None:
        raise MissingFileError(f"{key} is not set: {name} needs {file} ({what}, from {CLAP_SOURCE})")
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"{key}: file not found: {p} (need {file}, {what}, from {CLAP_SOURCE})")
    laion_clap = import_laion_clap()
    from transformers import RobertaModel, RobertaTokenizer

    try:
        sd = torch.load(p, map_location="cpu", weights_only=False)  # published files hold a pickled 'state_dict'
        amodel = audio_model_name(sd.get("state_dict", sd) if isinstance(sd, dict) else {})
        del sd
        with open(os.devnull, "w") as quiet, _redirect(RobertaModel, text_dir), _redirect(RobertaTokenizer, text_dir), \
                contextlib.redirect_stdout(quiet):  # laion-clap prints per-parameter load reports
            model = laion_clap.CLAP_Module(enable_fusion=False, amodel=amodel, device=torch.device(device))
            model.load_ckpt(ckpt=str(p), verbose=False)
    except (RuntimeError, KeyError, ValueError, AttributeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as e:
        raise CheckpointError(f"cannot load CLAP checkpoint {p}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return model.eval().requires_grad_(False)


def resample(audio: np.ndarray, rate: int, target: int = CLAP_RATE) -> np.ndarray:
    """(B, L) at `rate` → (B, L·target/rate) at `target`, polyphase (scipy resample_poly)."""
    from scipy.signal import resample_poly

    if rate == target:
        return audio.astype(np.float32)
    g = gcd(int(rate), int(target))
    return resample_poly(audio, target // g, int(rate) // g, axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------- the extractor
class ClapExtractor:
    """Audio (B, 1, L) float in [-1, 1] at `rate` → {"features": (B, 512)} normalised CLAP audio
    embeddings; `text_features(texts)` → (N, 512) normalised text embeddings (CLAP score)."""

    adm_compatible = False
    has_spatial = False
    has_logits = False

    def __init__(self, name: str, weights, rate, text_model=None, device="cpu", batch_size: int = 16, seed: int = 0):
        from suite.evaluation.extractors import _file_fingerprint

        if not rate:
            raise SuiteError(f"{name}: FAD-CLAP needs audio data with a sample rate (data.name=tones, …)")
        self.text_dir = text_model_dir(text_model)
        self.model = load_clap(name, weights, self.text_dir, device)
        self.name, self.rate, self.device, self.batch_size, self.seed = name, int(rate), torch.device(device), batch_size, seed
        self.weights_path = str(weights)
        self.fingerprint = f"{name}-{_file_fingerprint(Path(weights))}-{self.rate}"
        self.preprocess = f"resample {self.rate} → {CLAP_RATE} Hz (polyphase), laion-clap repeat-pad to 10 s, int16 round trip"

    @torch.no_grad()
    def extract(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        if audio.dim() != 3 or audio.shape[1] != 1 or not audio.is_floating_point():
            raise SuiteError(f"{self.name} expects audio (B, 1, L) float, got {audio.dtype} {tuple(audio.shape)}")
        wave = resample(audio[:, 0].double().clamp(-1, 1).numpy(), self.rate)  # (B, L') at 48 kHz
        state = np.random.get_state()  # laion-clap crops clips > 10 s at a np.random offset
        np.random.seed(self.seed)
        try:
            out = [torch.as_tensor(self.model.get_audio_embedding_from_data(wave[i : i + self.batch_size], use_tensor=False)).float()
                   for i in range(0, wave.shape[0], self.batch_size)]
        finally:
            np.random.set_state(state)
        return {"features": torch.cat(out)}  # (B, 512)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.extract(audio)["features"]

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        """(N,) captions → (N, 512) normalised CLAP text embeddings."""
        out = [torch.as_tensor(self.model.get_text_embedding(list(texts[i : i + self.batch_size]), use_tensor=False)).float()
               for i in range(0, len(texts), self.batch_size)]
        return torch.cat(out)


def clap_score(audio_features: torch.Tensor, text_features: torch.Tensor) -> float:
    """Mean cosine similarity of paired (N, D) audio and text embeddings."""
    a = torch.nn.functional.normalize(audio_features.double(), dim=-1)
    t = torch.nn.functional.normalize(text_features.double(), dim=-1)
    return float((a * t).sum(-1).mean())
