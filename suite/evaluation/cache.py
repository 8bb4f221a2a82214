"""Where evaluation artefacts that outlive a run live (domain classifiers, reference statistics).

One directory, chosen once: `eval.cache_dir` if set, else `$SUITE_CACHE`, else
`~/.cache/selfflow-suite`. Every cached file has a provenance JSON beside it saying how it was
made, so a number computed against it can be traced. Writes are atomic (temp file + rename):
several sweep workers may fill the same entry at once, and the last complete write wins.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def cache_root(explicit: str | os.PathLike | None = None) -> Path:
    root = explicit or os.environ.get("SUITE_CACHE") or Path.home() / ".cache" / "selfflow-suite"
    return Path(root).expanduser()


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short content hash of a JSON-able object (keys sorted), used to key cache entries."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, then move the result onto `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def entry_lock(path: Path):
    """Exclusive lock for filling one cache entry: parallel sweep workers wait for the first one
    to finish instead of all training the same classifier at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_provenance(path: Path, info: dict) -> None:
    """`info` plus when and with which library versions, as pretty JSON."""
    import torch

    from suite.evaluation import _versions

    info = {**info, "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(), "torch": torch.__version__}

    def _w(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")

    atomic_write(path, _w)


def read_provenance(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def save_frozen_net(net, path: Path, arch: dict, meta: dict, format_version: int) -> None:
    """A small network the cache holds (domain classifier, attribute judge): its constructor
    arguments, weights and provenance, written atomically."""
    import torch

    payload = {"format": format_version, "arch": arch, "state_dict": net.state_dict(), "meta": meta}
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def load_frozen_net(path: str | os.PathLike, build: Callable[[dict], Any], what: str, made_by: str, missing: str | None = None):
    """`save_frozen_net`'s file → `build(arch)` with its weights, frozen in eval mode. One line when
    the file is missing (`missing`, default `what`, "not found", and `made_by`) or unreadable."""
    import torch

    from suite.errors import CheckpointError, MissingFileError

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{missing or what} not found: {path} ({made_by})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        net = build(payload["arch"])
        net.load_state_dict(payload["state_dict"])
    except Exception as e:  # truncated file, foreign format
        raise CheckpointError(f"cannot read {what} {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return net.eval().requires_grad_(False)
