"""Plugins are handed in, not fetched: `load_plugins(["baselines", "my_lab.methods"])` imports the
named modules, which register their methods, backbones, datasets, encoders or extractors in the
core's registries. The core never names a plugin: the application layer (suite.commands.plugins)
discovers them (Python entry points in the group `selfflow_suite.plugins`, plus `$SUITE_PLUGINS`)
and hands the list here. Sweep jobs carry the list of loaded plugins to their worker processes.
"""
from __future__ import annotations

import importlib

from suite.errors import SuiteError

_LOADED: list[str] = []


def load_plugins(modules) -> list[str]:
    """Import each named module once (registration happens on import); returns all loaded so far."""
    for name in modules:
        if name in _LOADED:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # the plugin itself is missing, not one of its imports
                raise SuiteError(f"plugin {name!r} cannot be imported ({e}); is its package installed or on PYTHONPATH?") from None
            raise
        _LOADED.append(name)
    return list(_LOADED)


def loaded_plugins() -> list[str]:
    return list(_LOADED)
