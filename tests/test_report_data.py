"""Grouping runs into methods/sizes and reading metrics at a budget (no MLflow needed)."""
import math

import pandas as pd
import pytest

from reports import data, style


def _runs(rows):
    base = {"run_id": None, "method": "selfflow", "seed": 0, "n_params": 1e5, "model.depth_resolved": 4,
            "model.hidden_size_resolved": 64, "method.name": "selfflow", "method.gamma": 0.8,
            "method.mask_ratio": 0.25, "method.teacher_time": "min", "method.attention_separation": "False",
            "method.second_time": "independent"}
    return pd.DataFrame([{**base, "run_id": f"r{i}", **r} for i, r in enumerate(rows)])


def test_ablations_are_named_by_their_preset():
    runs = data.annotate(_runs([
        {},                                                      # Self-Flow itself
        {"method.gamma": 0.0},                                   # selfflow-no-rep
        {"method.mask_ratio": "0.0", "method.teacher_time": "student"},  # selfflow-no-mask
        {"method.attention_separation": "True"},                 # selfflow-attn-sep
        {"method.mask_ratio": 0.0},                              # only half of no-mask: no preset
        {"ablation": "my-variant", "method.gamma": 0.0},         # an explicit tag wins
        {"method": "repa", "method.name": "repa"},
    ]))
    assert list(runs["method_key"]) == ["selfflow", "selfflow-no-rep", "selfflow-no-mask", "selfflow-attn-sep",
                                        "selfflow", "my-variant", "repa"]
    assert runs["size"].iloc[0] == "d4×w64 0.1M"
    assert style.method_label("selfflow-no-rep") == "selfflow-no-rep"
    assert style.method_label("selfflow") == "Self-Flow" and style.method_label("vanilla") == "Vanilla FM"


def test_colours_are_fixed_and_distinct():
    known = [style.method_color(m) for m in ("vanilla", "repa", "sra", "selfflow")]
    assert len(set(known)) == 4
    abl = style.method_color("selfflow-l1")
    assert abl == style.method_color("selfflow-l1") and abl not in known
    assert style.sort_methods(["selfflow-l1", "selfflow", "repa", "vanilla"]) == \
        ["vanilla", "repa", "selfflow", "selfflow-l1"]


def test_values_at_budget_and_directions():
    h = pd.DataFrame({"run_id": ["a"] * 4, "metric": ["val/loss_t0.5"] * 4, "step": [100, 200, 300, 400],
                      "value": [4.0, 3.0, 2.0, 1.0]})
    v = data.values_at(h, {"a": 350})
    assert v["step"].tolist() == [300] and v["value"].tolist() == [2.0]
    assert data.direction("eval/fid2k_digits-classifier") == -1
    assert data.direction("val/loss_t0.5") == -1
    assert data.direction("eval/probe_acc_block3") == 1
    assert data.direction("eval/class_consistency2k") == 1
    assert data.direction("eval/caption_consistency2k_colour") == 1 and data.direction("eval/caption_consistency2k_unseen_all") == 1
    assert data.direction("perf/images_per_s") == 0 and data.direction("train/lr") == 0
    m, _lo, hi, n = data.mean_ci([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and hi - m == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert math.isnan(data.mean_ci([1.0])[1])


def test_cells_mixing_configurations_are_named():
    from reports.build import mixed_cells

    runs = data.annotate(_runs([{"optim.lr": 1e-4, "train.run_dir": "a"}, {"optim.lr": 1e-3, "train.run_dir": "b", "seed": 1},
                                {"method": "repa", "method.name": "repa", "train.run_dir": "c"}]))
    assert mixed_cells(runs) == ["Self-Flow d4×w64 0.1M: optim.lr"]
