"""`suite bench` side by side: keys, ratios consistent with the numbers, MLflow table, report section."""
import json
import subprocess
import sys

import pytest
import yaml


def test_bench_two_methods_json_logged_and_rendered(tiny_cfg, tmp_path):
    cfg = tiny_cfg(**{"train.batch_size": 8, "model.depth": 2})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "suite.cli", "bench", str(path), "--methods", "vanilla,selfflow:gamma=0.5",
                          "--json", "--steps", "2", "--warmup", "1", "--repeats", "2", "--set", "train.threads=1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(res) == {"vanilla", "selfflow:gamma=0.5", "_meta"}
    v, s = res["vanilla"], res["selfflow:gamma=0.5"]
    for r in (v, s):
        assert r["images_per_s"] == pytest.approx(8 / r["step_time_s"])
        assert r["step_time_min_s"] <= r["step_time_s"] <= r["step_time_max_s"]
        assert r["achieved_tflops"] == pytest.approx(r["images_per_s"] * r["flops_per_image"] / 1e3)
        assert r["mfu"] is None and r["peak_memory_gb"] is None  # CPU
    assert v["step_time_ratio"] == 1.0 and v["flops_ratio"] == 1.0
    assert s["step_time_ratio"] == pytest.approx(s["step_time_s"] / v["step_time_s"])
    assert s["flops_ratio"] == pytest.approx(s["flops_per_image"] / v["flops_per_image"])
    assert s["flops_ratio"] > 1.2  # the EMA teacher's forward is counted
    assert res["_meta"]["repeats"] == 2 and res["_meta"]["batch_size"] == 8

    from reports.bench import add_cost_section, latest_bench
    from reports.html import Page

    uri = f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    logged, _ = latest_bench(uri)
    assert logged["vanilla"]["step_time_s"] == v["step_time_s"]
    page = Page("t")
    add_cost_section(page, uri)
    html = page.render()
    assert "Cost" in html and "selfflow:gamma=0.5" in html


def test_bench_rejects_a_bad_method_list(tiny_cfg, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_cfg()))
    out = subprocess.run([sys.executable, "-m", "suite.cli", "bench", str(path), "--methods", "vanilla,,selfflow", "--no-log"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().startswith("error:") and "Traceback" not in out.stderr
