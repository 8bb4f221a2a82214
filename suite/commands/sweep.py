"""`suite sweep SPEC [--executor local|debug|slurm] [--dry-run] [--wait]`, `suite sweep status SPEC`,
`suite sweep cancel SPEC [POINT…]`, `suite sweep logs SPEC POINT [--err] [--follow]`,
`suite sweep resubmit SPEC --failed|--lost|POINT… [--update-code]` (logic: suite.sweeps.dispatch / control)."""
from __future__ import annotations

import argparse

from suite.errors import SuiteError

ACTIONS = ("status", "cancel", "logs", "resubmit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SPEC|status|cancel|logs|resubmit",
                        help="a sweep spec (sweeps/*.yaml) to run, or an action followed by the spec")
    parser.add_argument("rest", nargs="*", metavar="SPEC [POINT…]",
                        help="with an action: the spec, then points (label, # or hash prefix as `status` prints)")
    parser.add_argument("--executor", choices=["local", "debug", "slurm"], default=None,
                        help="override the spec's executor.kind")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the points and resources; submit nothing")
    parser.add_argument("--wait", action="store_true", default=None,
                        help="SLURM: wait until every job has ended (local/debug always wait)")
    parser.add_argument("--err", action="store_true", help="logs: the job's stderr instead of stdout")
    parser.add_argument("--follow", action="store_true", help="logs: keep printing until the job ends")
    parser.add_argument("--failed", action="store_true", help="resubmit: every failed point")
    parser.add_argument("--lost", action="store_true", help="resubmit: every lost (or interrupted) point")
    parser.add_argument("--update-code", action="store_true",
                        help="SPEC or resubmit: replace the sweep's code snapshot with this checkout's code before "
                             "submitting (jobs otherwise keep the snapshot taken at the first submission)")


def run(args: argparse.Namespace) -> int:
    from suite.sweeps import Sweep, load_sweep_spec, run_sweep, status_sweep
    from suite.sweeps import control

    if args.target not in ACTIONS:
        if args.rest:
            raise SuiteError(f"expected one sweep spec, got {args.target} {' '.join(args.rest)} (actions: {', '.join(ACTIONS)})")
        return run_sweep(load_sweep_spec(args.target), kind=args.executor, dry_run=args.dry_run, wait=args.wait,
                         update_code=args.update_code)
    if not args.rest:
        raise SuiteError(f"usage: suite sweep {args.target} SPEC" + (" POINT" if args.target == "logs" else ""))
    spec, points = load_sweep_spec(args.rest[0]), args.rest[1:]
    if args.target == "status":
        return status_sweep(spec)
    if args.target == "cancel":
        return control.cancel(Sweep(spec, args.executor), points)
    if args.target == "logs":
        if len(points) != 1:
            raise SuiteError("usage: suite sweep logs SPEC POINT [--err] [--follow]")
        return control.logs(Sweep(spec, args.executor), points[0], err=args.err, follow=args.follow)
    return control.resubmit(spec, args.executor, args.failed, args.lost, points, wait=args.wait,
                            update_code=args.update_code)
