"""Pose LSTM: the 3-layer stacked LSTM over 3D poses of Das, Dai, Koperski, Minciullo, Garattoni,
Bremond, Francesca, "Toyota Smarthome: Real-World Activities of Daily Living", ICCV 2019
(section 4, pose-driven attention): 3 layers of 512 units, dropout 0.5, pre-trained on
skeletons for action classification, then frozen to drive the attention of
:mod:`multimodal_har.encoders.pose_attention`.

* Per frame, the joints of every person slot are flattened into one vector of
  ``max_people * V * C`` numbers (people concatenated, as the LSTM baselines on NTU RGB+D do);
  a batch with fewer than ``max_people`` slots is padded with empty (all-zero) people, the
  readers' convention for an absent person. An optional linear input embedding
  (``embed_dim``) maps that vector before the LSTM; the paper feeds the coordinates directly.
* Sequences run packed (:func:`torch.nn.utils.rnn.pack_padded_sequence`) with the lengths of
  the mask, so frames beyond a sample's length are never read: masks must be prefix masks
  (valid frames first), which is checked.
* ``pooled``: the top layer's hidden state at the last valid frame (``pool="last"``), what the
  paper's classifier and attention heads read, or the mean of the top layer's outputs over the
  valid frames (``pool="mean"``).
* Workflow of the paper: pre-train on skeletons alone (the caller puts a linear classifier on
  ``pooled``), save the state dict, :meth:`PoseLSTM.load_pretrained` it, then :meth:`freeze`.
  A frozen encoder has ``requires_grad=False`` and stays in eval mode (no dropout) even when
  its parent model calls ``.train()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from multimodal_har.skeleton.layouts import STREAMS, Layout, get_layout

from . import EncoderOutput
from .layers import default_mask, masked_mean
from .skeleton_gcn import make_streams

POOLS = ("last", "mean")


def prefix_lengths(mask: Tensor) -> Tensor:
    """``(B, T)`` bool mask -> ``(B,)`` int64 lengths; ``ValueError`` unless every row is a
    prefix mask (True for the first ``length`` frames, False after)."""
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    prefix = steps[None, :] < lengths[:, None]  # (B, T)
    if not torch.equal(prefix, mask):
        bad = (prefix != mask).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(f"mask must be a prefix mask (valid frames first, padding after); "
                         f"samples {bad} have a gap or leading padding")
    return lengths


class PoseLSTM(nn.Module):
    """Stacked LSTM encoder over 3D pose sequences.

    Args:
        layout: a layout name or :class:`Layout` (its joint count ``V``).
        in_channels: coordinates per joint (3 for x, y, z).
        hidden: LSTM units per layer (512 in the paper); ``out_dim == hidden``.
        layers: stacked LSTM layers (3 in the paper).
        dropout: between LSTM layers (0.5 in the paper; PyTorch applies it to the outputs of
            every layer but the last).
        streams: input streams concatenated per joint: ``joint``, ``bone``, ``motion``, ``bone_motion``.
        max_people: person slots flattened into each frame's vector.
        embed_dim: ``None`` (the paper: coordinates straight into the LSTM) or the width of a
            linear input embedding.
        pool: ``"last"`` (the last valid frame's hidden state) or ``"mean"``.
    """

    def __init__(self, *, layout: str | Layout, in_channels: int = 3, hidden: int = 512, layers: int = 3,
                 dropout: float = 0.5, streams: Sequence[str] = ("joint",), max_people: int = 1,
                 embed_dim: Optional[int] = None, pool: str = "last") -> None:
        super().__init__()
        self.layout = get_layout(layout)
        for s in streams:
            if s not in STREAMS:
                raise ValueError(f"unknown input stream {s!r}; valid choices: {', '.join(STREAMS)}")
        if not streams:
            raise ValueError("streams must name at least one input stream")
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; valid choices: {', '.join(POOLS)}")
        if max_people < 1 or layers < 1 or hidden < 1:
            raise ValueError(f"max_people, layers and hidden must be >= 1, got {max_people}, {layers}, {hidden}")
        self.streams = tuple(streams)
        self.in_channels = in_channels
        self.max_people = max_people
        self.pool = pool
        frame_dim = max_people * self.layout.num_joints * in_channels * len(self.streams)
        self.embed = None if embed_dim is None else nn.Linear(frame_dim, embed_dim)
        self.lstm = nn.LSTM(input_size=frame_dim if embed_dim is None else embed_dim, hidden_size=hidden,
                            num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self.out_dim = hidden
        self.frozen = False

    # -- the paper's workflow: pre-train, load, freeze ------------------------------------
    def freeze(self) -> "PoseLSTM":
        """No gradients, eval mode, and eval mode kept through the parent's ``.train()``."""
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def unfreeze(self) -> "PoseLSTM":
        """Gradients back on and training mode (the parent's ``.eval()`` still applies)."""
        self.frozen = False
        for p in self.parameters():
            p.requires_grad_(True)
        return self.train(True)

    def train(self, mode: bool = True) -> "PoseLSTM":
        return super().train(mode and not self.frozen)

    def load_pretrained(self, path: str | Path, *, prefix: str = "", strict: bool = True):
        """Load a state dict saved with ``torch.save(state_dict, path)``.

        ``prefix`` selects and strips the keys of this encoder inside a larger model's state
        dict (``prefix="encoder."`` for a ``{"encoder": PoseLSTM, "head": Linear}`` classifier);
        other keys are ignored. Returns ``load_state_dict``'s missing/unexpected keys.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise ValueError(f"{path}: no key starts with prefix {prefix!r}")
        return self.load_state_dict(state, strict=strict)

    # -- forward ----------------------------------------------------------------------------
    def _frames(self, x: Tensor, mask: Tensor) -> Tensor:
        """``(B, T, M, V, C)`` -> ``(B, T, max_people * V * C * len(streams))``, every value of
        a frame beyond the sample's length zero, so no stream mixes padding into a valid frame."""
        B, T, M, V, C = x.shape
        if M < self.max_people:  # empty person slots
            x = torch.cat([x, x.new_zeros(B, T, self.max_people - M, V, C)], dim=2)
        h = make_streams(x, self.layout, self.streams, mask)  # (B, T, M, V, C * S)
        return h.flatten(2)  # (B, T, M*V*C*S): people, then joints, then channels

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            x: ``(B, T, M, V, C)`` joint coordinates, ``M <= max_people``; an absent person
                is all zeros.
            mask: ``(B, T)`` bool prefix mask, True for real frames (default: all).

        Returns:
            pooled ``(B, hidden)``, tokens ``(B, T, hidden)`` (the top layer's hidden state per
            frame, zero beyond a sample's length), mask ``(B, T)`` (the input mask). A sample
            with no valid frame gets zeros.
        """
        V = self.layout.num_joints
        if x.ndim != 5 or x.shape[3] != V or x.shape[4] != self.in_channels or x.shape[2] > self.max_people:
            raise ValueError(f"expected x of shape (B, T, M <= {self.max_people}, {V}, {self.in_channels}) "
                             f"for layout {self.layout.name}, got {tuple(x.shape)}")
        B, T = x.shape[:2]
        mask = default_mask(mask, B, T, x.device)
        lengths = prefix_lengths(mask)
        h = self._frames(x, mask)  # (B, T, F)
        if self.embed is not None:
            h = self.embed(h)  # (B, T, E)
        # pack_padded_sequence needs length >= 1: an empty sample runs one (zero) frame and is
        # zeroed afterwards
        packed = pack_padded_sequence(h, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        tokens, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, hidden), 0 beyond
        tokens = tokens * mask[..., None]
        if self.pool == "last":
            pooled = h_n[-1] * (lengths > 0)[:, None]  # (B, hidden): top layer, last valid frame
        else:
            pooled = masked_mean(tokens, mask)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)


__all__ = ["PoseLSTM", "prefix_lengths"]
