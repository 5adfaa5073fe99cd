"""What the two frame kinds (rgb, flow) share: TSN segments, crops, flips, and uint8 frames that
leave the dataset with a per-channel ``(scale, offset)`` to normalised float32."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .. import augment as A
from ..store import attr_value
from .base import Kind, StreamConfig

LAYOUTS_2D3D = ("2d", "3d")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FLOW_STD = 20.0  # pixels, TSN's quantisation bound (VideoCNN's flow normalisation)


@config_dataclass(kw_only=True)
class FramesConfig(StreamConfig):
    """Attributes (besides :class:`~.base.StreamConfig`'s):
        segments: ``K`` TSN segments.
        layout: ``"2d"``: one frame / a stack of flow fields per segment; ``"3d"``: clips for
            3D backbones (see the kinds' configs for the shapes).
        resize: short side (px) before cropping (None: as stored).
        crop: square crop side (None: the whole frame; then every video of a batch must have
            the same size).
        multi_scale: TSN's multi-scale crop in training.
        flip: random horizontal flip in training (flow x negated).
        mean, std: per-channel normalisation (None: ImageNet for rgb on ``[0, 1]``, 0 / 20 px
            for flow).
    """

    segments: int = 8
    layout: Literal["2d", "3d"] = "2d"
    resize: Optional[int] = None
    crop: Optional[int] = 224
    multi_scale: bool = False
    flip: bool = True
    mean: Optional[list[float]] = None
    std: Optional[list[float]] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout not in LAYOUTS_2D3D:
            raise ValueError(f"layout must be one of {LAYOUTS_2D3D}, got {self.layout!r}")
        self.at_least_one("segments", "resize", "crop")
        if self.crop is not None and self.resize is not None and self.crop > self.resize:
            raise ValueError(f"crop ({self.crop}) must not exceed resize ({self.resize}), the short side the frames "
                             f"are resized to before cropping")


class FramesKind(Kind):
    """TSN sampling of ``K`` segments of :meth:`length` consecutive frames, and the crop check.

    Subclasses set :attr:`length_field` (the config field holding the frames per segment) and
    :attr:`default_stats` (the normalisation when the config sets none)."""

    config: FramesConfig
    channels: ClassVar[int] = 3
    length_field: ClassVar[str] = ""
    default_stats: ClassVar[tuple[Any, Any]] = (0.0, 1.0)

    def length(self) -> int:
        """Consecutive frames per segment."""
        return getattr(self.config, self.length_field)

    def check(self, entry: Any, video: str) -> None:
        """A crop larger than the frames would upsample every one of them (``crop: 4000`` on
        64 px frames takes gigabytes per batch): refused, with the sizes, unless ``resize``
        sets the short side first (then ``crop <= resize``, checked by the config)."""
        super().check(entry, video)
        crop = self.config.crop
        if crop is None or self.config.resize is not None or "height" not in entry.attrs:
            return
        h, w = int(attr_value(entry.attrs["height"])), int(attr_value(entry.attrs["width"]))
        if crop > min(h, w):
            raise ValueError(f"data.modalities.{self.stream}.crop ({crop}) is larger than the stored frames of "
                             f"{self.source} ({w}x{h} px in {video!r}): set crop <= {min(h, w)}, or resize (the "
                             f"short side before cropping) >= crop")

    def positions(self, n: int, rng: Optional[np.random.Generator]) -> np.ndarray:
        return A.segment_starts(n, self.config.segments, self.length(), rng)  # (K, length)

    def output(self, data: Any, *, video: str) -> tuple[np.ndarray, Optional[tuple]]:
        return data  # read() gives (x, affine)

    def spatial(self, frames: np.ndarray, rng: Optional[np.random.Generator], *,
                bound: Optional[float] = None) -> tuple[np.ndarray, Optional[tuple[np.ndarray, np.ndarray]]]:
        """Crop / resize / mirror ``(N, C, H, W)`` frames; RGB uint8, or flow as TSN-quantised
        uint8 of ``bound`` (float pixels if stored as float). uint8 stays uint8, resized as uint8
        (as TSN and MMAction resize their frame and flow images), and comes with the per-channel
        ``(scale, offset)`` that maps it to normalised float32: rgb ``(q / 255 - mean) / std``;
        flow ``(g * (q * 2 * bound / 255 - bound) - mean) / std`` with ``g`` the resize factor of
        the component, negated for x when mirrored (the flow of the mirrored frames)."""
        cfg = self.config
        flow = bound is not None
        region, size = A.crop_region(frames.shape[2], frames.shape[3], crop=cfg.crop, resize=cfg.resize,
                                     multi_scale=cfg.multi_scale, rng=rng)
        flip = bool(rng is not None and cfg.flip and rng.random() < 0.5)
        mean, std = (np.broadcast_to(np.asarray(v, np.float32), (self.channels,)) for v in self.stats())
        if frames.dtype != np.uint8:  # float flow (a float16 store): vectors scaled in float
            x = A.crop_resize(frames, region, size, flip=flip, flow=flow)
            return ((x - mean.reshape(-1, 1, 1)) / std.reshape(-1, 1, 1)).astype(np.float32), None
        x = A.crop_resize(frames, region, size, flip=flip)  # uint8, pixels moved only
        if not flow:
            return x, (1.0 / (255.0 * std), -mean / std)
        gain = np.array([size[1] / region[3] * (-1.0 if flip else 1.0), size[0] / region[2]], np.float32)
        return x, (gain * (2.0 * bound / 255.0) / std, (-gain * bound - mean) / std)

    def stats(self) -> tuple[Any, Any]:
        """The normalisation ``(mean, std)``: the config's, else the kind's :attr:`default_stats`."""
        c, (mean, std) = self.config, self.default_stats
        return (c.mean if c.mean is not None else mean), (c.std if c.std is not None else std)


__all__ = ["FLOW_STD", "FramesConfig", "FramesKind", "IMAGENET_MEAN", "IMAGENET_STD", "LAYOUTS_2D3D"]
