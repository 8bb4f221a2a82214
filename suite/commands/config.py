"""`suite config CONFIG.yaml [--set ...]`: validate and print the resolved config."""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args) -> int:
    from suite.config import config_hash, dump_config, load_run_config

    cfg = load_run_config(args.configs, args.overrides)
    print(dump_config(cfg), end="")
    print(f"# config hash: {config_hash(cfg)}")
    return 0
