"""`suite demo --quick` end to end on a fresh output folder, as the README's first command runs it."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import have_chromium, open_in_chromium


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "SUITE_CACHE": str(out / "cache")}  # nothing from earlier runs
    r = subprocess.run([sys.executable, "-m", "suite.cli", "demo", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=1500, env=env, cwd=out)
    return out, r


def test_demo_quick_runs_every_method_and_prints_the_report_path(demo):
    out, r = demo
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    m = re.search(r"Report: (\S+\.html)", r.stdout)
    assert m and Path(m.group(1)).is_file()
    html = Path(m.group(1)).read_text()
    for label in ("Vanilla FM", "REPA", "Self-Flow"):
        assert label in html
    assert "trained and evaluated in" in html and "CPU core(s)" in html  # the time it took, and where
    assert 'id="samples"' in html and 'id="verdict"' in html
    assert "6 finished" in r.stdout  # 3 methods × 2 sizes
    # every run logged to MLflow with its evaluation metrics
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'runs' / 'mlflow.db'}")
    tagged = client.search_runs([client.get_experiment_by_name("demo").experiment_id], "tags.sweep = 'demo-quick'")
    runs = [r for r in tagged if "method" in r.data.tags]  # the sweep's parent run has no method
    parents = [r for r in tagged if "method" not in r.data.tags]
    assert len(runs) == 6 and len(parents) == 1
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)
    assert {r.data.tags["method"] for r in runs} == {"vanilla", "repa", "selfflow"}
    for run in runs:
        keys = set(run.data.metrics)
        assert {"train/loss", "val/loss_mean", "eval/fid200_digits-classifier", "eval/class_consistency200"} <= keys
        assert any(k.startswith("eval/probe_acc_block") for k in keys)


def test_demo_rerun_submits_nothing(demo):
    out, _ = demo
    r = subprocess.run([sys.executable, "-m", "suite.cli", "demo", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=out, env={**os.environ, "SUITE_CACHE": str(out / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nothing to submit" in r.stdout and "reusing" in r.stdout


@pytest.mark.skipif(not have_chromium(), reason="needs Debian's chromium at /usr/bin/chromium (scripts/test.sh installs it as root)")
def test_demo_report_opens_in_headless_chromium(demo, tmp_path):
    out, r = demo
    html = Path(re.search(r"Report: (\S+\.html)", r.stdout).group(1))
    seen = open_in_chromium(html, tmp_path)
    assert not seen["js_error"]
    assert seen["decoded"] == seen["images"] >= 4
    assert seen["screenshot"].stat().st_size > 10_000
