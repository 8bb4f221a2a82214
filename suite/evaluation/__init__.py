"""Evaluation: FID/KID/IS/precision-recall (torch-fidelity, clean-fid), extractors, reference
statistics, linear probes. The trainer calls `make_evaluator(cfg, run_dir)`; `suite eval` calls
`run_eval.evaluate_run`. Heavy imports are deferred so `import suite.evaluation` stays cheap.
"""
from __future__ import annotations


def make_evaluator(cfg, run_dir=None, device=None):
    """Callable (model_ema, images_seen) → {metric name: value}; see run_eval.Evaluator."""
    from suite.evaluation.run_eval import make_evaluator as _make

    return _make(cfg, run_dir, device=device)


def evaluate(model, cfg, device, images_seen, run_dir=None):
    from suite.evaluation.run_eval import evaluate as _evaluate

    return _evaluate(model, cfg, device, images_seen, run_dir=run_dir)


def _versions() -> dict:
    """Library versions recorded with every cached artefact and evaluation."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("selfflow-suite", "torch", "torch-fidelity", "clean-fid", "numpy", "scipy", "transformers", "cd-fvd", "laion-clap"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


__all__ = ["make_evaluator", "evaluate"]
