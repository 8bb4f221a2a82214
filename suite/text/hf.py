"""Offline loading of a Hugging Face `transformers` text model and its tokenizer.

The weights come from an explicit directory (`save_pretrained` layout: config.json, the weights,
the tokenizer files) or from a pre-filled hub cache; never the network (HF_HUB_OFFLINE=1 and
`local_files_only=True`). A missing directory or file is one line naming what is needed.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from suite.errors import CheckpointError, MissingFileError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def _hint(repo_id: str) -> str:
    return f"download it once with `huggingface-cli download {repo_id} --local-dir DIR` and pass DIR"


@contextmanager
def _quiet():
    """No progress bars or load reports (a full CLIP checkpoint's unused vision weights)."""
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


def model_dir(what: str, key: str, path: str | None, repo_id: str, cache_dir: str | None = None) -> Path:
    """The local directory of `repo_id`: `path` itself (it must hold config.json and weights), else
    its snapshot in the Hugging Face cache. One MissingFileError line otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
    if path is None:
        from huggingface_hub import snapshot_download

        try:
            p = Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir))
        except Exception:  # LocalEntryNotFoundError and friends: not in the cache
            where = cache_dir or os.environ.get("HF_HOME") or "~/.cache/huggingface"
            raise MissingFileError(f"{key}: {what} not given and {repo_id} is not in the Hugging Face cache {where}; "
                                   f"{_hint(repo_id)}") from None
    else:
        p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise MissingFileError(f"{key}: {what} needs {p / 'config.json'} (a transformers model directory, e.g. {repo_id}); "
                               f"{_hint(repo_id)}")
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise MissingFileError(f"{key}: {what} needs {p / 'model.safetensors'} (or pytorch_model.bin) in {p}; {_hint(repo_id)}")
    return p


def load_pretrained(model_cls, what: str, key: str, source: Path, repo_id: str, **kwargs):
    """`model_cls.from_pretrained(source)` offline; refuses a checkpoint of another class or with missing weights
    (transformers would fill them with random ones and only warn)."""
    try:
        with _quiet():
            model, info = model_cls.from_pretrained(str(source), local_files_only=True, output_loading_info=True, **kwargs)
    except OSError as e:
        raise MissingFileError(f"{key}: cannot read {what} in {source} ({str(e).splitlines()[0][:200]}); {_hint(repo_id)}") from None
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{key}: {source} is not a {model_cls.__name__} checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise CheckpointError(f"{key}: {source} is not a {model_cls.__name__} checkpoint "
                              f"({len(missing)} weights missing, e.g. {missing[0]})")
    return model


def load_tokenizer(what: str, key: str, source: Path, repo_id: str):
    """The directory's own tokenizer through AutoTokenizer (tokenizer.json / vocab files), offline."""
    from transformers import AutoTokenizer

    try:
        with _quiet():
            return AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise MissingFileError(f"{key}: {what} has no readable tokenizer in {source} (tokenizer.json or the vocabulary files; "
                               f"{str(e).splitlines()[0][:160]}); {_hint(repo_id)}") from None
