"""Dataclass configs: dict/YAML <-> dataclass with unknown keys rejected by name, and hashing.

YAML is read only at the CLI edge (:func:`load_yaml`); everything inside the package
passes typed dataclasses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Mapping, Type, TypeVar

T = TypeVar("T")


def from_dict(cls: Type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise a ``ValueError`` naming them.

    Nested dataclass fields are built recursively from nested mappings.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        label = f" in {where}" if where else ""
        raise ValueError(
            f"unknown key(s) {unknown}{label} for {cls.__name__}; valid keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_dict(hint, value, where=f"{where}.{name}" if where else name)
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_hash(name: str, version: int, config: Any) -> str:
    """A stable 16-hex-digit hash of an extractor's name, algorithm version and config."""
    payload = json.dumps(
        {"name": name, "version": version, "config": to_dict(config)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (the CLI edge); raises ``ValueError`` on anything else."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data
