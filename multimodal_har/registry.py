"""A small name -> factory registry shared by extractors, encoders and fusion methods.

Modelled on torchvision's ``_api.py`` and PyG's ``resolver``: a duplicate name raises,
an unknown name lists the valid choices. Entries may be given lazily as
``"module:attribute"`` strings so that optional backends are imported only when built.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterator, Union

Factory = Union[Callable[..., Any], str]


class Registry:
    """Maps names to classes/factories.

    Args:
        kind: what is registered (``"extractor"``, ``"fusion"``...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Factory] = {}

    def register(self, name: str, obj: Factory | None = None):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        if obj is None:
            def decorator(o):
                self.register(name, o)
                return o
            return decorator
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        return obj

    def get(self, name: str) -> Callable[..., Any]:
        """Return the registered class/factory, importing it if it was registered lazily."""
        try:
            entry = self._entries[name]
        except KeyError:
            choices = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ValueError(f"unknown {self.kind} {name!r}; valid choices: {choices}") from None
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = entry
        return entry

    def build(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
