"""Sweeps: grids and Optuna studies over run configs, dispatched with Submitit (local, debug, SLURM).

`load_sweep_spec(path)` validates a spec (every point resolved) before anything is submitted;
`run_sweep(spec, ...)` submits what needs submitting; `status_sweep(spec)` prints the table.
The CLI is `suite sweep` (`suite.commands.sweep`).
"""
from suite.sweeps.dispatch import Sweep, run_sweep, status_sweep, wait_for
from suite.sweeps.spec import SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = ["Sweep", "SweepSpec", "load_sweep_spec", "parse_sweep_spec", "run_sweep", "status_sweep", "wait_for"]
