"""Sweep specs (`sweeps/*.yaml`): a base run config, overrides, and a grid XOR an Optuna study.

Parsed strictly with the run-config machinery (`suite.config.from_dict`): an unknown key or a
wrong type fails with one line naming the key. `validate_spec` then resolves *every* grid point
(and the corners of a study's search space) with `load_run_config`, so a grid key that is not a
config key, or a combination the config rejects, fails before anything is submitted.

    name: scaling-cpu
    base: builtin:demo-digits                   # path(s) relative to this file, builtin:NAME, or a mapping
    set: [train.total_images=4096]              # or {train.total_images: 4096}
    grid:                                       # cartesian product over config keys, plus two special keys:
      method.name: [vanilla, selfflow]
      model.depth: [2, 4]
      variant: [{_name: r50, method.mask_ratio: 0.5}]     # maps of overrides
      config: [null, builtin:ablations/selfflow-no-rep]   # run-config files merged over the base
    executor: {kind: slurm, partition: local, cpus_per_task: 1, mem_gb: 2, timeout_min: 10}

docs/SWEEPS.md has the full reference.
"""
from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from suite.config import RunConfig, deep_merge, config_hash, from_dict, load_run_config, read_yaml_config
from suite.errors import ConfigError, SuiteError

EXECUTOR_KINDS = ("local", "debug", "slurm")
VARIANT_KEY = "variant"  # grid key whose values are maps of overrides (ablations), not one value
CONFIG_KEY = "config"  # grid key whose values are run-config files merged over the base (presets)


@dataclass
class ExecutorSpec:
    kind: Literal["local", "debug", "slurm"] = "local"
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1  # DDP: one task per GPU; suite.train.distributed reads SLURM's env
    cpus_per_task: int = 1
    mem_gb: Optional[float] = None  # None: the cluster's default (DefMemPerCPU)
    timeout_min: int = 60
    constraint: Optional[str] = None
    array_parallelism: int = 8  # most jobs of one array running at once (also the local limit)
    max_requeues: int = 3  # Submitit's max_num_timeout: preemptions are free, time-outs count
    signal_delay_s: int = 90  # USR2 this long before the time limit: time to checkpoint
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load …)
    additional: dict[str, Any] = field(default_factory=dict)  # more sbatch options, {exclude: n1}


@dataclass
class ParamSpec:
    """One search-space dimension. `type: log` is shorthand for a log-uniform float."""

    type: Literal["float", "int", "log", "categorical"] = "float"
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    choices: list[Any] = field(default_factory=list)


@dataclass
class StudySpec:
    space: dict[str, ParamSpec] = field(default_factory=dict)
    metric: str = ""  # e.g. val/loss_mean: reported at every log/eval, the last value is the objective
    direction: Literal["minimize", "maximize"] = "minimize"
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    sampler_args: dict[str, Any] = field(default_factory=dict)  # e.g. {n_startup_trials: 4}
    pruner_args: dict[str, Any] = field(default_factory=dict)  # e.g. {n_startup_trials: 2}
    n_trials: int = 8
    parallel: int = 2  # trials running at once (job-array parallelism)
    storage: Optional[str] = None  # None: journal file <sweep_dir>/optuna.journal; or sqlite:///…, an RDB URL
    seed: int = 0


@dataclass
class SweepSpec:
    name: str = ""
    description: str = ""
    base: Union[str, list[str], dict[str, Any], None] = None  # run-config path(s) (relative to the spec), builtin:NAME, or a mapping
    set: Union[list[str], dict[str, Any]] = field(default_factory=list)
    grid: Optional[dict[str, list[Any]]] = None
    study: Optional[StudySpec] = None
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    dir: Optional[str] = None  # sweep directory (relative to the CWD); default <train.runs_root>/sweeps/<name>
    path = None  # where the spec was read from: a plain attribute, not a YAML key

    @property
    def kind(self) -> str:
        return "grid" if self.grid is not None else "study"


# ----------------------------------------------------------------------------- reading
def _fail(where: str, msg: str) -> SuiteError:
    return ConfigError(f"{where}: {msg}")


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file (every point resolved; nothing submitted)."""
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"sweep spec not found: {path}")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return parse_sweep_spec(d, p)


def parse_sweep_spec(d: dict, path: Path | None = None) -> SweepSpec:
    where = str(path) if path else "sweep spec"
    d = dict(d)
    grid, study = d.pop("grid", None), d.pop("study", None)
    try:
        spec = from_dict(SweepSpec, d)
        # Parsed apart from the rest: the generic Optional[...] check would hide which key is wrong.
        if grid is not None:
            if not isinstance(grid, dict):
                raise ConfigError(f"grid: expected a mapping of config key → list of values, got {grid!r}")
            for k, v in grid.items():
                if not isinstance(v, list):
                    raise ConfigError(f"grid.{k}: expected a list of values, got {v!r}")
            spec.grid = {str(k): v for k, v in grid.items()}
        if study is not None:
            if not isinstance(study, dict):
                raise ConfigError(f"study: expected a mapping, got {study!r}")
            spec.study = from_dict(StudySpec, study, "study")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    spec.path = path.resolve() if path else None
    validate_spec(spec)
    return spec


# ----------------------------------------------------------------------------- points
@dataclass
class Point:
    """One grid point or one trial: the overrides over the base, and the resolved config."""

    index: int
    overrides: list[str]  # key=value, in order; the point's identity is the hash of `cfg`
    values: dict[str, Any]  # what varies across the grid (for names, dry-run and tables)
    cfg: RunConfig
    hash: str

    @property
    def slug(self) -> str:
        parts = []
        for v in self.values.values():
            s = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            parts.append(re.sub(r"[^A-Za-z0-9.+-]+", "-", str(s)).strip("-"))
        return "_".join(parts)[:60] or "point"


_OVERRIDE_TEXT: dict[str, str] = {}  # repr(value) → its YAML flow text: a 1,000-point grid dumps each value once


def override(key: str, value: Any) -> str:
    """`key=value` with the value in YAML flow style, so `apply_overrides` reads back exactly this
    value (JSON would not do: YAML reads JSON's `1e-06` as a string)."""
    memo = f"{type(value).__name__}:{value!r}"
    if memo not in _OVERRIDE_TEXT:
        if len(_OVERRIDE_TEXT) > 100_000:  # a long Optuna study: stay bounded
            _OVERRIDE_TEXT.clear()
        _OVERRIDE_TEXT[memo] = _flow_yaml(value)
    return f"{key}={_OVERRIDE_TEXT[memo]}"


def _flow_yaml(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    elif text.endswith("..."):
        text = text[:-3].strip()
    return text


def set_overrides(spec: SweepSpec) -> list[str]:
    if isinstance(spec.set, dict):
        return [override(k, v) for k, v in spec.set.items()]
    return list(spec.set)


def read_config_file(spec: SweepSpec, path: str) -> dict:
    """A run-config YAML named in a spec: relative to the spec's folder first, then as given.
    Read once per spec (a grid resolves every point from the same files); a copy is returned."""
    cache = spec.__dict__.setdefault("_file_cache", {})
    if path not in cache:
        cand = spec.path.parent / path if spec.path is not None and not path.startswith("builtin:") and not Path(path).is_absolute() else None
        cache[path] = read_yaml_config(cand) if cand is not None and cand.is_file() else read_yaml_config(path)
    return copy.deepcopy(cache[path])


def base_source(spec: SweepSpec, extra_files: tuple[str, ...] = ()) -> dict:
    """The base as a mapping for `load_run_config`: the base file(s) or mapping, then `extra_files`."""
    if isinstance(spec.base, dict):
        d = copy.deepcopy(spec.base)
    else:
        d = {}
        for b in [spec.base] if isinstance(spec.base, str) else (spec.base or []):
            d = deep_merge(d, read_config_file(spec, b))
    for f in extra_files:
        d = deep_merge(d, read_config_file(spec, f))
    return d


def _label(key: str, v: Any) -> Any:
    if key == VARIANT_KEY:
        return v.get("_name", ",".join(f"{a}={b}" for a, b in v.items()))
    if key == CONFIG_KEY:
        return Path(str(v).split(":", 1)[-1]).stem if v else "base"
    return v


def resolve_point(spec: SweepSpec, index: int, values: dict[str, Any], where: str) -> Point:
    ovr = set_overrides(spec)
    files = []
    for k, v in values.items():
        if k == VARIANT_KEY:
            ovr += [override(vk, vv) for vk, vv in v.items() if vk != "_name"]
        elif k == CONFIG_KEY:
            files += [v] if v else []
        else:
            ovr.append(override(k, v))
    try:
        cfg = load_run_config(base_source(spec, tuple(files)), ovr)
    except SuiteError as e:
        raise ConfigError(f"{where}: {e}") from None
    if files:
        ovr = [f"@{f}" for f in files] + ovr  # recorded: which preset files this point merged
    return Point(index, ovr, {k: _label(k, v) for k, v in values.items()}, cfg, config_hash(cfg))


def grid_points(spec: SweepSpec) -> list[Point]:
    """Every point of the cartesian product, resolved; duplicates (same config) are an error.
    Resolved once per spec object (validation, planning and status all ask for them)."""
    key = repr((spec.base, spec.set, spec.grid, spec.path))
    cached = spec.__dict__.get("_points")
    if cached is not None and cached[0] == key:
        return cached[1]
    points = _resolve_grid(spec)
    spec.__dict__["_points"] = (key, points)
    return points


def _resolve_grid(spec: SweepSpec) -> list[Point]:
    keys = list(spec.grid or {})
    points, seen = [], {}
    for i, combo in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        label = ", ".join(f"{k}={v}" for k, v in values.items())
        p = resolve_point(spec, i, values, f"{_where(spec)}: grid point {i} ({label})")
        if p.hash in seen:
            raise ConfigError(
                f"{_where(spec)}: grid points {seen[p.hash]} and {i} resolve to the same run config "
                f"({label}); a grid key does not change the computation"
            )
        seen[p.hash] = i
        points.append(p)
    return points


# ----------------------------------------------------------------------------- validation
def _where(spec: SweepSpec) -> str:
    return str(spec.path) if spec.path else "sweep spec"


def validate_spec(spec: SweepSpec) -> None:
    w = _where(spec)
    if not spec.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.name):
        raise _fail(w, f"name: must be a non-empty name of letters, digits, '.', '_', '-', got {spec.name!r}")
    if (spec.grid is None) == (spec.study is None):
        raise _fail(w, "grid/study: give exactly one of 'grid:' (a cartesian product) or 'study:' (an Optuna study)")
    if isinstance(spec.set, list):
        for s in spec.set:
            if "=" not in s:
                raise _fail(w, f"set: {s!r} is not key=value")
    _validate_executor(spec.executor, w)
    try:
        load_run_config(base_source(spec), set_overrides(spec))
    except SuiteError as e:
        raise _fail(w, f"base/set: {e}") from None
    if spec.grid is not None:
        if not spec.grid:
            raise _fail(w, "grid: is empty; give at least one key with a list of values")
        for k, vals in spec.grid.items():
            if not vals:
                raise _fail(w, f"grid.{k}: empty list of values")
            if k == VARIANT_KEY and not all(isinstance(v, dict) for v in vals):
                raise _fail(w, f"grid.{k}: each variant must be a mapping of config key → value")
            if k == CONFIG_KEY and not all(v is None or isinstance(v, str) for v in vals):
                raise _fail(w, f"grid.{k}: each value must be a run-config path (or null for the base alone)")
        grid_points(spec)  # resolves every point: unknown keys and bad values name the point
    else:
        _validate_study(spec, w)


def _validate_executor(e: ExecutorSpec, w: str) -> None:
    for key in ("nodes", "tasks_per_node", "cpus_per_task", "timeout_min", "array_parallelism"):
        if getattr(e, key) < 1:
            raise _fail(w, f"executor.{key}: must be ≥ 1, got {getattr(e, key)}")
    if e.gpus_per_node < 0:
        raise _fail(w, f"executor.gpus_per_node: must be ≥ 0, got {e.gpus_per_node}")
    if e.mem_gb is not None and e.mem_gb <= 0:
        raise _fail(w, f"executor.mem_gb: must be positive, got {e.mem_gb}")
    if e.max_requeues < 0:
        raise _fail(w, f"executor.max_requeues: must be ≥ 0, got {e.max_requeues}")
    check_executor_kind(e, e.kind, w)


def check_executor_kind(e: ExecutorSpec, kind: str, w: str) -> None:
    """Combinations a given executor cannot run (also checked when --executor overrides the kind)."""
    if kind not in EXECUTOR_KINDS:
        raise _fail(w, f"executor.kind: {kind!r} not allowed; allowed: {', '.join(EXECUTOR_KINDS)}")
    if kind in ("local", "debug") and e.nodes > 1:
        raise _fail(w, f"executor.nodes: {e.nodes} nodes need executor.kind slurm (the {kind} executor runs on this machine)")
    if kind == "debug" and e.tasks_per_node > 1:
        raise _fail(w, "executor.tasks_per_node: the debug executor runs one task in this process; use local or slurm")
    if e.gpus_per_node and e.tasks_per_node not in (1, e.gpus_per_node):
        raise _fail(w, f"executor.tasks_per_node: {e.tasks_per_node} tasks for {e.gpus_per_node} GPUs per node; DDP wants one task per GPU")


def _validate_study(spec: SweepSpec, w: str) -> None:
    s = spec.study
    if not s.space:
        raise _fail(w, "study.space: is empty; give at least one config key to search")
    if not s.metric:
        raise _fail(w, "study.metric: required (the metric name the trainer logs, e.g. val/loss_mean)")
    if s.n_trials < 1:
        raise _fail(w, f"study.n_trials: must be ≥ 1, got {s.n_trials}")
    if not 1 <= s.parallel <= s.n_trials:
        raise _fail(w, f"study.parallel: must be in 1..n_trials ({s.n_trials}), got {s.parallel}")
    for k, p in s.space.items():
        key = f"study.space.{k}"
        if p.type == "categorical":
            if not p.choices:
                raise _fail(w, f"{key}.choices: a categorical parameter needs a non-empty list of choices")
            if p.low is not None or p.high is not None:
                raise _fail(w, f"{key}: a categorical parameter takes choices, not low/high")
        else:
            if p.choices:
                raise _fail(w, f"{key}.choices: only for type categorical (this one is {p.type})")
            if p.low is None or p.high is None:
                raise _fail(w, f"{key}: type {p.type} needs low and high")
            if not p.low < p.high:
                raise _fail(w, f"{key}: low ({p.low}) must be below high ({p.high})")
            if (p.log or p.type == "log") and p.low <= 0:
                raise _fail(w, f"{key}.low: a log scale needs low > 0, got {p.low}")
            if (p.log or p.type == "log") and p.step is not None:
                raise _fail(w, f"{key}.step: Optuna does not allow step with a log scale")
        if s.sampler == "grid" and p.type in ("float", "log") and p.step is None:
            raise _fail(w, f"{key}: sampler grid needs a finite space: give step, or use type categorical")
    from suite.sweeps.study import make_pruner, make_sampler

    make_sampler(s, 0, w)
    make_pruner(s, w)
    # The corners of the space must be valid run configs (names the key that is not a config key).
    for corner in ("low", "high"):
        values = {k: space_corner(p, corner) for k, p in s.space.items()}
        label = ", ".join(f"{k}={v}" for k, v in values.items())
        resolve_point(spec, 0, values, f"{w}: study.space ({label})")


def space_corner(p: ParamSpec, corner: str) -> Any:
    if p.type == "categorical":
        return p.choices[0] if corner == "low" else p.choices[-1]
    v = p.low if corner == "low" else p.high
    return int(v) if p.type == "int" else float(v)
