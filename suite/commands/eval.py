"""`suite eval RUN_DIR [--n N] [--metrics ...] [--checkpoint ...]`: evaluate a run's EMA weights
and log the numbers into the run's MLflow run at its images-seen step."""
from __future__ import annotations

import json
import time
from pathlib import Path

from suite.commands.run_loading import load_run
from suite.errors import SuiteError
from suite.evaluation.run_eval import Evaluator


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="run directory (holds config.yaml, state.json, checkpoints/)")
    parser.add_argument("--n", type=int, default=None, help="generated samples per image metric (default: eval.n_samples)")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="fid kid isc prc class_consistency caption_consistency probe, or full names like fid2k_inception "
                             "(default: eval.metrics of the run's config)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file or a name under RUN_DIR/checkpoints (default: latest.pt; "
                             "snapshot-0000000000.pt is the step-0 model)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override eval/sampling settings, e.g. --set eval.extractor=inception --set sampling.steps=100")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    parser.add_argument("--no-log", action="store_true", help="do not log to MLflow (the JSON record is still written)")


def run(args) -> int:
    results = evaluate_run(args.run_dir, n=args.n, metrics=args.metrics, checkpoint=args.checkpoint,
                           device=args.device, log=not args.no_log, overrides=args.overrides)
    for k, v in sorted(results.items()):
        print(f"{k}\t{v:.6g}")
    print(json.dumps({"run_dir": str(args.run_dir), "n_metrics": len(results)}))
    return 0


def log_to_run(cfg, run_dir: Path, metrics: dict[str, float], step: int, record_path: Path | None) -> str | None:
    """Log into the run's own MLflow run at `step` (its status is left as it was)."""
    from suite.tracking import get_client, resolve_tracking_uri, with_retry

    state_path = Path(run_dir) / "state.json"
    run_id = json.loads(state_path.read_text()).get("mlflow_run_id") if state_path.is_file() else None
    if not (cfg.tracking.enabled and run_id):
        return None
    from mlflow.entities import Metric, RunTag

    client = get_client(resolve_tracking_uri(cfg.tracking, cfg.train.runs_root))
    now = int(time.time() * 1000)
    ms = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()]
    with_retry(lambda: client.log_batch(run_id, metrics=ms, tags=[RunTag("eval.last_protocol", str(record_path))]))
    if record_path is not None and record_path.is_file():
        with_retry(lambda: client.log_artifact(run_id, str(record_path), "eval"))
    return run_id


def evaluate_run(run_dir, n: int | None = None, metrics=None, checkpoint=None, device=None, log: bool = True,
                 overrides: list[str] | None = None) -> dict[str, float]:
    """`suite eval`: evaluate a run's EMA weights and log into its MLflow run at its images-seen step."""
    run_dir = Path(run_dir)
    loaded = load_run(run_dir, checkpoint, overrides or (), device=device or "auto")
    cfg, model, images_seen, dev = loaded.cfg, loaded.ema, loaded.images_seen, loaded.device
    if metrics is None and not cfg.eval.metrics:
        raise SuiteError(f"no metrics requested: pass --metrics (e.g. fid kid class_consistency probe) or set eval.metrics in {run_dir / 'config.yaml'}")
    ev = Evaluator(cfg, run_dir, dev, metrics=metrics, n=n)
    results = ev(model, images_seen)
    if log:
        log_to_run(cfg, run_dir, results, images_seen, run_dir / "eval" / f"eval-{images_seen:010d}.json")
    return results
