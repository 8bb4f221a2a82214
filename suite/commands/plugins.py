"""The application layer finds the plugins and hands them to the core (suite.plugins).

Sources, in order: Python entry points in the group `selfflow_suite.plugins` (a package declares
`[project.entry-points."selfflow_suite.plugins"] my_methods = "my_lab.methods"` in its
pyproject), then `$SUITE_PLUGINS` (comma-separated module names, for code that is only on
PYTHONPATH). This suite's own `baselines` package is one such entry point.
"""
from __future__ import annotations

import os
from importlib.metadata import entry_points

from suite.plugins import load_plugins

ENTRY_POINT_GROUP = "selfflow_suite.plugins"


def discover_plugins() -> list[str]:
    names = [ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    names += [n.strip() for n in os.environ.get("SUITE_PLUGINS", "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def activate_plugins() -> list[str]:
    return load_plugins(discover_plugins())
