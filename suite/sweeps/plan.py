"""From a validated spec to the sweep's units: where they live and what each job runs.

A grid unit is a point, keyed by its config hash (so adding a value to the grid keeps every
existing point's key and run directory). A study unit is a trial slot, keyed `slot-NNN`.
Paths and the tracking URI are made absolute here, in the dispatcher, so a job running in
another working directory (or on another node) writes to the same places.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from suite.config import RunConfig, config_to_dict, load_run_config
from suite.sweeps.spec import Point, SweepSpec, base_source, grid_points, set_overrides


@dataclass
class Unit:
    key: str  # config hash (grid) or slot-NNN (study)
    index: int
    label: str  # what varies, for tables
    hash: Optional[str]  # None for a study slot until its trial is asked
    run_dir: Optional[Path]
    point: Optional[Point] = None
    slot: Optional[int] = None


def base_config(spec: SweepSpec) -> RunConfig:
    return load_run_config(base_source(spec), set_overrides(spec))


def runs_root(spec: SweepSpec) -> Path:
    return Path(base_config(spec).train.runs_root).resolve()


def sweep_dir(spec: SweepSpec) -> Path:
    return Path(spec.dir).resolve() if spec.dir else runs_root(spec) / "sweeps" / spec.name


def tracking_settings(spec: SweepSpec) -> dict[str, Any]:
    """Resolved tracking fields every job of the sweep shares (uri absolute, same experiment)."""
    from suite.tracking import resolve_tracking_uri

    cfg = base_config(spec)
    if not cfg.tracking.enabled:
        return {"enabled": False}
    return {"uri": resolve_tracking_uri(cfg.tracking, runs_root(spec)), "experiment": cfg.tracking.experiment}


def plan_units(spec: SweepSpec, sdir: Path) -> list[Unit]:
    if spec.grid is not None:
        units = []
        for p in grid_points(spec):
            units.append(Unit(p.hash, p.index, ", ".join(f"{k}={v}" for k, v in p.values.items()), p.hash,
                              sdir / "runs" / f"{p.index:03d}-{p.slug}-{p.hash[:8]}", point=p))
        return units
    return [Unit(f"slot-{i:03d}", i, f"trial slot {i}", None, None, slot=i) for i in range(spec.study.n_trials)]


def point_config(spec: SweepSpec, unit: Unit, tracking: dict, parent_run_id: str | None) -> RunConfig:
    """The grid point's config as the job runs it: absolute paths, the sweep's tags and parent."""
    cfg = dataclasses.replace(unit.point.cfg)
    cfg.name = f"{spec.name}-{unit.point.slug}"
    cfg.train = dataclasses.replace(cfg.train, run_dir=str(unit.run_dir), runs_root=str(runs_root(spec)))
    tags = {**cfg.tracking.tags, "sweep": spec.name, "sweep_point": unit.hash}
    label = variant_label(unit.point.values, cfg.method.name)
    if label:
        tags["ablation"] = label  # the report names the run's group by it (reports/data.py)
    cfg.tracking = dataclasses.replace(cfg.tracking, **tracking, parent_run_id=parent_run_id, tags=tags)
    return cfg


def variant_label(values: dict[str, Any], method: str) -> str | None:
    """The name of a point's `variant` or `config` preset when it is more than its method's name."""
    from suite.sweeps.spec import CONFIG_KEY, VARIANT_KEY

    names = [str(values[k]) for k in (CONFIG_KEY, VARIANT_KEY) if values.get(k) not in (None, "base")]
    label = "+".join(n for n in names if n != method)
    return label or None


def study_base(spec: SweepSpec) -> dict:
    """The resolved base (with `set`) as a plain dict: each trial applies its params on top."""
    d = config_to_dict(base_config(spec))
    d["train"]["runs_root"] = str(runs_root(spec))
    return d
