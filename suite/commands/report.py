"""`suite report (--sweep NAME | --experiment NAME) --out DIR [--tracking-uri URI]`."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_URI = "sqlite:///runs/mlflow.db"  # the trainer's default store: <runs_root>/mlflow.db


def add_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sweep", help="report the runs tagged sweep=NAME (any experiment)")
    which.add_argument("--experiment", help="report every run of this MLflow experiment")
    parser.add_argument("--out", required=True, help="directory for report.html, tables/ and figures/")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_URI})")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")


def run(args) -> int:
    from reports.build import build_report

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = f"sqlite:///{Path('runs').resolve() / 'mlflow.db'}"
    build_report(uri, args.out, sweep=args.sweep, experiment=args.experiment,
                 n_boot=args.bootstrap, seed=args.seed)
    return 0
