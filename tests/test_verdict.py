"""The verdict on synthetic MLflow runs with planted effects: a planted effect outside seed noise
reads "agrees" / "disagrees" with the right sign, a null effect reads "not resolved"."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from reports.data import annotate, curves
from reports.mlflow_io import load_runs
from reports.verdict import AGREES, CLAIMS, DISAGREES, UNRESOLVED, judge, paper_block, verdicts

SEEDS = (0, 1, 2, 3)
EVERY, TOTAL = 1000, 6000
# FID offset of each method from vanilla (planted): Self-Flow clearly better, REPA the same as
# Self-Flow (null), dual timesteps alone clearly WORSE than vanilla (the paper says better).
OFFSET = {"vanilla": 0.0, "selfflow": -6.0, "repa": -6.0, "selfflow-no-rep": +5.0}
AUX = {"vanilla": 0.0, "selfflow": 0.3, "repa": 0.1, "selfflow-no-rep": 0.0}
DEPTH = 10  # paper block round(0.3 · 10) = 3


def _fid(method, seed, step):
    rng = np.random.default_rng(zlib.crc32(f"{method}/{seed}/{step}".encode()))
    shared = np.random.default_rng(seed).normal(0, 2.0)  # a seed effect both methods share
    return 40 + 60 * (1000 / step) ** 0.5 + OFFSET[method] + shared + rng.normal(0, 0.4)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _store(tmp_path_factory, trained=True)


def _store(tmp_path_factory, trained: bool):
    """Every run also logs its class consistency: 0.9, or 0.12 (chance 0.1) when not `trained`."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("verdict")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("v", artifact_location=(path / "art").as_uri())
    for method in OFFSET:
        for seed in SEEDS:
            tags = {"method": method.split("-")[0], "seed": str(seed), "sweep": "v", "status": "finished"}
            if method == "selfflow-no-rep":
                tags["ablation"] = method
            run = client.create_run(exp, run_name=f"{method}-s{seed}", tags=tags)
            backbone = 1e6
            params = {"model.depth": DEPTH, "model.hidden_size": 32, "n_params": 50_000, "seed": seed,
                      "flops_per_image_backbone": backbone, "flops_per_image_total": backbone * (1 + AUX[method])}
            metrics = []
            for step in range(EVERY, TOTAL + 1, EVERY):
                metrics.append(Metric("eval/fid1k_digits-classifier", _fid(method, seed, step), 0, step))
                metrics.append(Metric("eval/class_consistency1000", 0.9 if trained else 0.12, 0, step))
                for b in (1, 3, 6):
                    acc = 0.3 + (0.2 if method == "selfflow" and b == 3 else 0.0) + 0.01 * seed
                    metrics.append(Metric(f"eval/probe_acc_block{b}", acc, 0, step))
            client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()], metrics=metrics)
            client.set_terminated(run.info.run_id)
    return uri


@pytest.fixture(scope="module")
def result(store):
    raw, history = load_runs(store, sweep="v")
    runs = annotate(raw)
    return verdicts(runs, curves(history, runs))


def _row(head, key):
    text = next(c.text for c in CLAIMS if c.key == key)
    return head[head["claim"].str.startswith(text)].iloc[0]


def test_planted_effects_read_with_the_right_sign(result):
    head, details = result
    assert _row(head, "sf_vs_vanilla")["verdict (images)"] == AGREES
    assert _row(head, "dts_vs_vanilla")["verdict (images)"] == DISAGREES
    assert _row(head, "sf_vs_repa")["verdict (images)"] == UNRESOLVED
    assert _row(head, "probe_early_block")["verdict (images)"] == AGREES
    assert "block3" in _row(head, "probe_early_block")["metric (size)"]
    d = details.set_index("claim")
    assert d.loc["sf_vs_vanilla", "img_effect"] == pytest.approx(-6.0, abs=1.0)
    assert d.loc["dts_vs_vanilla", "img_effect"] == pytest.approx(5.0, abs=1.0)
    assert d.loc["sf_vs_vanilla", "img_n_pairs"] == len(SEEDS)
    # no SRA and no no-mask runs: those claims are not testable here and are left out
    assert "sf_vs_sra" not in set(d.index) and "no_mask_costs" not in set(d.index)


def test_equal_flops_reads_the_cheaper_method_further_along(result):
    _, details = result
    d = details.set_index("claim")
    # vanilla is cheaper per image, so at Self-Flow's final compute vanilla has seen more images:
    # the effect at equal FLOPs is smaller than at equal images, and still agrees at this size.
    r = d.loc["sf_vs_vanilla"]
    assert r["flops"] == pytest.approx(TOTAL * 1e6)
    assert r["flops_effect"] < 0 and r["flops_effect"] > r["img_effect"] - 0.5
    assert r["flops_verdict"] == AGREES


def test_untrained_models_are_never_a_verdict(tmp_path_factory):
    """The same planted effects between models whose samples are at chance: "not resolved", and
    the note says why (the issue: a table comparing untrained models)."""
    raw, history = load_runs(_store(tmp_path_factory, trained=False), sweep="v")
    runs = annotate(raw)
    head, _ = verdicts(runs, curves(history, runs))
    assert set(head["verdict (images)"]) == {UNRESOLVED} and set(head["verdict (FLOPs)"]) == {UNRESOLVED}
    assert head["note"].str.startswith("untrained").all()


def test_judge_needs_two_seeds_and_an_interval_off_zero():
    assert judge([1.0], +1)["verdict"] == UNRESOLVED
    assert judge([1.0, 1.1, 0.9], +1)["verdict"] == AGREES
    assert judge([1.0, 1.1, 0.9], -1)["verdict"] == DISAGREES
    assert judge([1.0, -1.0, 0.1], +1)["verdict"] == UNRESOLVED
    assert math.isnan(judge([], +1)["effect"])


def test_paper_block_is_three_tenths_of_depth():
    assert paper_block(28) == 8 and paper_block(10) == 3 and paper_block(2) == 1


def test_no_common_methods_gives_empty_tables():
    runs = pd.DataFrame({"run_id": ["a"], "method_key": ["vanilla"], "size_key": [1.0], "size": ["x"],
                         "seed_key": ["0"]})
    cur = pd.DataFrame({"run_id": ["a"], "metric": ["val/loss"], "step": [10], "value": [1.0],
                        "flops_total": [10.0]})
    head, details = verdicts(runs, cur)
    assert head.empty and details.empty
