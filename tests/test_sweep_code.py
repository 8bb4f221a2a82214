"""A sweep's code snapshot: a copy of the `suite` package in the sweep directory, named by content."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from suite.sweeps.code_snapshot import code_hash, job_python, live_package, take_snapshot

torch.set_num_threads(1)


def checkout_copy(tmp_path: Path) -> Path:
    """A copy of the `suite` package, standing in for a checkout the user edits."""
    dst = tmp_path / "checkout" / "suite"
    shutil.copytree(live_package(), dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_snapshot_holds_sources_and_presets_and_is_named_by_content(tmp_path):
    src = checkout_copy(tmp_path)
    (src / "__pycache__").mkdir(exist_ok=True)
    (src / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (src / "notes.txt").write_text("not code")
    rec = take_snapshot(tmp_path / "sweep", src)
    snap = tmp_path / "sweep" / "code" / rec["hash"] / "suite"
    assert (snap / "__init__.py").is_file() and (snap / "sweeps" / "jobs.py").is_file()
    assert list(snap.glob("configs/*.yaml")), "the builtin presets travel with the code"
    assert not list(snap.rglob("__pycache__")) and not (snap / "notes.txt").exists()
    assert rec["hash"] == code_hash(src) == code_hash(snap) and rec["git"] is None  # tmp_path: no git
    assert code_hash(src) == code_hash(live_package())  # the hash ignores __pycache__ and other files

    (src / "flow.py").write_text((src / "flow.py").read_text() + "\n# edited\n")
    again = take_snapshot(tmp_path / "sweep", src)
    assert again["hash"] != rec["hash"] and (snap / "__init__.py").is_file()  # the old one stays

    cmd = job_python(snap.parent)
    assert cmd.startswith("env PYTHONSAFEPATH=1 PYTHONPATH=" + str(snap.parent) + ":")
