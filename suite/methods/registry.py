"""Name → (method class, config class). The core's own methods (vanilla, selfflow) register when
`suite.methods` is imported; plugins (e.g. `baselines`: repa, sra) when the application loads them."""
from __future__ import annotations

from suite.registry import Registry

METHODS = Registry("method", "method.name")


def register_method(name: str, config_cls: type):
    def wrap(cls):
        METHODS.register(name, (cls, config_cls))
        cls.method_name = name
        return cls

    return wrap


def available_methods() -> list[str]:
    return METHODS.names()


def method_config_class(name: str) -> type:
    return METHODS.get(name)[1]


def build_method(cfg, model, time_sampler):
    cls, _ = METHODS.get(cfg.name)
    return cls(cfg, model, time_sampler)
