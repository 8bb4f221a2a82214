"""`suite bench CONFIG [--set ...] [--methods vanilla,repa,sra,selfflow] [--json]`: training throughput,
counted FLOPs and memory of several methods side by side, logged to MLflow (experiment `suite-bench`).

Speed and memory targets live here, not in timed tests. The measuring is suite.train.bench.
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("configs", nargs="+")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--methods", default=None, help="NAME[:KEY=VALUE;…],… (default: the config's method)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per method per round")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per method first")
    p.add_argument("--repeats", type=int, default=3, help="rounds; methods interleave, the order rotating")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by method")
    p.add_argument("--experiment", default="suite-bench")
    p.add_argument("--no-log", action="store_true", help="print only")


def run(args) -> int:
    import json

    from suite.config import config_to_dict, flatten, load_run_config
    from suite.errors import ConfigError
    from suite.tracking import resolve_tracking_uri
    from suite.train.bench import MethodSpec, bench_methods, format_table, log_bench, parse_methods

    if min(args.steps, args.repeats) < 1 or args.warmup < 0:
        raise ConfigError("--steps and --repeats must be ≥ 1, --warmup ≥ 0")
    cfg = load_run_config(args.configs, args.overrides)
    specs = parse_methods(args.methods) if args.methods else [MethodSpec(cfg.method.name)]
    results = bench_methods(args.configs, args.overrides, specs, args.steps, args.warmup, args.repeats)
    print(json.dumps(results) if args.json else format_table(results))
    if not args.no_log:
        uri = resolve_tracking_uri(cfg.tracking, cfg.train.runs_root)
        params = {k: v for k, v in flatten(config_to_dict(cfg)).items() if not k.startswith("method.")}
        run_id = log_bench(results, uri, args.experiment, f"bench-{cfg.name}", params)
        if not args.json:
            print(f"logged to MLflow ({uri}, experiment {args.experiment}, run {run_id})")
    return 0
