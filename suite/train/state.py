"""state.json of a run directory: status, images seen, MLflow run id, config hash.

Sweeps read it to skip finished points; a run directory never silently changes its config.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from suite.errors import ConfigError

STATUSES = ("new", "running", "finished", "failed", "pruned", "interrupted")


def read_state(run_dir: Path) -> dict:
    p = Path(run_dir) / "state.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return {}


def check_run_dir(run_dir: Path, config_hash: str) -> None:
    """A run directory never silently changes its config: refuse one that holds another run."""
    data = read_state(run_dir)
    if data and data.get("config_hash") not in (None, config_hash):
        raise ConfigError(
            f"run directory {run_dir} holds a run with another config (hash {data['config_hash']} ≠ {config_hash}); "
            "use another name/run_dir, or delete that directory"
        )


class RunState:
    def __init__(self, path: Path, data: dict, writable: bool):
        self.path, self.data, self.writable = path, data, writable

    @classmethod
    def open(cls, run_dir: Path, config_hash: str, writable: bool = True) -> "RunState":
        check_run_dir(run_dir, config_hash)
        run_dir.mkdir(parents=True, exist_ok=True)
        data = read_state(run_dir)
        data.setdefault("status", "new")
        data["config_hash"] = config_hash
        st = cls(run_dir / "state.json", data, writable)
        st.update()
        return st

    def get(self, key, default=None):
        return self.data.get(key, default)

    def update(self, **kw) -> None:
        self.data.update(kw)
        if self.writable:
            tmp = self.path.with_name(f".state.json.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(self.data, indent=1, default=str))
            os.replace(tmp, self.path)
