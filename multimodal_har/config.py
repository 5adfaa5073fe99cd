"""Dataclass configs: dict/YAML <-> dataclass with unknown keys rejected by name, and hashing.

YAML is read only at the CLI edge (:func:`load_yaml`); everything inside the package
passes typed dataclasses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
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
        key = f"{where}.{name}" if where else name
        check_type(value, hint, where=key)
        if dataclasses.is_dataclass(hint) and (value is None or isinstance(value, Mapping)):
            value = from_dict(hint, value, where=key)
        kwargs[name] = value
    return cls(**kwargs)


def _is_union(origin: Any) -> bool:
    """Whether ``typing.get_origin(hint)`` is a union: ``Optional[X]`` / ``Union[...]`` or ``X | None``."""
    return origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType)


def _describe(hint: Any) -> str:
    """``int`` -> 'an integer', ``Optional[list[float]]`` -> 'a list or null'..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(origin):
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} keys"
    if (origin is dict or hint is dict) and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return f"a mapping of names to {args[1].__name__} mappings"
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", tuple: "a list", dict: "a mapping"}
    return names.get(origin or hint, getattr(hint, "__name__", str(hint)))


def check_type(value: Any, hint: Any, *, where: str) -> None:
    """Raise ``ValueError('{where}: expected an integer, got 1.5')`` unless ``value`` (as read
    from YAML) fits the type hint ``hint``: YAML has ints, floats, bools, strings, lists,
    mappings and null; an int is a fine float, a bool is neither; a list is a fine tuple; a
    dataclass takes a mapping of its keys (or null: its defaults), or an instance. Hints it
    does not know (``Any``, other classes) accept anything."""
    if not _fits(value, hint, where):
        raise ValueError(f"{where}: expected {_describe(hint)}, got {value!r}")


def _fits(value: Any, hint: Any, where: str) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is Any:
        return True
    if _is_union(origin):
        if value is None:
            return type(None) in args
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:  # Optional[X]: an element of X's is named by its own path
            return _fits(value, arms[0], where)
        return any(_fits_quietly(value, a, where) for a in arms)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if dataclasses.is_dataclass(hint):
        return value is None or isinstance(value, (Mapping, hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.get_origin(typing.Sequence[int])) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            for i, (v, a) in enumerate(zip(value, args)):
                check_type(v, a, where=f"{where}[{i}]")
        elif args:
            for i, v in enumerate(value):
                check_type(v, args[0], where=f"{where}[{i}]")
        return True
    if origin in (dict, typing.get_origin(typing.Mapping[str, int])) or hint is dict:
        if not isinstance(value, Mapping):
            return False
        if len(args) == 2:
            for k, v in value.items():
                check_type(v, args[1], where=f"{where}.{k}")
        return True
    return True  # a hint this check does not know: the dataclass's own checks decide


def _fits_quietly(value: Any, hint: Any, where: str) -> bool:
    try:
        return _fits(value, hint, where)
    except ValueError:
        return False


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


_SCALARS = (bool, int, float, str)
_WHAT = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}


def scalar_type(hint: Any) -> tuple[type | None, bool]:
    """``(bool|int|float|str, optional)`` for a field annotated with one of them or
    ``Optional[...]`` of one; ``(None, False)`` for anything else."""
    args = typing.get_args(hint)
    if _is_union(typing.get_origin(hint)) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return (inner, True) if inner in _SCALARS else (None, False)
    return (hint, False) if hint in _SCALARS else (None, False)


def _coerce(kind: type, value: Any) -> Any:
    """``value`` as ``kind``, or raise ``TypeError``: an integer where a float is expected
    becomes a float (so 4 and 4.0 are one config), an integral float where an integer is."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        return value
    raise TypeError


def coerce_types(cls: type, data: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """Check ``data``'s values against ``cls``'s scalar field types and make them canonical.

    A value of the wrong type raises a ``ValueError`` naming the field (before the dataclass
    compares a string with a number and fails with a ``TypeError``); ints become floats in
    float fields. Keys that are not scalar fields pass through unchanged.
    """
    hints = typing.get_type_hints(cls)
    out = dict(data)
    for name, value in data.items():
        kind, optional = scalar_type(hints.get(name))
        if kind is None or (value is None and optional):
            continue
        try:
            out[name] = _coerce(kind, value)
        except TypeError:
            label = f" (in {where})" if where else ""
            raise ValueError(f"{name} must be {_WHAT[kind]}{' or None' if optional else ''}, "
                             f"got {value!r}{label}") from None
    return out


def canonical_dict(config: Any) -> dict[str, Any]:
    """``to_dict(config)`` with every number as its field's type (``fps=4`` as ``4.0``)."""
    d = to_dict(config)
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            d[f.name] = canonical_dict(value)
            continue
        kind, _ = scalar_type(hints.get(f.name))
        if kind is not None and value is not None:
            try:
                d[f.name] = _coerce(kind, value)
            except TypeError:
                pass  # left as given: the hash still tells configs apart
    return d


def config_hash(name: str, version: int, config: Any) -> str:
    """A stable 16-hex-digit hash of an extractor's name, algorithm version and config.

    Numbers are hashed as their field's type, so ``fps=4`` and ``fps=4.0`` hash alike.
    """
    payload = json.dumps(
        {"name": name, "version": version, "config": canonical_dict(config)}, sort_keys=True
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
