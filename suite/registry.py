"""Name → entry tables for everything that plugs into the core (methods, backbones, datasets,
feature extractors). The core's registries only *receive* registrations: the core registers its
own built-ins when their module is imported, and other packages (`baselines/`, a lab's own
package) register theirs when the application layer loads them as plugins (suite.plugins).
"""
from __future__ import annotations

from typing import Any, Callable

from suite.errors import ConfigError


class Registry:
    """One kind of plugin. `key` is the config key that names an entry (for one-line errors)."""

    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key
        self._entries: dict[str, Any] = {}

    def register(self, name: str, entry: Any = None) -> Callable:
        """`REG.register("name", entry)`, or as a decorator: `@REG.register("name")`."""

        def add(obj):
            old = self._entries.get(name)
            if old is not None and old is not obj and getattr(old, "__qualname__", None) != getattr(obj, "__qualname__", 0):
                raise ValueError(f"{self.kind} {name!r} registered twice ({old!r} and {obj!r})")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise ConfigError(f"{self.key}: unknown {self.kind} {name!r}; allowed: {', '.join(self.names()) or '(none registered)'}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
