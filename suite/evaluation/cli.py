"""`suite eval RUN_DIR [--n N] [--metrics ...] [--checkpoint ...]`: evaluate a run's EMA weights
and log the numbers into the run's MLflow run at its images-seen step."""
from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="run directory (holds config.yaml, state.json, checkpoints/)")
    parser.add_argument("--n", type=int, default=None, help="generated samples per image metric (default: eval.n_samples)")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="fid kid isc prc class_consistency probe, or full names like fid2k_inception "
                             "(default: eval.metrics of the run's config)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file or a name under RUN_DIR/checkpoints (default: latest.pt; "
                             "snapshot-0000000000.pt is the step-0 model)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override eval/sampling settings, e.g. --set eval.extractor=inception --set sampling.steps=100")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    parser.add_argument("--no-log", action="store_true", help="do not log to MLflow (the JSON record is still written)")


def run(args) -> int:
    from suite.evaluation.run_eval import evaluate_run

    results = evaluate_run(args.run_dir, n=args.n, metrics=args.metrics, checkpoint=args.checkpoint,
                           device=args.device, log=not args.no_log, overrides=args.overrides)
    for k, v in sorted(results.items()):
        print(f"{k}\t{v:.6g}")
    print(json.dumps({"run_dir": str(args.run_dir), "n_metrics": len(results)}))
    return 0
