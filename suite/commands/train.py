"""`suite train CONFIG.yaml [CONFIG2.yaml ...] [--set key=value ...]`."""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+", help="YAML run configs merged in order (builtin:NAME for shipped ones)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--run-dir", default=None, help="run directory (default: <train.runs_root>/<name>)")


def run(args) -> int:
    from suite.config import load_run_config
    from suite.train import train

    cfg = load_run_config(args.configs, args.overrides)
    result = train(cfg, args.run_dir)
    loss = result.final_metrics.get("train/loss")
    print(f"{result.status}: {result.run_dir} ({result.images_seen} images, train/loss {loss if loss is None else f'{loss:.4f}'}, "
          f"val/loss_mean {result.final_metrics.get('val/loss_mean', float('nan')):.4f}, MLflow run {result.mlflow_run_id})")
    return 0 if result.status in ("finished", "interrupted") else 1
