"""RAFT for video: torchvision's model, run the way a video needs it.

Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", ECCV 2020.
The weights and modules are torchvision's (``raft_large`` / ``raft_small``); what differs
from calling ``model(img1, img2)`` once per pair is only how the same computation is scheduled:

* the feature encoder runs once per *frame*, not twice per pair (frame ``k`` is the second
  image of pair ``k - 1`` and the first of pair ``k``), and pairs index into those features;
* the convex upsampling (mask head + unfold) runs once, for the last update, instead of after
  every update (torchvision returns all 12 upsampled predictions; video extraction keeps one);
* coordinate grids are built on the device, so the forward has no host-device copies and can
  be captured in a CUDA graph (``torch.compile(mode="reduce-overhead")``);
* the correlation lookup can gather a 10x10 integer window per level once and blend it
  bilinearly (``lookup="gather"``), which is what ``grid_sample`` at 81 points sharing one
  fractional offset computes; ``lookup="grid_sample"`` keeps torchvision's code path.

``tests/multimodal_har/flow/test_raft.py`` checks that the output equals the last prediction
of a plain torchvision call on the same weights.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from multimodal_har.weights import WeightsUnavailable  # noqa: F401  (imported from here by the extractors)
from multimodal_har.weights import build_pretrained, is_random, load_state_file, local_file, resolve_weights

MODELS = ("raft_large", "raft_small")
LOOKUPS = ("gather", "grid_sample")


def load_raft(model: str = "raft_large", weights: Optional[str] = "DEFAULT", *,
              progress: bool = False) -> nn.Module:
    """Build a torchvision RAFT with weights given by enum name, local file, or none.

    Args:
        model: ``"raft_large"`` or ``"raft_small"``.
        weights: a torchvision weights name (``"DEFAULT"``, ``"C_T_SKHT_V2"``, ...), which
            downloads into torch's hub cache on first use; a path to a checkpoint file (a
            state dict, or a dict with ``"state_dict"`` / ``"model"``); or ``None`` / ``"none"``
            for random weights (tests and benchmarks only: the flow is meaningless).

    Raises:
        WeightsUnavailable: the download failed; the message says how to pass a local file.
    """
    import torchvision.models.optical_flow as of

    if model not in MODELS:
        raise ValueError(f"unknown RAFT model {model!r}; choices: {', '.join(MODELS)}")
    builder = getattr(of, model)
    if is_random(weights):
        return builder(weights=None).eval()
    path = local_file(weights)
    if path is not None:
        state = load_state_file(path, what="RAFT")
        net = builder(weights=None)
        net.load_state_dict(state)
        return net.eval()
    enum = of.Raft_Large_Weights if model == "raft_large" else of.Raft_Small_Weights
    w = resolve_weights(enum, weights, what=model)
    return build_pretrained(builder, w, what=model, progress=progress).eval()


def pad_to_raft(h: int, w: int, multiple: int = 8, minimum: int = 128) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` replicate padding making ``(h, w)`` divisible by
    ``multiple`` and at least ``minimum`` (RAFT's feature maps are 1/8 of the input and its
    correlation pyramid returns NaNs below 128 px). Split evenly, as RAFT's ``InputPadder``."""
    ph = max(minimum, -(-h // multiple) * multiple) - h
    pw = max(minimum, -(-w // multiple) * multiple) - w
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def _coords_grid(b: int, h: int, w: int, device, dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack((xs, ys))[None].expand(b, 2, h, w)


class FastRAFT(nn.Module):
    """Flow for many pairs of one batch of frames, with a torchvision RAFT's weights.

    Args:
        raft: a torchvision ``RAFT`` (from :func:`load_raft`).
        lookup: ``"gather"`` or ``"grid_sample"`` (see the module docstring).
    """

    def __init__(self, raft: nn.Module, *, lookup: str = "gather") -> None:
        super().__init__()
        if lookup not in LOOKUPS:
            raise ValueError(f"lookup must be one of {LOOKUPS}, got {lookup!r}")
        self.raft, self.lookup = raft, lookup
        self.num_levels = raft.corr_block.num_levels
        self.radius = raft.corr_block.radius

    def forward(self, frames: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                num_updates: int = 12) -> torch.Tensor:
        """
        Args:
            frames: ``(N, 3, H, W)`` in [-1, 1], H and W divisible by 8 and >= 128.
            first, second: ``(B,)`` int64 indices into ``frames``: pair ``b`` is
                ``(frames[first[b]], frames[second[b]])``.
        Returns:
            ``(B, 2, H, W)`` flow in pixels (x, y) from the first to the second frame of each
            pair: the last of torchvision's ``num_updates`` predictions.
        """
        raft = self.raft
        n, _, h, w = frames.shape
        if h % 8 or w % 8 or h < 128 or w < 128:
            raise ValueError(f"frames must be padded to multiples of 8 and >= 128 px, got {h}x{w}")
        fmaps = raft.feature_encoder(frames)
        fmap1, fmap2 = fmaps.index_select(0, first), fmaps.index_select(0, second)
        pyramid = self._pyramid(fmap1, fmap2)
        ctx = raft.context_encoder(frames.index_select(0, first))
        hs = raft.update_block.hidden_state_size
        hidden, context = torch.split(ctx, [hs, ctx.shape[1] - hs], dim=1)
        hidden, context = torch.tanh(hidden), F.relu(context)
        b, _, h8, w8 = fmap1.shape
        coords0 = _coords_grid(b, h8, w8, frames.device, torch.float32)
        coords1 = coords0.clone()
        for _ in range(num_updates):
            corr = self._index(pyramid, coords1)
            hidden, delta = raft.update_block(hidden, context, corr, coords1 - coords0)
            coords1 = coords1 + delta.float()
        flow = coords1 - coords0
        if raft.mask_predictor is None:
            return 8 * F.interpolate(flow, scale_factor=8, mode="bilinear", align_corners=True)
        mask = raft.mask_predictor(hidden).float()
        return _convex_upsample(flow, mask)

    def _pyramid(self, fmap1: torch.Tensor, fmap2: torch.Tensor) -> list[torch.Tensor]:
        b, c, h, w = fmap1.shape
        corr = torch.matmul(fmap1.flatten(2).transpose(1, 2), fmap2.flatten(2)) / (c ** 0.5)
        corr = corr.reshape(b * h * w, 1, h, w)
        levels = [corr]
        for _ in range(self.num_levels - 1):
            corr = F.avg_pool2d(corr, kernel_size=2, stride=2)
            levels.append(corr)
        if self.lookup == "gather":  # zero border of radius + 2 so windows never leave the volume
            p = self.radius + 2
            levels = [F.pad(v, (p, p, p, p)) for v in levels]
        return levels

    def _index(self, pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        b, _, h, w = coords.shape
        r = self.radius
        side = 2 * r + 1
        centre = coords.permute(0, 2, 3, 1).reshape(b * h * w, 2)
        out = []
        for level, vol in enumerate(pyramid):
            c = centre / (2 ** level)
            if self.lookup == "grid_sample":
                d = torch.linspace(-r, r, side, device=coords.device, dtype=c.dtype)
                delta = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1)
                pts = c.view(-1, 1, 1, 2) + delta.view(1, side, side, 2)
                vh, vw = vol.shape[-2:]
                grid = torch.stack((2 * pts[..., 0] / (vw - 1) - 1, 2 * pts[..., 1] / (vh - 1) - 1), -1)
                s = F.grid_sample(vol, grid.to(vol.dtype), mode="bilinear", align_corners=True)
                out.append(s.view(b, h, w, side * side))
            else:
                out.append(self._gather_window(vol, c).view(b, h, w, side * side))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2).contiguous()

    def _gather_window(self, vol: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Bilinear samples at ``c + (dx, dy)``, ``dx, dy`` in ``-r..r``, from a zero-padded volume.

        Returns ``(M, side * side)`` ordered as torchvision's lookup: x offset major, y minor.
        """
        r, p = self.radius, self.radius + 2
        m, _, hp, wp = vol.shape
        side = 2 * r + 1
        base = torch.floor(c)
        frac = (c - base).to(vol.dtype)
        x0 = base[:, 0].long() - r + p
        y0 = base[:, 1].long() - r + p
        ar = torch.arange(side + 1, device=c.device)
        xs = (x0[:, None] + ar).clamp_(0, wp - 1)  # outside -> the zero border
        ys = (y0[:, None] + ar).clamp_(0, hp - 1)
        idx = ys[:, :, None] * wp + xs[:, None, :]  # (M, side+1 [y], side+1 [x])
        win = torch.gather(vol.view(m, hp * wp), 1, idx.view(m, -1)).view(m, side + 1, side + 1)
        fx, fy = frac[:, 0, None, None], frac[:, 1, None, None]
        top = win[:, :-1, :-1] * (1 - fx) + win[:, :-1, 1:] * fx
        bot = win[:, 1:, :-1] * (1 - fx) + win[:, 1:, 1:] * fx
        s = top * (1 - fy) + bot * fy  # (M, y, x)
        return s.transpose(1, 2).reshape(m, side * side)


def _convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int = 8) -> torch.Tensor:
    b, c, h, w = flow.shape
    mask = torch.softmax(mask.view(b, 1, 9, factor, factor, h, w), dim=2)
    up = F.unfold(factor * flow, kernel_size=3, padding=1).view(b, c, 9, 1, 1, h, w)
    up = torch.sum(mask * up, dim=2)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, c, factor * h, factor * w)


def prepare_frames(frames_u8: torch.Tensor, pad: tuple[int, int, int, int],
                   channels_last: bool = False) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 RGB (any device) -> ``(N, 3, H', W')`` float in [-1, 1], padded."""
    x = frames_u8.permute(0, 3, 1, 2).float().mul_(2.0 / 255.0).sub_(1.0)
    if any(pad):
        x = F.pad(x, pad, mode="replicate")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def crop_flow(flow: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pad
    h, w = flow.shape[-2:]
    return flow[..., top:h - bottom, left:w - right]
