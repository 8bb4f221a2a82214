"""`suite sweep SPEC [--executor local|debug|slurm] [--dry-run] [--wait]` and `suite sweep status SPEC`."""
from __future__ import annotations

import argparse

from suite.errors import SuiteError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SPEC|status", help="a sweep spec (sweeps/*.yaml), or 'status'")
    parser.add_argument("spec", nargs="?", metavar="SPEC", help="with 'status': the spec whose table of points to print")
    parser.add_argument("--executor", choices=["local", "debug", "slurm"], default=None,
                        help="override the spec's executor.kind")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the points and resources; submit nothing")
    parser.add_argument("--wait", action="store_true", default=None,
                        help="SLURM: wait until every job has ended (local/debug always wait)")


def run(args: argparse.Namespace) -> int:
    from suite.sweeps import load_sweep_spec, run_sweep, status_sweep

    if args.target == "status":
        if not args.spec:
            raise SuiteError("usage: suite sweep status SPEC")
        return status_sweep(load_sweep_spec(args.spec))
    if args.spec:
        raise SuiteError(f"expected one sweep spec, got two: {args.target} {args.spec} (did you mean 'status'?)")
    return run_sweep(load_sweep_spec(args.target), kind=args.executor, dry_run=args.dry_run, wait=args.wait)
