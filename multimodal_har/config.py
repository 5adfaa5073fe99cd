"""Dataclass configs: dict/YAML -> dataclass validated by pydantic v2, and hashing.

YAML is read only at the CLI edge (:func:`load_yaml`); everything inside the package
passes typed dataclasses. :func:`from_dict` converts values to their declared types and
raises :class:`ConfigError` naming the key path of every problem (``train.lr: ...``,
``unknown key(s) ['lr_max'] in train for TrainConfig; valid keys: [...]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Type, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that does not validate; the message has one line per problem, each naming its
    key path (``train.lr: ...``); ``problems`` lists them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def config_dataclass(cls: Optional[type] = None, /, **kwargs: Any):
    """``@dataclasses.dataclass(**kwargs)`` for a config read from YAML by :func:`from_dict`.

    The class stays a plain dataclass (constructed, compared, replaced and ``asdict``-ed as
    before; constructing it in Python converts nothing); :func:`from_dict` validates mappings
    into it with pydantic, where it rejects unknown keys and takes only ``true``/``false`` for
    its ``bool`` fields (pydantic alone would read ``amp: "no"`` as False and ``"yes"`` as
    True): its ``bool`` annotations become ``pydantic.StrictBool`` (still ``bool`` at runtime),
    and its ``int`` / ``float`` fields refuse true/false.
    """

    def wrap(c: type) -> type:
        _strict_bools(c)
        c = dataclasses.dataclass(c, **kwargs)
        c.__pydantic_config__ = _PYDANTIC_CONFIG
        return c

    return wrap if cls is None else wrap(cls)


def strict_hint(hint: Any) -> Any:
    """``hint`` with ``bool`` as ``StrictBool`` and ``int`` / ``float`` refusing true/false (also
    inside ``Optional``, unions, lists, tuples and dicts)."""
    from pydantic import BeforeValidator, StrictBool

    if hint is bool:
        return StrictBool
    if hint in (int, float):  # pydantic takes true for 1
        return typing.Annotated[hint, BeforeValidator(_not_bool)]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if not args or origin is typing.Literal or origin is typing.ClassVar or origin is typing.Annotated:
        return hint
    new = tuple(strict_hint(a) for a in args)
    if new == args:
        return hint
    if _is_union(origin):
        return typing.Union[new]
    return origin[new] if origin in (list, tuple, dict) else hint


def _strict_bools(cls: type) -> None:
    import sys

    annotations = cls.__dict__.get("__annotations__", {})
    namespace = {**vars(sys.modules[cls.__module__]), cls.__name__: cls}
    for name, ann in list(annotations.items()):
        try:
            hint = eval(ann, namespace) if isinstance(ann, str) else ann  # noqa: S307 (the class's own annotation)
        except NameError:  # a name defined later in the module: left to pydantic as it is
            continue
        new = strict_hint(hint)
        if new is not hint:
            annotations[name] = new


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {value}")
    return value


def _pydantic_config():
    from pydantic import ConfigDict

    return ConfigDict(extra="forbid", allow_inf_nan=False)


_PYDANTIC_CONFIG = _pydantic_config()
_ADAPTERS: dict[Any, Any] = {}


def clear_adapters() -> None:
    """Forget the built validators (:func:`multimodal_har.data.kinds.register_kind` calls it:
    the stream configs' union includes the kinds registered when a validator is built)."""
    _ADAPTERS.clear()


def adapter(cls: Any):
    """The (cached) ``pydantic.TypeAdapter`` of a config class (a dataclass or any type)."""
    from pydantic import TypeAdapter

    a = _ADAPTERS.get(cls)
    if a is None:
        _forbid_extra(cls)
        a = _ADAPTERS[cls] = TypeAdapter(cls)
    return a


def _forbid_extra(cls: Any, seen: Optional[set] = None) -> None:
    """Unknown keys rejected in plain dataclasses too (those not made by :func:`config_dataclass`)."""
    seen = set() if seen is None else seen
    for hint in _hints_in(cls):
        if dataclasses.is_dataclass(hint) and isinstance(hint, type) and hint not in seen:
            seen.add(hint)
            if "__pydantic_config__" not in vars(hint):
                hint.__pydantic_config__ = _PYDANTIC_CONFIG
            for f_hint in typing.get_type_hints(hint).values():
                _forbid_extra(f_hint, seen)


def _hints_in(hint: Any) -> list:
    args = typing.get_args(hint)
    return [hint] + [h for a in args for h in _hints_in(a)]


def from_dict(cls: Type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Validate ``data`` (as read from YAML) into the dataclass ``cls`` with pydantic.

    Values are converted to the declared types (``lr: "1e-3"``, which YAML reads as a string,
    becomes ``0.001``; ``4`` becomes ``4.0`` in a float field); ``bool`` fields of a
    :func:`config_dataclass` take only true/false. Nested dataclasses are built from nested
    mappings. Every problem is reported at once in a :class:`ConfigError` naming its key path
    (prefixed by ``where``); unknown keys are listed with the valid ones.
    """
    from pydantic import ValidationError

    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError([f"{where or cls.__name__}: expected a mapping of {cls.__name__} keys, got {data!r}"])
    try:
        return adapter(cls).validate_python(dict(data or {}))
    except ValidationError as e:
        raise ConfigError(describe_errors(cls, e.errors(include_url=False), where=where)) from None


def describe_errors(cls: Any, errors: Sequence[Mapping[str, Any]], *, where: str = "") -> list[str]:
    """pydantic's ``errors()`` of validating into ``cls`` as lines that name the key path."""
    problems, unknown = [], {}
    for err in errors:
        path, _ = _walk(cls, err["loc"], where)
        kind, msg = err["type"], err["msg"]
        if kind in ("unexpected_keyword_argument", "extra_forbidden"):
            parent = err["loc"][:-1]
            unknown.setdefault(parent, []).append(str(err["loc"][-1]))
            continue
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
            # the object's own check: named by its path inside the config (at the top level the
            # message is the object's own: callers such as the extract flags match on it)
            named = not path or msg.startswith((f"{path}.", f"{path}:", f"{path} "))
            problems.append(msg if not err["loc"] or named else f"{path}: {msg}")
        elif kind == "union_tag_invalid" and err.get("ctx", {}).get("discriminator") == "stream_kind()":
            tag = err["ctx"]["tag"]
            problems.append(f"{path}: expected a mapping of stream config keys, got {err['input']!r}"
                            if tag == "<none>" else
                            f"{path}: unknown kind {tag!r}; valid kinds: {err['ctx']['expected_tags']}")
        elif kind.startswith("missing"):
            problems.append(f"{path}: a required key is missing")
        else:
            problems.append(f"{path or '(top level)'}: {msg} (got {err['input']!r})")
    for parent, keys in unknown.items():
        path, owner = _walk(cls, parent, where)
        label = f" in {path}" if path else ""
        name = getattr(owner, "__name__", str(owner))
        valid = sorted(f.name for f in dataclasses.fields(owner) if f.init) if dataclasses.is_dataclass(owner) else []
        problems.insert(0, f"unknown key(s) {sorted(keys)}{label} for {name}; valid keys: {valid}")
    return problems


def check_kwargs(target: Any, kwargs: Mapping[str, Any], *, where: str, name: str = "",
                 provided: Sequence[str] = ()) -> dict[str, Any]:
    """``kwargs`` for ``target`` (a class: its constructor; or a function) checked against its
    signature and annotations, and converted to the annotated types (``dropout: "0.1"`` -> 0.1).

    An unknown key lists the accepted ones (unless ``target`` takes ``**kwargs``); a wrong type
    names its key path (``{where}.{key}``); a missing required argument is named; ``provided``
    are the arguments the caller sets itself (refused in ``kwargs``). Raises :class:`ConfigError`.
    """
    import inspect

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    fn = target.__init__ if isinstance(target, type) else target
    label = f"{name} ({getattr(target, '__name__', target)})" if name else getattr(target, "__name__", str(target))
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an annotation that does not resolve: such arguments are not type-checked
        hints = {}
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind in kinds and n not in provided}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    problems = []
    taken = sorted(set(kwargs) & set(provided))
    if taken:
        problems.append(f"{where}: {taken} of {label} are set by the model, not by the config")
    unknown = sorted(set(kwargs) - set(params) - set(provided))
    if unknown and not takes_any:
        problems.append(f"unknown key(s) {unknown} in {where} for {label}; valid keys: {sorted(params)}")
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kwargs]
    if missing:
        problems.append(f"{where}: {label} needs {missing} (no default)")
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key not in params or key not in hints:
            continue
        hint = strict_hint(hints[key])
        try:
            checker = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
        except Exception:  # a type pydantic cannot check: left to the constructor
            continue
        try:
            out[key] = checker.validate_python(value)
        except ValidationError as e:
            problems += describe_errors(hint, e.errors(include_url=False), where=f"{where}.{key}")
    if problems:
        raise ConfigError(problems)
    return out


def _walk(cls: Any, loc: Sequence[Any], where: str) -> tuple[str, Any]:
    """(the key path of pydantic's ``loc`` as the user wrote it, the type found there): list
    indices as ``[i]``; the tags that pydantic puts in a path (union arms) are left out."""
    path, hint = where, cls
    items = list(loc)
    while items:
        resolve = next((getattr(m, "__config_at__") for m in _metadata(hint) if hasattr(m, "__config_at__")), None)
        if resolve is not None:  # a discriminated union: the tag names the arm
            hint = resolve(items.pop(0))
            continue
        hint = _strip(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if _is_union(origin):  # pydantic names the arm it tried
            hint = Any
            items.pop(0)
            continue
        item = items.pop(0)
        if isinstance(item, int) and not isinstance(item, bool):
            path += f"[{item}]"
        else:
            path = f"{path}.{item}" if path else str(item)
        if dataclasses.is_dataclass(hint):
            hint = typing.get_type_hints(hint, include_extras=True).get(item, Any)
        elif origin in (dict, typing.get_origin(typing.Mapping[str, int])) and len(args) == 2:
            hint = args[1]
        elif origin in (list, tuple) and args:
            hint = args[min(item, len(args) - 1)] if origin is tuple and isinstance(item, int) and args[-1] is not Ellipsis else args[0]
        else:
            hint = Any
    return path, _strip(hint)


def _unwrap(hint: Any) -> tuple[Any, list]:
    """``(X, metadata)`` of ``Optional[X]`` / ``Annotated[X, *metadata]`` (nested)."""
    metadata = []
    while True:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            metadata += list(hint.__metadata__)
            hint = args[0]
        elif _is_union(origin) and len([a for a in args if a is not type(None)]) == 1:
            hint = next(a for a in args if a is not type(None))
        else:
            return hint, metadata


def _metadata(hint: Any) -> list:
    return _unwrap(hint)[1]


def _strip(hint: Any) -> Any:
    return _unwrap(hint)[0]


def _is_union(origin: Any) -> bool:
    """Whether ``typing.get_origin(hint)`` is a union: ``Optional[X]`` / ``Union[...]`` or ``X | None``."""
    return origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType)


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


# Field metadata of a config setting that changes how the work runs but not what it stores
# (e.g. which JPEG encoder writes the same format): left out of ``config_hash``, so changing it
# redoes nothing in a resumed extraction.
NOT_HASHED = {"hashed": False}


def canonical_dict(config: Any) -> dict[str, Any]:
    """``to_dict(config)`` with every number as its field's type (``fps=4`` as ``4.0``), without
    the fields marked :data:`NOT_HASHED`."""
    d = to_dict(config)
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if not f.metadata.get("hashed", True):
            d.pop(f.name, None)
            continue
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
