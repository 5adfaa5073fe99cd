"""Pose-driven separable spatio-temporal attention: Das, Dai, Koperski, Minciullo, Garattoni,
Bremond, Francesca, "Toyota Smarthome: Real-World Activities of Daily Living", ICCV 2019
(section 4); with the flow driver of Li, Gavrilyuk, Gavves, Jain, Snoek, "VideoLSTM
convolves, attends and flows for action recognition", CVIU 2018 ("what moves is what acts").

The paper: a 3-layer LSTM over 3D poses (:class:`~multimodal_har.encoders.pose_lstm.PoseLSTM`),
pre-trained on skeletons and frozen, summarises the pose sequence in one vector ``h*``; from it

* spatial attention ``alpha = sigmoid(W_a tanh(U_a h*))``: ``m x n`` weights in (0, 1), one
  per cell of the video feature map's spatial grid, shared by all its time steps;
* temporal attention ``beta = softmax(W_b tanh(U_b h*))``: ``t`` weights summing to 1;

(``U_a``, ``U_b``: Dense(256)). Each modulates the video CNN's last feature map ``f`` (I3D
Mixed_5c in the paper, ``(t, m, n, c)``) *separately*; the two modulated maps are pooled and
concatenated (``out_dim = 2 * video.feature_dim``). The training loss adds
``lambda1 * ||alpha||_2 + lambda2 * sum_i (1 - beta_i)^2``; this module returns that term in
``extras["attention_loss"]`` (batch mean of the per-sample terms) for the caller to add.

Choices and departures, and why:

* The video backbone is injected: any module with ``feature_map(x) -> (B, D, t, h, w)`` and an
  int ``feature_dim`` (:class:`~multimodal_har.encoders.two_stream.VideoCNN`). The heads have
  fixed output sizes, so ``feature_size=(t, h, w)`` is given at construction (the paper's
  ``t x 7 x 7``) and checked on every forward.
* Pooling: the spatial branch is the paper's global average pool of ``alpha * f`` over the
  valid ``(t, h, w)``; the temporal branch is ``sum_i beta_i * mean_hw(f_i)``, the attention-
  weighted average over time (a plain average of ``beta * f`` would only divide it by ``t``).
* Tokens: per feature step ``i``, ``[mean_hw(alpha * f_i), n * beta_i * mean_hw(f_i)]`` with
  ``n`` the sample's valid steps (``n * beta_i = 1`` for uniform attention), so the masked mean
  of the tokens is exactly ``pooled``.
* Masks: the frame mask ``video_mask (B, T)`` becomes a feature-step mask with
  :func:`~.layers.downsample_mask`; masked steps get ``beta = 0`` and are left out of the pools
  and of the ``(1 - beta)^2`` sum. Whether padded frames leak into valid feature steps
  through the backbone's temporal receptive field is the backbone's business.
* ``driver="flow"``: the attention comes from a second injected video module fed the flow
  clip. Following VideoLSTM, whose attention at a location comes from the motion there, the
  same Dense(256, tanh) heads run per location on the flow features averaged over valid time
  (spatial, then sigmoid) and per time step on the flow features averaged over space
  (temporal, then masked softmax), instead of on one summary vector; the flow map must have
  the RGB map's ``(t, h, w)``, and ``feature_size`` is then optional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from . import EncoderOutput, build_encoder
from .layers import default_mask, downsample_mask, masked_mean

DRIVERS = ("pose", "flow")
VIDEO_PROTOCOL = "feature_map(x) -> (B, D, t, h, w) and an int feature_dim (e.g. VideoCNN)"


def _build(spec: Any, role: str, default_name: Optional[str] = None) -> nn.Module:
    """An injected module, or a dict ``{"name": registered encoder, **kwargs}`` built by
    :func:`build_encoder` (``name`` defaults to ``default_name``)."""
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, dict):
        kw = dict(spec)
        name = kw.pop("name", default_name)
        if name is None:
            raise ValueError(f"{role}: a dict spec needs a 'name' (a registered encoder, e.g. 'video_cnn'), "
                             f"got keys {sorted(spec)}")
        return build_encoder(name, **kw)
    raise ValueError(f"{role} must be an nn.Module or a dict of build_encoder kwargs, got {type(spec).__name__}")


def _check_video_protocol(m: nn.Module, role: str) -> None:
    lacks = [a for a, ok in (("feature_map", callable(getattr(m, "feature_map", None))),
                             ("feature_dim", isinstance(getattr(m, "feature_dim", None), int))) if not ok]
    if lacks:
        raise ValueError(f"{role} must expose {VIDEO_PROTOCOL}; {type(m).__name__} lacks {', '.join(lacks)}")


def _one_clip(x: Tensor, mask: Optional[Tensor], role: str) -> tuple[Tensor, Optional[Tensor]]:
    """``(B, 1, C, T, H, W)`` (one dataset segment) -> ``(B, C, T, H, W)``, and a ``(B, 1)``
    segment mask -> ``(B, T)`` frame mask; a 5-D clip passes through unchanged."""
    if x.ndim != 6:
        return x, mask
    if x.shape[1] != 1:
        raise ValueError(f"{role}: the attention reads one clip per sample; got {x.shape[1]} segments "
                         f"in {tuple(x.shape)} (configure the modality with segments: 1)")
    x = x[:, 0]  # (B, C, T, H, W)
    if mask is not None and mask.shape == (x.shape[0], 1):
        mask = mask.expand(-1, x.shape[2])  # (B, T): every frame of a valid segment
    return x, mask


def _head(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, out))


class PoseDrivenAttention(nn.Module):
    """Separable spatial and temporal attention over a video CNN's feature map, driven by poses
    (the paper) or by optical flow (VideoLSTM).

    Args:
        video: the RGB backbone (``feature_map`` / ``feature_dim`` protocol), or a dict for
            :func:`build_encoder` (``{"name": "video_cnn", "backbone": "r3d_18"}``).
        pose: ``driver="pose"``: the pose encoder (a module with ``out_dim`` whose forward
            ``(x, mask)`` returns ``pooled``), or a dict of kwargs (``name`` defaults to
            ``"pose_lstm"``: ``{"layout": "ntu_25"}`` builds a :class:`PoseLSTM`).
        flow: ``driver="flow"``: the flow backbone (same protocol as ``video``) or a dict.
        driver: ``"pose"`` or ``"flow"``.
        feature_size: ``(t, h, w)`` of ``video.feature_map``'s output; required for the pose
            driver (the heads emit ``t`` and ``h * w`` weights).
        freeze_pose: the paper's frozen, pre-trained pose LSTM: no gradients, kept in eval
            mode through ``.train()``.
        pose_weights: a state dict file loaded into the pose encoder before freezing
            (``PoseLSTM.load_pretrained`` when it has one).
        attention_hidden: width of the heads' tanh layer (256 in the paper).
        lambda1, lambda2: weights of ``||alpha||_2`` and ``sum (1 - beta)^2`` in
            ``extras["attention_loss"]``.
    """

    def __init__(self, *, video: nn.Module | dict, pose: nn.Module | dict | None = None,
                 flow: nn.Module | dict | None = None, driver: str = "pose",
                 feature_size: Optional[tuple[int, int, int]] = None, freeze_pose: bool = True,
                 pose_weights: str | Path | None = None, attention_hidden: int = 256,
                 lambda1: float = 1e-5, lambda2: float = 1e-5) -> None:
        super().__init__()
        if driver not in DRIVERS:
            raise ValueError(f"unknown driver {driver!r}; valid choices: {', '.join(DRIVERS)}")
        if feature_size is not None and (len(feature_size) != 3 or min(feature_size) < 1):
            raise ValueError(f"feature_size must be (t, h, w) of positive ints, got {feature_size!r}")
        self.driver = driver
        self.feature_size = None if feature_size is None else tuple(int(s) for s in feature_size)
        self.lambda1, self.lambda2 = float(lambda1), float(lambda2)
        self.video = _build(video, "video")
        _check_video_protocol(self.video, "video")
        D = self.video.feature_dim
        self.out_dim = 2 * D
        self.pose = self.flow = None
        self.freeze_pose = False
        if driver == "pose":
            if flow is not None:
                raise ValueError("flow is used only with driver='flow'; got a flow module with driver='pose'")
            if pose is None:
                raise ValueError("driver='pose' needs a pose encoder: pose=PoseLSTM(...) or pose={'layout': ...}")
            if self.feature_size is None:
                raise ValueError("driver='pose' needs feature_size=(t, h, w) of video.feature_map's output "
                                 "(the heads emit t temporal and h*w spatial weights)")
            self.pose = _build(pose, "pose", "pose_lstm")
            p_dim = getattr(self.pose, "out_dim", None)
            if not isinstance(p_dim, int):
                raise ValueError(f"pose must expose an int out_dim; {type(self.pose).__name__} does not")
            if pose_weights is not None:
                if hasattr(self.pose, "load_pretrained"):
                    self.pose.load_pretrained(pose_weights)
                else:
                    self.pose.load_state_dict(torch.load(Path(pose_weights), map_location="cpu", weights_only=True))
            t, h, w = self.feature_size
            self.spatial = _head(p_dim, attention_hidden, h * w)
            self.temporal = _head(p_dim, attention_hidden, t)
            self.freeze_pose = freeze_pose
            if freeze_pose:
                for p in self.pose.parameters():
                    p.requires_grad_(False)
                if hasattr(self.pose, "freeze"):
                    self.pose.freeze()
                self.pose.eval()
        else:
            if pose is not None:
                raise ValueError("pose is used only with driver='pose'; got a pose encoder with driver='flow'")
            if flow is None:
                raise ValueError("driver='flow' needs a flow backbone: flow=VideoCNN(modality='flow', ...) "
                                 "or flow={'name': 'video_cnn', 'modality': 'flow', ...}")
            self.flow = _build(flow, "flow")
            _check_video_protocol(self.flow, "flow")
            self.spatial = _head(self.flow.feature_dim, attention_hidden, 1)
            self.temporal = _head(self.flow.feature_dim, attention_hidden, 1)

    def _pose_frozen(self) -> bool:
        """Frozen = no pose parameter requires a gradient (``freeze_pose=True`` sets that;
        ``self.pose.unfreeze()`` or ``requires_grad_(True)`` later undoes it)."""
        return self.pose is not None and not any(p.requires_grad for p in self.pose.parameters())

    def train(self, mode: bool = True) -> "PoseDrivenAttention":
        super().train(mode)
        if self._pose_frozen():
            self.pose.eval()  # the frozen pose LSTM runs without dropout
        return self

    def _feature_map(self, m: nn.Module, x: Tensor, role: str) -> Tensor:
        if x.ndim != 5:
            raise ValueError(f"expected {role} of shape (B, C, T, H, W), got {tuple(x.shape)}")
        f = m.feature_map(x)
        if f.ndim != 5 or f.shape[:2] != (x.shape[0], m.feature_dim):
            raise ValueError(f"{role}.feature_map must return (B, {m.feature_dim}, t, h, w), got {tuple(f.shape)}")
        return f

    def _logits(self, f: Tensor, fmask: Tensor, pose: Optional[Tensor], pose_mask: Optional[Tensor],
                flow: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Spatial logits ``(B, h, w)`` and temporal logits ``(B, t)`` from the driver."""
        B, _, t, h, w = f.shape
        if self.driver == "pose":
            if pose is None:
                raise ValueError("driver='pose': forward needs pose (B, T_p, M, V, C)")
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self._pose_frozen()):
                summary = self.pose(pose, pose_mask).pooled  # (B, P): the LSTM's h*
            return self.spatial(summary).view(B, h, w), self.temporal(summary)
        if flow is None:
            raise ValueError("driver='flow': forward needs flow (B, C_flow, T, H, W)")
        g = self._feature_map(self.flow, flow, "flow")  # (B, Df, t, h, w)
        if g.shape[2:] != f.shape[2:]:
            raise ValueError(f"the flow feature map's (t, h, w) = {tuple(g.shape[2:])} must match the video's "
                             f"{tuple(f.shape[2:])}: feed clips of the same length and size")
        m = fmask.to(g.dtype)[:, None, :, None, None]  # (B, 1, t, 1, 1)
        per_cell = (g * m).sum(2) / m.sum(2).clamp(min=1.0)  # (B, Df, h, w): mean over valid time
        per_step = g.mean(dim=(3, 4)).transpose(1, 2)  # (B, Df, t) -> (B, t, Df)
        return self.spatial(per_cell.permute(0, 2, 3, 1)).squeeze(-1), self.temporal(per_step).squeeze(-1)

    def forward(self, video: Tensor, pose: Optional[Tensor] = None, video_mask: Optional[Tensor] = None,
                pose_mask: Optional[Tensor] = None, *, flow: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            video: ``(B, C, T, H, W)`` clip for the video backbone, or ``(B, 1, C, T, H, W)``
                (one segment, as the store dataset gives 3D clips; its ``(B, 1)`` segment mask
                then marks all of a valid segment's frames).
            pose: ``(B, T_p, M, V, C)`` poses (``driver="pose"``); ``T_p`` need not be ``T``:
                the pose encoder summarises the whole sequence in one vector, as in the paper.
            video_mask: ``(B, T)`` bool, True for real frames (default: all).
            pose_mask: ``(B, T_p)`` bool prefix mask for the pose encoder (default: all).
            flow: ``(B, C_flow, T, H, W)`` flow clip (``driver="flow"``), aligned with ``video``.

        Returns:
            pooled ``(B, 2D)`` = ``[GAP(alpha * f), sum_i beta_i mean_hw(f_i)]``; tokens
            ``(B, t, 2D)`` (see the module docstring; their masked mean is ``pooled``); mask
            ``(B, t)``; extras ``spatial_attention (B, h, w)`` in (0, 1),
            ``temporal_attention (B, t)`` (sums to 1 over valid steps, 0 on masked ones),
            ``spatial_loss`` / ``temporal_loss`` (batch means of ``||alpha_b||_2`` and
            ``sum_i (1 - beta_bi)^2`` over valid steps) and ``attention_loss`` =
            ``lambda1 * spatial_loss + lambda2 * temporal_loss``.
        """
        video, video_mask = _one_clip(video, video_mask, "video")
        if flow is not None:
            flow, _ = _one_clip(flow, None, "flow")
        f = self._feature_map(self.video, video, "video")  # (B, D, t, h, w)
        B, D, t, h, w = f.shape
        if self.feature_size is not None and (t, h, w) != self.feature_size:
            raise ValueError(f"video.feature_map gave (t, h, w) = {(t, h, w)}, the heads were built for "
                             f"feature_size={self.feature_size}: feed clips of the size they were built for")
        fmask = downsample_mask(default_mask(video_mask, B, video.shape[2], video.device), t)  # (B, t)
        a_logits, b_logits = self._logits(f, fmask, pose, pose_mask, flow)
        alpha = torch.sigmoid(a_logits)  # (B, h, w)
        b_logits = b_logits.masked_fill(~fmask, torch.finfo(b_logits.dtype).min)
        beta = torch.softmax(b_logits, dim=1) * fmask  # (B, t); an all-masked row is 0
        steps = f.mean(dim=(3, 4)).transpose(1, 2)  # (B, D, t) -> (B, t, D)
        spatial = (f * alpha[:, None, None]).mean(dim=(3, 4)).transpose(1, 2)  # (B, t, D)
        n = fmask.sum(dim=1, keepdim=True).to(f.dtype)  # (B, 1)
        temporal = (n * beta)[..., None] * steps  # (B, t, D)
        tokens = torch.cat([spatial, temporal], dim=-1) * fmask[..., None]  # (B, t, 2D)
        pooled = masked_mean(tokens, fmask)  # (B, 2D)
        spatial_loss = alpha.flatten(1).norm(dim=1).mean()
        temporal_loss = (((1 - beta) ** 2) * fmask).sum(dim=1).mean()
        extras = {"spatial_attention": alpha, "temporal_attention": beta, "spatial_loss": spatial_loss,
                  "temporal_loss": temporal_loss,
                  "attention_loss": self.lambda1 * spatial_loss + self.lambda2 * temporal_loss}
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=fmask, extras=extras)


__all__ = ["PoseDrivenAttention"]
