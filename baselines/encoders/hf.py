"""Offline loading of Hugging Face `transformers` vision models (shared by the DINO/SigLIP files).

Weights come from an explicit directory (`save_pretrained` layout: config.json + model.safetensors
or pytorch_model.bin) or from a pre-filled hub cache (`cache_dir`, else $HF_HOME); never the network.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from suite.errors import CheckpointError, MissingFileError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def _obtain_hint(repo_id: str) -> str:
    return f"normally obtained with `huggingface-cli download {repo_id} --local-dir DIR` (https://huggingface.co/{repo_id})"


@contextmanager
def _quiet_transformers():
    """No progress bars or load reports in training logs (e.g. a full SigLIP checkpoint's unused
    text weights); missing weights are checked below instead."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf_model(model_cls, encoder: str, repo_id: str, path: str | None, cache_dir: str | None):
    """`model_cls.from_pretrained` from `path` or the cache of `repo_id`, offline; one-line error if absent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never touch the network
    if path is not None:
        p = Path(path).expanduser()
        if not (p / "config.json").is_file():
            raise MissingFileError(f"encoder {encoder}: needs {p / 'config.json'} (+ model.safetensors); {_obtain_hint(repo_id)}")
        if not any((p / w).is_file() for w in WEIGHT_FILES):
            raise MissingFileError(f"encoder {encoder}: needs {p / 'model.safetensors'} (or pytorch_model.bin); {_obtain_hint(repo_id)}")
        source = str(p)
    else:
        source = repo_id
    try:
        with _quiet_transformers():
            model, info = model_cls.from_pretrained(source, cache_dir=cache_dir, local_files_only=True, output_loading_info=True)
    except OSError as e:
        where = cache_dir or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        if path is not None:
            raise MissingFileError(f"encoder {encoder}: cannot read weights in {path} ({str(e).splitlines()[0]}); {_obtain_hint(repo_id)}") from None
        raise MissingFileError(f"encoder {encoder}: no weights given (encoder path) and {repo_id} is not in the Hugging Face cache {where}; "
                               f"{_obtain_hint(repo_id)}") from None
    except (RuntimeError, ValueError, KeyError) as e:  # shape mismatches, a config of another model
        raise CheckpointError(f"encoder {encoder}: {source} is not a {model_cls.__name__} checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); expected {repo_id}") from None
    # transformers fills missing weights with random ones and only warns: a wrong directory would
    # silently give REPA a random target. Refuse it.
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise CheckpointError(f"encoder {encoder}: {source} is not a {model_cls.__name__} checkpoint "
                              f"({len(missing)} weights missing, e.g. {missing[0]}); expected {repo_id}")
    return model
