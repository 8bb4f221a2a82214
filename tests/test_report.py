"""`suite report` end to end on an MLflow store the test writes with the real MLflow client.

Fixture: 3 methods × 2 sizes × 2 seeds in a temporary SQLite store, tagged like the trainer does,
plus a sweep parent run (no `method` tag) and a run of another sweep, both of which must be left out.
"""
import argparse
import math
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from suite.commands import report as cli
from suite.cli import main as suite_main

from browser import have_chromium, open_in_chromium
from reports.build import build_report
from reports.mlflow_io import load_runs
from suite.errors import SuiteError

METHODS = {"vanilla": 1.0, "repa": 1.6, "selfflow": 3.2}  # data efficiency: images count ×this
SIZES = {"small": dict(depth=2, hidden=32, n_params=30_000), "big": dict(depth=4, hidden=64, n_params=200_000)}
AUX = {"vanilla": 0.0, "repa": 0.1, "selfflow": 0.25}  # auxiliary forward FLOPs / backbone FLOPs
SEEDS = (0, 1)
EVERY = 512
TOTAL = 8192
PROBE_BLOCKS = (1, 2, 3, 4)


def _series(method, size, seed):
    """{metric: {step: value}} following L(N, D) = E + A/N^α + B/D_eff^β with seed noise."""
    rng = np.random.default_rng(zlib.crc32(f"{method}/{size}/{seed}".encode()))
    n = SIZES[size]["n_params"]
    total = TOTAL + (2048 if (method, size) == ("selfflow", "small") else 0)  # ran longer
    out = {}
    for step in range(EVERY, total + 1, EVERY):
        d = step * METHODS[method]
        noise = lambda s: float(np.exp(rng.normal(0, s)))
        out.setdefault("train/loss", {})[step] = (0.3 + 6 / n ** 0.25 + 40 / d ** 0.5) * noise(0.03)
        out.setdefault("val/loss_t0.5", {})[step] = (0.25 + 6 / n ** 0.25 + 40 / d ** 0.5) * noise(0.01)
        out.setdefault("perf/images_per_s", {})[step] = 1000.0 / (1 + n / 1e5) * noise(0.05)
        if step % 1024 == 0:
            out.setdefault("eval/fid2k_digits-classifier", {})[step] = (2 + 3e4 / n ** 0.5 + 900 / d ** 0.5) * noise(0.02)
            out.setdefault("eval/class_consistency2k", {})[step] = min(1.0, 0.3 + 0.02 * math.log(d) * (n / 3e4) ** 0.1) * noise(0.01)
        if step % 4096 == 0:
            for b in PROBE_BLOCKS:
                acc = 0.1 + 0.05 * b * (1.5 if method == "selfflow" else 1.0) * (step / TOTAL) ** 0.3
                out.setdefault(f"eval/probe_acc_block{b}", {})[step] = acc * noise(0.02)
    return out


def _png(path: Path) -> None:
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(path)


def _write_store(path: Path) -> dict:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("fixture", artifact_location=(path / "art").as_uri())
    parent = client.create_run(exp, run_name="sweep-parent", tags={"sweep": "grid"})
    client.set_terminated(parent.info.run_id)
    logged = {}
    for method in METHODS:
        for size, spec in SIZES.items():
            for seed in SEEDS:
                tags = {"method": method, "preset": "SiT-Nano/2", "dataset": "digits", "seed": str(seed),
                        "sweep": "grid", "config_hash": f"{method}-{size}-{seed}", "status": "finished",
                        "mlflow.parentRunId": parent.info.run_id}
                run = client.create_run(exp, run_name=f"{method}-{size}-s{seed}", tags=tags)
                backbone = 6.0 * spec["n_params"] * 16
                params = {"model.depth": spec["depth"], "model.hidden_size": spec["hidden"],
                          "model.preset": "SiT-Nano/2", "method.name": method, "seed": seed,
                          "train.total_images": TOTAL, "optim.lr": 1e-4, "n_params": spec["n_params"],
                          "flops_per_image_backbone": backbone,
                          "flops_per_image_total": backbone * (1 + AUX[method])}
                series = _series(method, size, seed)
                metrics = [Metric(k, v, 0, s) for k, steps in series.items() for s, v in steps.items()]
                client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
                for i in range(0, len(metrics), 500):
                    client.log_batch(run.info.run_id, metrics=metrics[i:i + 500])
                if (method, size, seed) == ("selfflow", "big", 0):
                    grid = path / "samples" / "grid-0000008192.png"
                    grid.parent.mkdir(exist_ok=True)
                    _png(grid)
                    client.log_artifact(run.info.run_id, str(grid), "samples")
                client.set_terminated(run.info.run_id)
                logged[run.info.run_id] = dict(method=method, size=size, seed=seed, series=series)
    other = client.create_run(exp, run_name="other-sweep", tags={"method": "sra", "sweep": "other"})
    client.log_batch(other.info.run_id, metrics=[Metric("train/loss", 1.0, 0, 512)])
    client.set_terminated(other.info.run_id)
    # one experiment with a single size and no Self-Flow: the report must say what it cannot do
    lone = client.create_experiment("lonely", artifact_location=(path / "art2").as_uri())
    for method in ("vanilla", "repa"):
        run = client.create_run(lone, run_name=method, tags={"method": method, "seed": "0", "status": "finished"})
        series = _series(method, "small", 0)
        client.log_batch(run.info.run_id, params=[Param("n_params", "30000"), Param("flops_per_image_total", "3e6")],
                         metrics=[Metric(k, v, 0, s) for k, st in series.items() for s, v in st.items()
                                  if not k.startswith("eval/probe")])
        client.set_terminated(run.info.run_id)
    return {"uri": uri, "logged": logged}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _write_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    printed = []
    html = build_report(store["uri"], out, sweep="grid", n_boot=30, echo=printed.append)
    return {"out": out, "html": html, "printed": "\n".join(printed)}


def test_load_runs_reads_tags_params_and_histories(store):
    runs, history = load_runs(store["uri"], sweep="grid")
    assert set(runs["run_id"]) == set(store["logged"])  # parent and the other sweep left out
    assert runs["model.depth"].dtype.kind in "if" and set(runs["model.depth"]) == {2, 4}
    assert set(runs["seed"]) == set(SEEDS)
    assert {"method", "preset", "dataset", "sweep", "config_hash", "status"} <= set(runs.columns)
    for run_id, rec in store["logged"].items():
        h = history[history["run_id"] == run_id]
        for metric, steps in rec["series"].items():
            got = h[h["metric"] == metric].set_index("step")["value"].to_dict()
            assert got == pytest.approx(steps, rel=1e-12)
        # the runs frame's metric columns are the final values
        row = runs.set_index("run_id").loc[run_id]
        assert row["train/loss"] == pytest.approx(rec["series"]["train/loss"][max(rec["series"]["train/loss"])])
    everything, _ = load_runs(store["uri"], experiment="fixture")
    assert len(everything) == len(store["logged"]) + 1  # + the other sweep's run; no parent


def test_report_contains_every_method_size_and_metric(report, store):
    page = report["html"].read_text()
    for label in ("Vanilla FM", "REPA", "Self-Flow"):
        assert label in page
    assert "d2×w32" in page and "d4×w64" in page
    metrics = {m for rec in store["logged"].values() for m in rec["series"]}
    for m in metrics:
        assert m in page, m
    assert page.count("data:image/png;base64,") >= 6  # convergence, probe figures and one sample grid (no scaling figures: 2 sizes)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "differ in more than their seed" not in page and "not finished" not in page
    figs = report["out"] / "figures"
    for name in ("convergence_val_loss_t0.5", "probe_vs_block"):  # 2 sizes: no scaling figures
        assert (figs / f"{name}.png").stat().st_size > 1000 and (figs / f"{name}.svg").exists(), name
    for ext in ("md", "tex", "csv"):
        text = (report["out"] / "tables" / f"comparison.{ext}").read_text()
        assert "Self-Flow" in text and "REPA" in text
    assert "Self-Flow" in report["printed"] and "report.html" in report["printed"]


def test_comparison_csv_equals_logged_values_at_matched_budget(report, store):
    logged = store["logged"]
    per_run = pd.read_csv(report["out"] / "tables" / "comparison_runs.csv")
    assert set(per_run["run_id"]) == set(logged)
    for r in per_run.itertuples():
        steps = logged[r.run_id]["series"][r.metric]
        expect_step = max(s for s in steps if s <= TOTAL)  # Self-Flow small ran past the budget
        assert r.step == expect_step
        assert r.value == pytest.approx(steps[expect_step], rel=1e-12)
    summary = pd.read_csv(report["out"] / "tables" / "comparison.csv")
    n_metrics = len({m for rec in logged.values() for m in rec["series"]})
    assert len(summary) == len(METHODS) * len(SIZES) * n_metrics
    assert set(summary["budget_images"]) == {TOTAL}
    for r in summary.itertuples():
        vals = [logged[i]["series"][r.metric] for i in logged
                if logged[i]["method"] == r.method_key and f"d{SIZES[logged[i]['size']]['depth']}×" in r.size]
        vals = [v[max(s for s in v if s <= TOTAL)] for v in vals]
        assert r.n_seeds == len(SEEDS)
        assert sorted(float(x) for x in r.values.split(";")) == pytest.approx(sorted(vals), rel=1e-12)
        assert r.mean == pytest.approx(np.mean(vals), rel=1e-12)
        assert r.ci_low < r.mean < r.ci_high


def test_fits_and_speedups_in_the_report(report):
    tabs = report["out"] / "tables"
    # two sizes cannot pin a scaling law nor a compute-optimal frontier: the page says so
    assert not (tabs / "exponents.csv").exists() and not (tabs / "frontier.csv").exists()
    page = report["html"].read_text()
    assert "scaling law not identified: only 2 model size(s)" in page
    assert "compute-optimal frontier not identified" in page
    sp = pd.read_csv(tabs / "speedup.csv")
    row = sp[(sp["metric"] == "val/loss_t0.5") & (sp["baseline"] == "vanilla") & (sp["size"].str.contains("d4"))].iloc[0]
    # Self-Flow's curve is vanilla's with 3.2x the images (same size): speed-up ~3.2 in images,
    # and 3.2 / 1.25 in FLOPs because its teacher forward costs 25 % more per image.
    assert row["speedup_images"] == pytest.approx(3.2, rel=0.15)
    assert row["speedup_flops"] == pytest.approx(3.2 / 1.25, rel=0.15)
    assert row["images_low"] <= row["speedup_images"] <= row["images_high"]


def test_verdict_and_sample_grids_in_the_report(report, store):
    page = report["html"].read_text()
    assert 'id="verdict"' in page and 'id="samples"' in page
    v = pd.read_csv(report["out"] / "tables" / "verdict.csv")
    # Self-Flow's curve is vanilla's with 3.2x the images: FID lower at equal images, with 2 seeds
    row = v[(v["claim"] == "sf_vs_vanilla")].sort_values("size_key").iloc[-1]
    assert row["img_effect"] < 0 and row["img_n_pairs"] == 2
    assert "Verdict on the paper's claims" in report["printed"]
    # the one run with a logged grid is shown, beside its numbers
    assert 'class="grid"' in page and "class consistency" in page
    assert "early block (0.3·depth" in page  # the probe figure marks the paper's block


def test_missing_data_gives_notes_not_crashes(store, tmp_path):
    html = build_report(store["uri"], tmp_path, experiment="lonely", n_boot=10, echo=lambda s: None)
    page = html.read_text()
    assert "only 1 model size" in page
    assert "No Self-Flow runs" in page
    assert "No eval/probe_acc_block" in page


def test_cli_run_and_user_errors(store, tmp_path):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(SystemExit):  # one of --sweep / --experiment is required
        parser.parse_args(["--out", str(tmp_path)])
    args = parser.parse_args(["--experiment", "lonely", "--out", str(tmp_path / "r"),
                              "--tracking-uri", store["uri"], "--bootstrap", "5"])
    assert cli.run(args) == 0 and (tmp_path / "r" / "report.html").exists()
    with pytest.raises(SuiteError, match="no MLflow experiment named 'nope'"):
        load_runs(store["uri"], experiment="nope")
    with pytest.raises(SuiteError, match="no runs"):
        load_runs(store["uri"], sweep="nope")
    with pytest.raises(SuiteError, match="no MLflow store"):
        load_runs(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    assert suite_main(["report", "--sweep", "x", "--out", str(tmp_path), "--tracking-uri",
                     f"sqlite:///{tmp_path / 'missing.db'}"]) == 2


@pytest.mark.skipif(not have_chromium(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
def test_html_opens_in_headless_chromium(report, tmp_path):
    seen = open_in_chromium(report["html"], tmp_path)
    assert not seen["js_error"]
    assert seen["decoded"] == seen["images"] >= 6  # every figure and sample grid decodes (2 sizes: no scaling figures)
    shot = seen["screenshot"]
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")  # to look at it: REPORT_SCREENSHOT=/tmp/x.png
    if keep:
        shutil.copy(shot, keep)
