"""Two-stream video encoders: Simonyan & Zisserman, "Two-Stream Convolutional Networks for
Action Recognition in Videos", NeurIPS 2014, with the segment sampling and training practice
of Wang et al., "Temporal Segment Networks" (TSN), ECCV 2016.

* :class:`VideoCNN` is one stream: a torchvision backbone without its classifier, run on the
  ``K`` segments of a video (one snippet each, sampled by the data pipeline) and combined by
  segment consensus (average, as TSN, or max).
  - 2D backbones (the ResNet family: ``resnet18`` ... ``resnet152``, ``resnext*``,
    ``wide_resnet*``) see one RGB frame (3 channels) or a stack of ``L`` flow fields
    (``2L`` channels) per segment.
  - 3D backbones (``r3d_18``, ``r2plus1d_18``, ``mc3_18``) see a clip of ``T`` frames per
    segment (3 channels RGB, 2 channels flow) and keep the time axis: their tokens are per
    clip and per output time step.
* Flow channels, as TSN stores them: field ``i``'s x component is channel ``2i``, its y
  component channel ``2i + 1`` (``x0, y0, x1, y1, ...``); a stack of
  :func:`multimodal_har.flow.codec.read_flow` fields ``(L, 2, H, W)`` becomes this layout with
  ``.reshape(2 * L, H, W)``.
* Cross-modality initialisation (TSN): a flow stream built from RGB weights gets first-layer
  filters averaged over the 3 RGB channels and replicated over its input channels
  (:func:`cross_modality_init`); the rest of the network keeps the RGB weights. With random
  weights the first conv is initialised as torchvision initialises it.
* Departures, and why: consensus is taken over segment *embeddings*, not class scores
  (for a linear classifier the two are the same; the head belongs to the model, not here);
  only valid segments are run through the backbone, so padding costs nothing and, in
  training, does not enter batch-norm statistics; partial BN (TSN) is optional.
* Input normalisation is the caller's: ``VideoCNN.mean`` / ``.std`` hold what the weights
  expect (the torchvision transforms' values for RGB; for flow in pixels mean 0, std 20,
  which is MMAction2's ``(jpeg - 128) / 128`` on TSN's quantised JPEGs).

:class:`TwoStream` holds an RGB and a flow stream over the same ``K`` segments; its
``extras`` carries each stream's own output for late fusion of scores (the papers weight
RGB:flow 1:1.5, :attr:`TwoStream.SCORE_WEIGHTS`).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from multimodal_har.weights import build_pretrained, is_random, load_state_file, local_file, resolve_weights

from . import EncoderOutput
from .layers import default_mask, masked_mean

BACKBONES_3D = ("r3d_18", "r2plus1d_18", "mc3_18")
MODALITIES = ("rgb", "flow")
CONSENSUS = ("avg", "max")
FLOW_MEAN, FLOW_STD = 0.0, 20.0  # pixels; TSN clips flow to [-20, 20]


def backbones_2d() -> list[str]:
    """The torchvision classification models of the ResNet family."""
    import torchvision.models as tvm

    return [n for n in tvm.list_models(module=tvm) if n.startswith(("resnet", "resnext", "wide_resnet"))]


def cross_modality_init(conv_weight: Tensor, in_channels: int) -> Tensor:
    """TSN's cross-modality initialisation: ``(O, 3, *kernel)`` RGB filters ->
    ``(O, in_channels, *kernel)``, each new channel the mean of the three RGB channels."""
    if conv_weight.ndim < 3 or conv_weight.shape[1] != 3:
        raise ValueError(f"expected RGB conv filters (out, 3, *kernel), got {tuple(conv_weight.shape)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    mean = conv_weight.mean(dim=1, keepdim=True)  # (O, 1, *kernel)
    return mean.expand(-1, in_channels, *conv_weight.shape[2:]).contiguous()


def _replace_conv(conv: nn.Module, in_channels: int, weight: Optional[Tensor]) -> nn.Module:
    """A copy of ``conv`` (Conv2d or Conv3d) taking ``in_channels``, with ``weight`` or, when
    ``None``, torchvision's ResNet initialisation (Kaiming normal, fan out)."""
    new = type(conv)(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, bias=conv.bias is not None)
    with torch.no_grad():
        if weight is None:
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        else:
            new.weight.copy_(weight)
        if new.bias is not None:
            new.bias.zero_()
    return new


class VideoCNN(nn.Module):
    """One stream of a two-stream network (TSN-style segments).

    Args:
        modality: ``"rgb"`` or ``"flow"``.
        backbone: a 2D ResNet-family name (:func:`backbones_2d`) or a 3D video ResNet
            (``r3d_18``, ``r2plus1d_18``, ``mc3_18``).
        weights: ``None`` / ``"none"`` (random), a torchvision weights name (``"DEFAULT"``,
            ``"IMAGENET1K_V1"``, ``"KINETICS400_V1"``, ``"ResNet18_Weights.DEFAULT"``), or a
            checkpoint file of the torchvision model (its classifier, if present, is dropped;
            a file whose first conv already takes this stream's channels loads as it is, an
            RGB one gets cross-modality initialisation).
        flow_length: ``L`` stacked flow fields per 2D flow snippet (``2L`` channels); TSN uses 5,
            the two-stream paper 10. Unused for RGB and 3D backbones.
        consensus: ``"avg"`` (TSN) or ``"max"`` over valid segments.
        dropout: on each segment's embedding before consensus (TSN: 0.8 RGB, 0.7 flow, before
            its classifier).
        partial_bn: TSN's partial BN: in training, every batch norm but the first keeps its
            running statistics and affine parameters frozen.
        progress: show the download progress of pretrained weights.
        stages: keep the backbone's first ``stages`` residual stages (4: the whole network);
            fewer make a small, shallow network for small inputs and quick runs (ResNet-18
            with 2 stages: 0.7 M parameters instead of 11.2 M, 128 features, 1/8 resolution).
    """

    def __init__(self, *, modality: str = "rgb", backbone: str = "resnet18", weights: Any = None,
                 flow_length: int = 5, consensus: str = "avg", dropout: float = 0.0,
                 partial_bn: bool = False, progress: bool = False, stages: int = 4) -> None:
        super().__init__()
        import torchvision.models as tvm

        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; valid choices: {', '.join(MODALITIES)}")
        if consensus not in CONSENSUS:
            raise ValueError(f"unknown consensus {consensus!r}; valid choices: {', '.join(CONSENSUS)}")
        names = backbones_2d()
        if backbone not in names and backbone not in BACKBONES_3D:
            raise ValueError(f"unknown backbone {backbone!r}; valid choices: {', '.join(names + list(BACKBONES_3D))}")
        if flow_length < 1:
            raise ValueError(f"flow_length must be >= 1, got {flow_length}")
        if stages not in (1, 2, 3, 4):
            raise ValueError(f"stages must be 1, 2, 3 or 4 (the backbone's residual stages kept), got {stages!r}")
        self.modality, self.backbone_name, self.consensus = modality, backbone, consensus
        self.is_3d = backbone in BACKBONES_3D
        self.in_channels = 3 if modality == "rgb" else (2 if self.is_3d else 2 * flow_length)
        self.partial_bn = partial_bn

        builder, enum = tvm.get_model_builder(backbone), tvm.get_model_weights(backbone)
        path = None if is_random(weights) else local_file(weights)
        state = None
        if is_random(weights) or path is not None:
            net = builder(weights=None)
            if path is not None:  # a torchvision checkpoint, or this encoder's own state dict
                state = {k.removeprefix("backbone."): v for k, v in load_state_file(path, what=backbone).items()}
                state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            spec = enum.DEFAULT  # for mean/std: the family's usual values
        else:
            spec = resolve_weights(enum, weights, what=backbone)
            net = build_pretrained(builder, spec, what=backbone, progress=progress, flag="weights=")
        net.fc = nn.Identity()  # the classifier is the model's, not the encoder's
        self.backbone = net

        rgb_weights = not is_random(weights)  # the first conv holds pretrained RGB filters
        if state is not None:
            first = state.get(f"{self._first_conv_name()}.weight")
            if self.in_channels != 3 and first is not None and first.shape[1] == self.in_channels:
                self._set_first_conv(None)  # a checkpoint of a stream like this one: load it as it is
                rgb_weights = False
            net.load_state_dict(state)
        if self.in_channels != 3 and self._get_first_conv().in_channels == 3:
            w = self._get_first_conv().weight.detach()
            self._set_first_conv(cross_modality_init(w, self.in_channels) if rgb_weights else None)
        for k in range(stages + 1, 5):  # (pretrained weights were loaded whole; the stages dropped go)
            setattr(net, f"layer{k}", nn.Identity())
        last = [m for m in getattr(net, f"layer{stages}").modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.feature_dim = self.out_dim = int(last[-1].num_features)  # the last stage's output channels

        if modality == "rgb":
            t = spec.transforms()
            self.mean, self.std = tuple(t.mean), tuple(t.std)
        else:
            self.mean, self.std = (FLOW_MEAN,) * self.in_channels, (FLOW_STD,) * self.in_channels
        self.dropout = nn.Dropout(dropout)
        self._steps: dict[int, int] = {}  # 3D: output time steps per clip length
        self.train()  # applies partial BN

    # ---------------------------------------------------------------------------- backbone
    def _first_conv_name(self) -> str:
        return "stem.0" if self.is_3d else "conv1"

    def _get_first_conv(self) -> nn.Module:
        return self.backbone.stem[0] if self.is_3d else self.backbone.conv1

    def _set_first_conv(self, weight: Optional[Tensor]) -> None:
        conv = _replace_conv(self._get_first_conv(), self.in_channels, weight)
        if self.is_3d:
            self.backbone.stem[0] = conv
        else:
            self.backbone.conv1 = conv

    def _trunk(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, D, h, w)`` (2D) or ``(N, C, T, H, W) -> (N, D, t, h, w)`` (3D)."""
        b = self.backbone
        x = b.stem(x) if self.is_3d else b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def train(self, mode: bool = True) -> "VideoCNN":
        super().train(mode)
        if self.partial_bn and mode:
            bns = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for m in bns[1:]:
                m.eval()
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)
        return self

    # ------------------------------------------------------------------------------ public
    def feature_map(self, x: Tensor) -> Tensor:
        """The backbone's last feature map of single clips, before pooling.

        Args:
            x: ``(B, C, T, H, W)``, ``C = in_channels`` (a 2D backbone runs on each of the
               ``T`` frames, or flow stacks, independently).

        Returns:
            ``(B, D, t, h, w)`` with ``D = feature_dim``; ``t = T`` for 2D backbones, the
            backbone's temporal output size for 3D ones.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"feature_map expects one clip per sample (B, {self.in_channels}, T, H, W) for "
                             f"{self.modality} on {self.backbone_name}, got {tuple(x.shape)}")
        if self.is_3d:
            return self._trunk(x)
        B, C, T, H, W = x.shape
        f = self._trunk(x.transpose(1, 2).reshape(B * T, C, H, W))  # (B*T, D, h, w)
        return f.view(B, T, *f.shape[1:]).transpose(1, 2)  # (B, D, T, h, w)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            x: 2D backbones ``(B, K, C, H, W)``: ``K`` segments, one snippet each
               (``C = 3`` RGB, ``2L`` flow); 3D backbones ``(B, K, C, T, H, W)``: ``K``
               clips of ``T`` frames (``C = 3`` RGB, 2 flow).
            mask: ``(B, K)`` bool, True for valid segments (default: all).

        Returns:
            tokens ``(B, K, D)`` per segment (2D) or ``(B, K * t, D)`` per clip and output
            time step, clip-major (3D); mask ``(B, K)`` or ``(B, K * t)``; pooled ``(B, D)``
            the consensus over valid tokens (zeros for a sample with none). Invalid tokens
            are zeros.
        """
        shape = "(B, K, C, T, H, W)" if self.is_3d else "(B, K, C, H, W)"
        if x.ndim != (6 if self.is_3d else 5) or x.shape[2] != self.in_channels:
            raise ValueError(f"{self.modality} on {self.backbone_name} expects x of shape {shape} with "
                             f"C = {self.in_channels}, got {tuple(x.shape)}")
        B, K = x.shape[:2]
        mask = default_mask(mask, B, K, x.device)
        flat = mask.reshape(B * K)
        clips = x.reshape(B * K, *x.shape[2:])[flat]  # (N_valid, C, [T,] H, W): padding is not run
        if clips.shape[0]:
            f = self._trunk(clips).flatten(-2).mean(-1)  # spatial average: (N_valid, D[, t])
            steps = f.shape[2] if self.is_3d else 1
        else:  # nothing valid (a batch without this modality): no forward
            steps = self._time_steps(x.shape[3]) if self.is_3d else 1
            f = x.new_zeros(0, self.out_dim, steps)
        f = f.view(-1, self.out_dim, steps).transpose(1, 2)  # (N_valid, t, D)
        tokens = f.new_zeros(B * K, steps, self.out_dim)
        tokens[flat] = self.dropout(f)
        tokens = tokens.view(B, K * steps, self.out_dim)  # clip-major
        mask = mask.repeat_interleave(steps, dim=1)  # (B, K*t)
        return EncoderOutput(pooled=self._consensus(tokens, mask), tokens=tokens, mask=mask)

    def _time_steps(self, frames: int) -> int:
        """A 3D backbone's output time steps for clips of ``frames`` frames (one tiny probe in
        eval mode, so batch-norm statistics are untouched)."""
        if frames not in self._steps:
            was = self.training
            self.eval()
            with torch.no_grad():
                probe = next(self.parameters()).new_zeros(1, self.in_channels, frames, 32, 32)
                self._steps[frames] = self._trunk(probe).shape[2]
            self.train(was)
        return self._steps[frames]

    def _consensus(self, tokens: Tensor, mask: Tensor) -> Tensor:
        if self.consensus == "avg":
            return masked_mean(tokens, mask)
        best = tokens.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)  # (B, D)
        return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


class TwoStream(nn.Module):
    """An RGB and a flow :class:`VideoCNN` over the same ``K`` segments.

    Args:
        rgb: a :class:`VideoCNN` with ``modality="rgb"``, or the keyword arguments of one.
        flow: a :class:`VideoCNN` with ``modality="flow"``, or the keyword arguments of one.

    ``out_dim = rgb.out_dim + flow.out_dim``.
    """

    SCORE_WEIGHTS = {"rgb": 1.0, "flow": 1.5}  # late fusion of the streams' scores (TSN)

    def __init__(self, *, rgb: dict | VideoCNN, flow: dict | VideoCNN) -> None:
        super().__init__()
        self.rgb = self._stream(rgb, "rgb")
        self.flow = self._stream(flow, "flow")
        self.out_dim = self.rgb.out_dim + self.flow.out_dim

    @staticmethod
    def _stream(spec: dict | VideoCNN, modality: str) -> VideoCNN:
        if isinstance(spec, dict):
            spec = VideoCNN(**{"modality": modality, **spec})
        if not isinstance(spec, VideoCNN) or spec.modality != modality:
            got = getattr(spec, "modality", type(spec).__name__)
            raise ValueError(f"the {modality} stream must be a VideoCNN with modality={modality!r} "
                             f"or a dict of its arguments, got {got!r}")
        return spec

    def forward(self, rgb: Optional[Tensor] = None, flow: Optional[Tensor] = None,
                rgb_mask: Optional[Tensor] = None, flow_mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            rgb: the RGB stream's input (see :meth:`VideoCNN.forward`), or ``None`` if missing.
            flow: the flow stream's input, or ``None`` if missing; both have the same ``B, K``.
            rgb_mask, flow_mask: ``(B, K)`` bool, valid segments of each stream.

        Returns:
            pooled ``(B, D_rgb + D_flow)``: the streams' pooled outputs concatenated (zeros for
            a missing stream); tokens ``(B, K, D_rgb + D_flow)``: per segment, each stream's
            segment embedding concatenated (a 3D stream's per-time-step tokens are averaged
            within their clip, so streams of different temporal resolution line up by segment);
            mask ``(B, K)``: segments valid in any present stream; extras ``{"rgb": ...,
            "flow": ...}`` each stream's own :class:`EncoderOutput`, or ``None`` if missing.
        """
        if rgb is None and flow is None:
            raise ValueError("TwoStream needs at least one of rgb and flow, got neither")
        if rgb is not None and flow is not None and rgb.shape[:2] != flow.shape[:2]:
            raise ValueError(f"rgb and flow must have the same batch and segments (B, K); got rgb "
                             f"{tuple(rgb.shape[:2])}, flow {tuple(flow.shape[:2])}")
        outs, segs = {}, {}
        for name, x, m in (("rgb", rgb, rgb_mask), ("flow", flow, flow_mask)):
            outs[name] = out = None if x is None else getattr(self, name)(x, m)
            if out is not None:
                B, K = x.shape[:2]
                steps = out.tokens.shape[1] // K
                tok = out.tokens.view(B, K, steps, -1).mean(dim=2)  # (B, K, D); a clip's steps share its validity
                segs[name] = (tok, out.mask.view(B, K, steps)[..., 0])  # (B, K, D), (B, K)
        ref = next(iter(segs.values()))[0]
        pooled, tokens, mask = [], [], torch.zeros(B, K, dtype=torch.bool, device=ref.device)
        for name in ("rgb", "flow"):
            dim = getattr(self, name).out_dim
            if outs[name] is None:
                pooled.append(ref.new_zeros(B, dim))
                tokens.append(ref.new_zeros(B, K, dim))
            else:
                pooled.append(outs[name].pooled)
                tokens.append(segs[name][0])
                mask = mask | segs[name][1]
        return EncoderOutput(pooled=torch.cat(pooled, dim=1), tokens=torch.cat(tokens, dim=2), mask=mask,
                             extras=outs)
