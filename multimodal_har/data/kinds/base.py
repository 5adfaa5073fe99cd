"""Stream kinds: how one kind of stored modality is laid out, timed, sampled, read and corrupted.

A *kind* (``rgb``, ``flow``, ``pose``, ``audio``, ``signal``, or one of yours) is a
:class:`Kind` subclass registered with :func:`register_kind`, plus its typed stream config (a
:class:`StreamConfig` subclass whose ``kind`` is ``Literal[name]``). :class:`StoreDataset
<multimodal_har.data.dataset.StoreDataset>` builds one kind object per configured stream and
asks it, never a branch on the kind's name:

* :meth:`Kind.matches` - whether an entry (an open HDF5 file) holds this kind (streams without
  ``kind`` in their config get the first registered kind that matches);
* :meth:`Kind.check` - refuse, at construction, an entry the config cannot read;
* :meth:`Kind.times` - the entry's frame times (s);
* :meth:`Kind.positions` - which frames a sample reads (an index array, ``(T,)`` or
  ``(K, L)`` for segments of ``L`` frames);
* :meth:`Kind.read` - decode and augment them (the one function that reads frame data);
* :meth:`Kind.output` - the model input ``(T, ...)`` and, for uint8 frames, the per-channel
  ``(scale, offset)`` that normalises them on the device;
* :attr:`Kind.corruption` - the robustness corruption of its inputs
  (:data:`multimodal_har.corruptions.CORRUPTIONS`), :meth:`Kind.frame_stats` - how to draw them.

Stream configs in an experiment are a pydantic union discriminated by ``kind``
(:data:`StreamConfigField`); a stream without ``kind`` is an :func:`inferred_config`, resolved
to its kind's config once the dataset has seen an entry (:func:`resolve_config`). See
``docs/kinds.md`` for adding a kind.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, ClassVar, Mapping, Optional, Union

import numpy as np

from multimodal_har.config import ConfigError, adapter, clear_adapters, config_dataclass, describe_errors

from .. import augment as A
from ..batch import mask_name
from ..store import attr_value

AUTO = "auto"  # the discriminator's tag of a stream config without ``kind``


@config_dataclass(kw_only=True)
class StreamConfig:
    """What every stream has (kind configs add their own fields).

    Attributes:
        kind: the stored kind (:func:`kind_names`); None: inferred from the entry's datasets.
        source: store modality (default: the config key).
        input, kwarg: the model input (default: the key) and forward kwarg (default ``x``).
        rate_hz: entries without ``timestamps``: the frame rate (when the entry has no
            ``rate_hz`` / ``fps`` attribute); frame 0 is at time 0.
        augment: apply the kind's training augmentation (train only).
    """

    kind: Optional[str] = None
    source: Optional[str] = None
    input: Optional[str] = None
    kwarg: str = "x"
    rate_hz: Optional[float] = None
    augment: bool = True

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0 or None, got {self.rate_hz}")

    def at_least_one(self, *names: str) -> None:
        """Raise unless each field of ``names`` is >= 1 (or None, where None is allowed)."""
        for name in names:
            v = getattr(self, name)
            if v is not None and v < 1:
                none = " or None" if typing.get_origin(typing.get_type_hints(type(self))[name]) else ""
                raise ValueError(f"{name} must be >= 1{none}, got {v}")

    @property
    def mask_name(self) -> str:
        return mask_name(self.kwarg)


class Kind:
    """One kind of stored modality, for one configured stream.

    Subclasses set :attr:`name` (by :func:`register_kind`), :attr:`config_class`,
    :attr:`datasets` (inference) and :attr:`frames_key`, and override what differs from the
    defaults: a contiguous run of ``frames`` rows of ``frames_key`` read as float32.

    Args:
        config: the stream's config (an instance of :attr:`config_class`).
        stream: the stream's name (the config key), for messages.
        source: the store modality it reads.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = StreamConfig
    datasets: ClassVar[tuple[str, ...]] = ()  # an entry with any of these datasets is of this kind
    frames_key: ClassVar[str] = "data"  # the dataset whose rows are the frames
    corruption: ClassVar[Optional[str]] = None  # name in multimodal_har.corruptions.CORRUPTIONS
    fallback: ClassVar[bool] = False  # inferred for an entry no kind's datasets match (signal)

    def __init__(self, *, config: StreamConfig, stream: str = "", source: str = "") -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got "
                            f"{type(config).__name__}")
        self.config, self.stream, self.source = config, stream, source or config.source or stream

    # ------------------------------------------------------------------ layout and timing
    @classmethod
    def matches(cls, entry: Any) -> bool:
        """Whether the open entry (``h5py.File``-like) holds this kind."""
        return any(k in entry for k in cls.datasets)

    def data_key(self) -> str:
        return self.frames_key

    def check(self, entry: Any, video: str) -> None:
        """Raise a ``ValueError`` (at dataset construction) if this stream cannot read ``entry``."""
        if self.data_key() not in entry:
            raise ValueError(f"{self.source} entry of {video!r} has no dataset {self.data_key()!r} (it has "
                             f"{sorted(entry.keys())}), which stream {self.stream!r} of kind {self.name!r} reads")
        self.check_times(entry, video)

    def check_times(self, entry: Any, video: str) -> None:
        """Raise unless :meth:`times` can time the entry."""
        if "timestamps" not in entry:
            self.rate(entry)

    def rate(self, entry: Any) -> float:
        """Frames per second of an entry without timestamps (attribute, else the config)."""
        for k in ("rate_hz", "fps"):
            if k in entry.attrs:
                return float(attr_value(entry.attrs[k]))
        if self.config.rate_hz is not None:
            return self.config.rate_hz
        raise ValueError(f"{self.source} entries have no timestamps and no rate_hz/fps attribute: set rate_hz "
                         f"in the config of stream {self.stream!r} (the sequences' frame rate)")

    def times(self, entry: Any) -> np.ndarray:
        """``(N,)`` seconds of the entry's frames."""
        if "timestamps" in entry:
            return entry["timestamps"][()]
        return np.arange(entry[self.data_key()].shape[0]) / self.rate(entry)

    # ------------------------------------------------------------------ sampling and reading
    def positions(self, n: int, rng: Optional[np.random.Generator]) -> np.ndarray:
        """Indices (from 0) of the frames read out of the ``n`` in the window: a contiguous run of
        ``config.frames`` (None: all), at a random offset in training (``rng``), else centred."""
        a, b = A.contiguous_slice(n, getattr(self.config, "frames", None), rng)
        return np.arange(a, b)

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> Any:
        """The frames at ``pos`` decoded and, with ``rng`` (training with ``augment``), augmented.

        What streams with equal :meth:`share_key` share; :meth:`output` makes the model input."""
        return entry[self.data_key()][int(pos[0]):int(pos[-1]) + 1].astype(np.float32)

    def output(self, data: Any, *, video: str) -> tuple[np.ndarray, Optional[tuple[np.ndarray, np.ndarray]]]:
        """``(x, affine)``: the model input ``(T, ...)`` from :meth:`read`'s result, and for uint8
        frames their per-channel ``(scale, offset)`` to normalised float32 (else None)."""
        return data, None

    def share_key(self) -> Optional[tuple]:
        """Streams of one entry with equal keys read the same frames the same way: one sample
        reads them once (None: never shared)."""
        return None

    def frame_stats(self) -> Optional[tuple[Any, Any]]:
        """``(mean, std)`` per channel that un-normalise the input into an image (None: not an image)."""
        return None


# ---------------------------------------------------------------------- the registry
_KINDS: dict[str, type[Kind]] = {}
_INFERRED: list = []  # the cached inferred-kind config class


def register_kind(name: str):
    """Class decorator: register a :class:`Kind` subclass under ``name`` (its config's ``kind``).

    The config class must be a :class:`StreamConfig` subclass whose ``kind`` field defaults to
    ``name``. A name registered twice raises."""

    def wrap(cls: type[Kind]) -> type[Kind]:
        if not isinstance(name, str) or not name or name == AUTO:
            raise ValueError(f"a kind name must be a non-empty string other than {AUTO!r}, got {name!r}")
        if name in _KINDS:
            raise ValueError(f"stream kind {name!r} is already registered ({_KINDS[name].__qualname__})")
        if not (isinstance(cls, type) and issubclass(cls, Kind)):
            raise TypeError(f"register_kind({name!r}) decorates a Kind subclass, got {cls!r}")
        cfg = cls.config_class
        if not (dataclasses.is_dataclass(cfg) and issubclass(cfg, StreamConfig)):
            raise TypeError(f"{cls.__name__}.config_class must be a StreamConfig dataclass, got {cfg!r}")
        default = next(f.default for f in dataclasses.fields(cfg) if f.name == "kind")
        if default != name:
            raise ValueError(f"{cfg.__name__}.kind must default to {name!r} (declare `kind: Literal[{name!r}] = "
                             f"{name!r}`), got {default!r}")
        cls.name = name
        _KINDS[name] = cls
        _changed()
        return cls

    return wrap


def unregister_kind(name: str) -> None:
    """Remove a registered kind (tests of user kinds clean up with it)."""
    get_kind(name)
    del _KINDS[name]
    _changed()


def _changed() -> None:
    _INFERRED.clear()
    clear_adapters()


def get_kind(name: str) -> type[Kind]:
    """The :class:`Kind` registered as ``name``; an unknown name lists the valid ones (and the
    kind plugins that failed to import)."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        failed = "".join(f"; {msg}" for msg in _PLUGIN_ERRORS.values())
        raise ValueError(f"unknown stream kind {name!r}; valid kinds: {', '.join(_KINDS) or '(none registered)'}"
                         f"{failed}") from None


# ---------------------------------------------------------------------- installed plugins
PLUGIN_GROUP = "multimodal_har.kinds"  # the entry-point group of installed kind modules
_PLUGINS_LOADED: set[str] = set()
_PLUGIN_ERRORS: dict[str, str] = {}


def load_plugins(group: str = PLUGIN_GROUP) -> list[str]:
    """Import the kind modules installed packages declare under the entry-point ``group``
    (``[project.entry-points."multimodal_har.kinds"] events = "my_project.event_kind"``), each
    once; importing a module registers its kinds, so ``mhar train`` and the ablation read
    configs with them and no script has to import them first. Called when this package is
    imported; call it again after installing a plugin into a running interpreter.

    A plugin that fails to import is reported in a warning (and in :func:`get_kind`'s error for
    an unknown kind), not raised: one broken package must not stop every command.

    Returns:
        the names of the entry points imported by this call.
    """
    import warnings
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=group):
        if ep.value in _PLUGINS_LOADED:
            continue
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else "an installed package"
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - any failure of a third-party module is reported, not fatal
            msg = (f"the stream-kind plugin {ep.name!r} ({ep.value}, from {dist}) failed to import: "
                   f"{type(e).__name__}: {e} (fix or uninstall {dist})")
            _PLUGIN_ERRORS[ep.value] = msg
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            continue
        _PLUGINS_LOADED.add(ep.value)
        _PLUGIN_ERRORS.pop(ep.value, None)
        loaded.append(ep.name)
    return loaded


def kind_names() -> list[str]:
    return list(_KINDS)


def infer_kind(entry: Any) -> str:
    """The first registered kind whose :meth:`Kind.matches` the entry (built-ins: ``frames`` ->
    rgb, ``pairs`` -> flow, ``keypoint`` -> pose, ``logmel`` -> audio, else a signal)."""
    for name, cls in _KINDS.items():
        if cls.matches(entry):
            return name
    for name, cls in _KINDS.items():
        if cls.fallback:
            return name
    raise ValueError(f"no stream kind matches an entry with datasets {sorted(entry.keys())}; set `kind` "
                     f"(one of {', '.join(_KINDS)})")


# ---------------------------------------------------------------------- configs
def inferred_config() -> type:
    """The config class of a stream without ``kind``: every field of every registered kind
    (the first kind declaring a field gives its type and default); :func:`resolve_config`
    turns it into the inferred kind's config."""
    if not _INFERRED:
        base = {f.name for f in dataclasses.fields(StreamConfig)}
        # kind: null or absent only (so that a JSON schema's oneOf picks one arm per stream)
        fields, seen = [("kind", type(None), dataclasses.field(default=None))], set(base)
        for cls in _KINDS.values():
            hints = typing.get_type_hints(cls.config_class, include_extras=True)  # resolved: no strings
            for f in dataclasses.fields(cls.config_class):
                if f.name not in seen:
                    seen.add(f.name)
                    fields.append((f.name, hints[f.name], dataclasses.field(default=f.default,
                                                                     default_factory=f.default_factory)))
        made = dataclasses.make_dataclass("InferredStreamConfig", fields, bases=(StreamConfig,), kw_only=True,
                                          namespace={"__doc__": "A stream config whose kind is read from the store "
                                                                "entry (any kind's keys).",
                                                     "__post_init__": _check_inferred})
        made.__pydantic_config__ = StreamConfig.__pydantic_config__
        made.__module__ = __name__  # pickled by name: this module's __getattr__ gives it
        _INFERRED.append(made)
    return _INFERRED[0]


def _check_inferred(self: StreamConfig) -> None:
    """An inferred config's values checked now, as far as its kind can be guessed: by each kind
    that has every key set (not default); if each of them refuses the values, the first one's
    error is raised (e.g. ``crop`` > ``resize``, which both frame kinds refuse)."""
    StreamConfig.__post_init__(self)
    values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
    set_keys = {k for k, v in values.items() if v != _default(type(self), k)}
    errors = []
    for cls in _KINDS.values():
        own = {f.name for f in dataclasses.fields(cls.config_class)}
        if set_keys <= own:
            try:
                cls.config_class(**{k: v for k, v in values.items() if k in own and k != "kind"})
                return
            except ValueError as e:
                errors.append(e)
    if errors:
        raise errors[0]


def __getattr__(name: str) -> Any:  # PEP 562: ``base.InferredStreamConfig`` (for pickle)
    if name == "InferredStreamConfig":
        return inferred_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def config_class(tag: str) -> type:
    """The config class of a discriminator tag: a kind's, or :func:`inferred_config` for ``auto``."""
    return inferred_config() if tag == AUTO else get_kind(tag).config_class


def stream_kind(value: Any) -> str:
    """The discriminator: a mapping's or config's ``kind`` (``auto`` when absent or null)."""
    if isinstance(value, Mapping):
        return value.get("kind") or AUTO
    if isinstance(value, StreamConfig):
        return value.kind or AUTO
    return "<none>"


class _ByKind:
    """Marks ``Annotated[StreamConfig, _ByKind()]``: pydantic validates it as the union of the
    registered kinds' configs (and the inferred one) discriminated by ``kind``, built when the
    validator is (so a kind registered later is included: registering clears the validators)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic import Discriminator, Tag

        arms = [Annotated[config_class(t), Tag(t)] for t in [*_KINDS, AUTO]]
        return handler.generate_schema(Annotated[Union[tuple(arms)], Discriminator(stream_kind)])

    @staticmethod
    def __config_at__(tag: str) -> type:  # multimodal_har.config._walk: the arm a tag names
        return config_class(tag)


StreamConfigField = Annotated[StreamConfig, _ByKind()]


def stream_config(data: Any, *, where: str = "") -> StreamConfig:
    """A mapping (as in YAML) -> the config of its ``kind``; :class:`ConfigError` names the key path."""
    from pydantic import ValidationError

    if isinstance(data, StreamConfig):
        return data
    try:
        return adapter(StreamConfigField).validate_python(data)
    except ValidationError as e:
        raise ConfigError(describe_errors(StreamConfigField, e.errors(include_url=False), where=where)) from None


def resolve_config(config: StreamConfig, kind: str, *, where: str = "") -> StreamConfig:
    """``config`` as the config of ``kind``: an inferred config's fields copied into the kind's
    (a value set for a field the kind does not have is an error, not silently dropped)."""
    cls = get_kind(kind).config_class
    if isinstance(config, cls):
        return config
    own = {f.name for f in dataclasses.fields(cls)}
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}
    stray = sorted(k for k, v in values.items() if k not in own and v != _default(type(config), k))
    if stray:
        raise ConfigError([f"{where or 'stream'}: key(s) {stray} do not apply to kind {kind!r} (read from the "
                           f"store entry); its keys: {sorted(own)}"])
    values = {k: v for k, v in values.items() if k in own}
    values["kind"] = kind
    return cls(**values)


def upgrade_stream(data: Any) -> Any:
    """A stream mapping of a run's ``config.yaml`` written before each kind had its own config
    (then every stream had every kind's keys, at their defaults): the keys its kind does not
    have are dropped where they hold those defaults (a value someone set is kept, and refused
    by validation, naming it). Anything else is returned as it is."""
    if not isinstance(data, Mapping) or data.get("kind") not in _KINDS:
        return data
    own = {f.name for f in dataclasses.fields(get_kind(data["kind"]).config_class)}
    every = inferred_config()
    old = {f.name for f in dataclasses.fields(every)}
    return {k: v for k, v in data.items() if k in own or k not in old or v != _default(every, k)}


def _default(cls: type, name: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


__all__ = ["AUTO", "PLUGIN_GROUP", "Kind", "StreamConfig", "StreamConfigField", "config_class", "get_kind",
           "infer_kind", "inferred_config", "kind_names", "load_plugins", "register_kind", "resolve_config", "stream_config", "stream_kind",
           "unregister_kind", "upgrade_stream"]
