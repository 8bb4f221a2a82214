"""`suite benchmark`: every profile is a valid sweep of the paper's six methods × seeds × sizes."""
import subprocess
import sys

import pytest

from suite.commands import benchmark_spec as benchmark
from suite.sweeps.spec import parse_sweep_spec


@pytest.mark.parametrize("name", ["cpu", "cpu-shapes", "gpu", "cpu-reduced"])
def test_profiles_cover_six_methods_three_sizes_and_seeds(name, tmp_path):
    p = benchmark.profile(name)
    d = benchmark.benchmark_spec(name, tmp_path, tmp_path / "enc", p)
    parse_sweep_spec(d)  # strict: unknown keys or values fail here
    names = [v["_name"] for v in d["grid"]["variant"]]
    assert names == ["vanilla", "repa", "sra", "selfflow", "selfflow-no-rep", "selfflow-no-mask"]
    assert len(d["grid"]["model.depth"]) >= 3  # a scaling law needs 3 sizes (reports.fits.MIN_SIZES)
    assert len(d["grid"]["seed"]) >= (3 if name != "cpu-reduced" else 2)
    assert d["set"]["eval.every_images"] < d["set"]["train.total_images"]  # several budgets
    assert d["set"]["data.name"] == p["data"]
    assert benchmark.encoder_config(p).dataset == p["data"]  # REPA aligns to an encoder trained on the same data


def test_cpu_profile_trains_on_digits_and_the_gpu_profile_on_shapes():
    """The cpu profile is the one whose models learn on 2 cores; the harder shapes stay available."""
    assert benchmark.profile("cpu")["data"] == "digits"
    assert benchmark.profile("cpu-shapes")["data"] == "shapes"
    assert benchmark.profile("gpu")["data"] == "shapes"


def test_ablation_variants_are_the_shipped_presets():
    """The report names runs by the preset whose keys they match; the variants must match them."""
    from reports.data import ablation_presets

    presets = ablation_presets()
    for name, overrides in benchmark.METHODS:
        if name in presets:
            assert overrides == presets[name], name
    assert {"selfflow-no-rep", "selfflow-no-mask"} <= set(presets)


def test_dry_run_lists_points_and_bad_profile_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", "smoke", "--dry-run",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "would submit 6 job(s)" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "suite.cli", "benchmark", "--profile", "nope"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: benchmark profile 'nope' unknown")
    assert "Traceback" not in bad.stderr
