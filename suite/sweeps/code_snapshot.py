"""A sweep's code snapshot: the `suite` package its jobs import, copied into the sweep directory.

    <sweep_dir>/code/<hash>/suite/          the package: its Python sources and YAML presets (what
                                            the installed package ships), no __pycache__
    <sweep_dir>/code/<hash>/snapshot.json   hash, `git describe --always --dirty` of the checkout, source

A snapshot is taken when a sweep is first submitted and is never changed: it is named by the
content hash of its files. sweep.json's `code` names the sweep's current one; `--update-code`
takes a new one from the checkout and makes it current (the old one stays: a job submitted with
it keeps it through its Submitit requeues).

A job imports it because its Python command is
`env PYTHONSAFEPATH=1 PYTHONPATH=<snapshot>:<working dir>:<PYTHONPATH> python` (`job_python`):
the snapshot comes first, and PYTHONSAFEPATH stops `python -m` from putting the working directory
(often the checkout itself) in front of it. The job checks where `suite` came from
(`job_code`) and records it. Plugins (`plugins:`, entry points) are not in the snapshot.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from suite.errors import SuiteError

PACKAGE = "suite"
CODE_DIR = "code"
MANIFEST = "snapshot.json"
SUFFIXES = (".py", ".yaml")  # the package's sources and its package data (pyproject: "*.yaml")


def live_package() -> Path:
    """The `suite` package this process imported (the checkout, for the dispatcher)."""
    return Path(__file__).resolve().parents[1]


def package_files(pkg: Path) -> list[Path]:
    """The files a snapshot holds, relative to the package, sorted."""
    pkg = Path(pkg)
    return sorted(p.relative_to(pkg) for p in pkg.rglob("*")
                  if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.relative_to(pkg).parts)


def code_hash(pkg: Path) -> str:
    """Content hash of the package's snapshot files (names and bytes), 16 hex digits."""
    h = hashlib.sha256()
    for rel in package_files(pkg):
        h.update(rel.as_posix().encode() + b"\0" + (Path(pkg) / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def git_describe(path: Path) -> Optional[str]:
    """`git describe --always --dirty` of the checkout holding `path`, or None (no git, no repo)."""
    try:
        r = subprocess.run(["git", "-C", str(path), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def snapshot_dir(sweep_dir: Path, h: str) -> Path:
    return Path(sweep_dir) / CODE_DIR / h


def take_snapshot(sweep_dir: Path, source: Path) -> dict:
    """Copy the package at `source` into the sweep directory; returns its record (hash, git, …).
    The hash is that of the copy, so an edit made while copying cannot go unrecorded."""
    source = Path(source).resolve()
    root = Path(sweep_dir) / CODE_DIR
    tmp = root / f".tmp-{os.getpid()}-{time.time_ns()}"
    try:
        for rel in package_files(source):
            dst = tmp / PACKAGE / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, dst)
        if not (tmp / PACKAGE / "__init__.py").is_file():
            raise SuiteError(f"code snapshot: {source} is not the {PACKAGE} package (no __init__.py)")
        rec = {"hash": code_hash(tmp / PACKAGE), "git": git_describe(source), "source": str(source),
               "time": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(rec, indent=1))
        target = snapshot_dir(sweep_dir, rec["hash"])
        if target.is_dir():  # the same code was snapshotted before: keep that copy
            return json.loads((target / MANIFEST).read_text()) if (target / MANIFEST).is_file() else rec
        os.replace(tmp, target)
        return rec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _describe(rec: dict) -> str:
    return rec["hash"] + (f" (git {rec['git']})" if rec.get("git") else "")


def ensure_snapshot(sd, source: Path | None = None, update: bool = False,
                    out: Callable[[str], None] = print) -> dict:
    """The sweep's code record (sweep.json `code`): taken now on the first submission or when
    `update`; else the recorded one, whose copy must still be there."""
    cur = sd.data.get("code")
    if cur and not update:
        if not (snapshot_dir(sd.path, cur["hash"]) / PACKAGE / "__init__.py").is_file():
            raise SuiteError(f"sweep {sd.data['name']}: its code snapshot {snapshot_dir(sd.path, cur['hash'])} is "
                             f"missing; `suite sweep resubmit SPEC … --update-code` takes a new one from the checkout")
        line = code_status(sd, source)
        if line:
            out(line)
        return cur
    new = take_snapshot(sd.path, source or live_package())
    ran = any(rec.get("jobs") for rec in sd.units.values())
    if cur and new["hash"] == cur["hash"]:
        out(f"code: unchanged since the sweep's snapshot {_describe(cur)}")
        return cur
    if cur:
        sd.data.setdefault("code_history", []).append(cur)
        out(f"code: snapshot updated {cur['hash']} -> {_describe(new)}; points already run used {cur['hash']}")
    elif ran:
        out(f"code: snapshot {_describe(new)} taken now; points already run imported the checkout (not recorded)")
    else:
        out(f"code: snapshot {_describe(new)} in {snapshot_dir(sd.path, new['hash'])}")
    sd.data["code"] = new
    sd.save()
    return new


def job_python(snapshot: Path, python: str | None = None) -> str:
    """The Python command a job runs (Submitit's `python` parameter): the snapshot first on the
    path, then the submission's working directory (plugins found there still are), then PYTHONPATH."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed: the job starts in another one anyway
        cwd = ""
    paths = [str(Path(snapshot).resolve()), cwd, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    seen = list(dict.fromkeys(p for p in paths if p))
    return shlex.join(["env", "PYTHONSAFEPATH=1", "PYTHONPATH=" + os.pathsep.join(seen), python or sys.executable])


def job_code(snapshot: str | None = None) -> dict:
    """In a job: where `suite` was imported from and the hash of that code (the snapshot's, read
    from its manifest; else hashed now). With `snapshot` given, a `suite` from anywhere else is a
    SuiteError: the job would run code the sweep did not record."""
    import suite

    init = Path(suite.__file__).resolve()
    root = init.parents[1]
    if snapshot is not None and root != Path(snapshot).resolve():
        raise SuiteError(f"this job imported {PACKAGE} from {init.parent}, not from the sweep's code snapshot "
                         f"{snapshot} (does executor.setup reset PYTHONPATH? PYTHONSAFEPATH needs Python >= 3.11)")
    manifest = root / MANIFEST
    if manifest.is_file():
        rec = json.loads(manifest.read_text())
        return {"suite_file": str(init), "code_hash": rec["hash"], "code_git": rec.get("git")}
    return {"suite_file": str(init), "code_hash": code_hash(init.parent), "code_git": git_describe(init.parent)}


def code_status(sd, source: Path | None = None) -> Optional[str]:
    """One line for `suite sweep status` when the checkout's code is not the sweep's snapshot."""
    cur = sd.data.get("code")
    if not cur:
        return None if not sd.units else "code: no snapshot recorded (submitted before code snapshots); the next submission takes one"
    source = Path(source or live_package())
    live = code_hash(source)
    if live == cur["hash"]:
        return None
    git = git_describe(source)
    return (f"code: the checkout ({live}{f', git {git}' if git else ''}) differs from the sweep's snapshot "
            f"{_describe(cur)}; its jobs run the snapshot (`suite sweep resubmit … --update-code` switches)")
