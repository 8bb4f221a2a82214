"""Strict configs: every shipped config resolves; unknown keys, wrong types and bad values fail by name."""
import pytest

from suite.config import BUILTIN_CONFIG_DIR, config_hash, config_to_dict, load_run_config
from suite.errors import ConfigError


@pytest.mark.parametrize("path", sorted(BUILTIN_CONFIG_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(BUILTIN_CONFIG_DIR)))
def test_every_shipped_config_resolves(path):
    cfg = load_run_config(path)
    assert cfg.method.name in ("vanilla", "selfflow", "repa", "sra")


def test_base_inheritance_and_method_switch():
    cfg = load_run_config("builtin:imagenet256-sitxl2-selfflow")
    assert cfg.model.preset == "SiT-XL/2" and cfg.method.gamma == 0.8 and cfg.train.batch_size == 256
    # switching method drops the old method's fields instead of failing on them
    cfg2 = load_run_config("builtin:imagenet256-sitxl2-selfflow", ["method.name=vanilla"])
    assert cfg2.method.name == "vanilla" and not hasattr(cfg2.method, "gamma")


def test_overrides_are_typed_and_round_trip():
    cfg = load_run_config("builtin:demo-digits", ["optim.lr=3e-4", "train.val_times=[0.1, 0.9]", "method.sort_times=true"])
    assert cfg.optim.lr == 3e-4 and cfg.train.val_times == [0.1, 0.9] and cfg.method.sort_times is True
    again = load_run_config(config_to_dict(cfg))
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(load_run_config("builtin:demo-digits", ["name=other", "train.runs_root=/x"])) == \
        config_hash(load_run_config("builtin:demo-digits"))  # where a run is stored is not what it computes


@pytest.mark.parametrize("overrides,needle", [
    (["model.depth=abc"], "model.depth: expected an integer"),
    (["optim.betas=[0.9]"], "optim.betas: expected 2 values"),
    (["train.batch_size=0"], "train.batch_size: must be positive"),
    (["sampling.sampler=ddim"], "sampling.sampler: 'ddim' is not allowed"),
    (["method.mask_ratio=high"], "method.mask_ratio: expected a number"),
    (["method.encoders=3"], "method.encoders"),
    (["data.nme=digits"], "unknown config key 'data.nme'"),
    (["train.precision=fp8"], "train.precision"),
])
def test_bad_values_name_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        load_run_config("builtin:demo-digits", overrides)


def test_fields_added_later_keep_old_runs_hashes_at_their_neutral_value():
    """A field added after runs existed is left out of the hash at the value that reproduces the
    old behaviour (so upgrading keeps every run resumable), and hashed at any other value."""
    from suite.config import _HASH_NEUTRAL, config_hash, config_to_dict, flatten, load_run_config

    cfg = load_run_config("builtin:demo-shapes-text")
    flat = flatten(config_to_dict(cfg))
    assert set(_HASH_NEUTRAL) <= set(flat)  # every neutral field is a real field
    for key, neutral in _HASH_NEUTRAL.items():
        assert flat[key] == neutral  # the shipped default is the old behaviour
    other = load_run_config("builtin:demo-shapes-text")
    other.model.text_dim = 8  # (shapes-text has token ids: validation would refuse it)
    assert config_hash(other) != config_hash(cfg)
    assert config_hash(load_run_config("builtin:demo-shapes-text", ["eval.clip_weights=/x"])) != config_hash(cfg)
