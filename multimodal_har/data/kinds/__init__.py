"""Stream kinds as plugins: one module per stored kind, registered by name (see :mod:`.base`
and ``docs/kinds.md``). Importing the package registers the built-in kinds, in the order
that kind inference tries them, then the kinds installed packages declare (:func:`load_plugins`)."""

from .base import (AUTO, PLUGIN_GROUP, Kind, StreamConfig, StreamConfigField, config_class, get_kind, infer_kind,
                   inferred_config, kind_names, load_plugins, register_kind, resolve_config, stream_config,
                   stream_kind, unregister_kind, upgrade_stream)
from .frames import FLOW_STD, IMAGENET_MEAN, IMAGENET_STD, FramesConfig, FramesKind
from .rgb import RgbKind, RgbStreamConfig
from .flow import FlowKind, FlowStreamConfig
from .pose import PoseKind, PoseStreamConfig
from .audio import AudioKind, AudioStreamConfig
from .signal import SignalKind, SignalStreamConfig

load_plugins()  # kinds of installed packages (entry-point group "multimodal_har.kinds"), after the built-ins

__all__ = ["AUTO", "AudioKind", "AudioStreamConfig", "FLOW_STD", "FlowKind", "FlowStreamConfig", "FramesConfig",
           "FramesKind", "IMAGENET_MEAN", "IMAGENET_STD", "Kind", "PLUGIN_GROUP", "PoseKind", "PoseStreamConfig",
           "RgbKind", "RgbStreamConfig", "SignalKind", "SignalStreamConfig", "StreamConfig", "StreamConfigField",
           "config_class", "get_kind", "infer_kind", "inferred_config", "kind_names", "load_plugins",
           "register_kind", "resolve_config", "stream_config", "stream_kind", "unregister_kind", "upgrade_stream"]
