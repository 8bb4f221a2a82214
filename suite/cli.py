"""`suite` command line: the application layer's entry point. Subcommands live in their own
modules (suite/commands/), imported only when used; plugins (suite.commands.plugins) are loaded
first so every command sees the same methods, datasets, backbones and encoders.

Each module exposes `add_arguments(parser)` and `run(args) -> int`. User errors (SuiteError) print
one line `error: ...` and exit 2; nothing already written is removed.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# name → (module, one-line help)
COMMANDS = {
    "train": ("suite.commands.train", "train (or resume) one run from a YAML config"),
    "sample": ("suite.commands.sample", "write samples from a run's EMA model"),
    "eval": ("suite.commands.eval", "evaluate a run: FID/KID/IS/PR, class consistency, linear probes"),
    "sweep": ("suite.commands.sweep", "run a sweep (grid or Optuna study) locally or on SLURM; `sweep status`"),
    "report": ("suite.commands.report", "build the report (tables, scaling laws, figures, HTML) from MLflow"),
    "encoder": ("suite.commands.encoder", "train a small encoder on built-in data for REPA (`encoder train`)"),
    "demo": ("suite.commands.demo", "the built-in demo: a small scaling grid, evaluation and the report"),
    "benchmark": ("suite.commands.benchmark", "the paper's question on built-in shapes: 6 methods × 3 seeds × 3 sizes, verdict report"),
    "bench": ("suite.commands.bench", "throughput / FLOPs / memory benchmark of a config, logged to MLflow"),
    "data": ("suite.commands.data", "data tools: `data encode` (VAE latents), `data show`"),
    "config": ("suite.commands.config", "print a resolved config (validates it)"),
    "checkpoint": ("suite.commands.checkpoint", "import a published SiT / REPA / Self-Flow checkpoint as a run"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="suite", description="Self-supervised flow matching benchmark suite.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from suite.commands.plugins import activate_plugins
    from suite.errors import SuiteError

    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    cmd = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        activate_plugins()
        parser = build_parser(only=cmd)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `suite ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; the run's last checkpoint is kept and a re-run resumes from it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
