"""Name → (method class, config class). Baselines register themselves when `baselines` is imported."""
from __future__ import annotations

import importlib

from suite.errors import ConfigError

_METHODS: dict[str, tuple[type, type]] = {}
_LOADED_PLUGINS = False


def register_method(name: str, config_cls: type):
    def wrap(cls):
        _METHODS[name] = (cls, config_cls)
        cls.method_name = name
        return cls

    return wrap


def _load_plugins() -> None:
    global _LOADED_PLUGINS
    if _LOADED_PLUGINS:
        return
    _LOADED_PLUGINS = True
    importlib.import_module("suite.methods.vanilla")
    importlib.import_module("suite.methods.selfflow")
    try:
        importlib.import_module("baselines")
    except ModuleNotFoundError as e:  # only a missing `baselines` package itself is tolerated
        if e.name != "baselines":
            raise


def available_methods() -> list[str]:
    _load_plugins()
    return sorted(_METHODS)


def method_config_class(name: str) -> type:
    _load_plugins()
    if name not in _METHODS:
        raise ConfigError(f"method.name: unknown method {name!r}; allowed: {', '.join(sorted(_METHODS))}")
    return _METHODS[name][1]


def build_method(cfg, model, time_sampler):
    _load_plugins()
    cls, _ = _METHODS[cfg.name]
    return cls(cfg, model, time_sampler)
