"""Optical flow with any model of ptlflow (Morimitsu, "PyTorch Lightning Optical Flow",
https://github.com/hmorimitsu/ptlflow), batched across videos like ``raft``.

ptlflow models take ``{"images": (B, 2, 3, H, W)}`` floats in [0, 1] in OpenCV's BGR order,
pad internally to their stride and return ``{"flows": (B, 1, 2, H, W)}`` at the input size
(ptlflow's ``IOAdapter`` does the uint8 -> float step on the CPU; here it runs on the device).
Checkpoints by ptlflow name (``things``, ``sintel``..., downloaded into torch's hub cache
through ptlflow's own mechanism) or a local file; ``none`` for random weights (tests only).

Optional extra: ``pip install "multimodal-har[ptlflow]"``. ptlflow depends on opencv-python,
which must not share an environment with the ``opencv`` extra's opencv-contrib-python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .flow_base import BatchedFlowConfig, BatchedFlowExtractor


@dataclass
class PtlflowConfig(BatchedFlowConfig):
    """Attributes:
        model: a ptlflow model name (``python -c "import ptlflow; print(ptlflow.get_model_names())"``).
        weights: a ptlflow checkpoint name of that model, a checkpoint file, or ``none``.
    (``batch_frames``, ``precision``, ``device``: see ``BatchedFlowConfig``.)
    """

    model: str = "raft"
    weights: Optional[str] = "things"
    batch_frames: int = 32
    precision: str = "fp32"  # not every ptlflow model is tested under autocast


def _import_ptlflow():
    try:
        import ptlflow
    except ImportError:
        raise ImportError('the "ptlflow" flow backend needs ptlflow: pip install "multimodal-har[ptlflow]" '
                          "(in an environment without the `opencv` extra)") from None
    return ptlflow


def load_ptlflow(model: str, weights: Optional[str]):
    """A ptlflow model in eval mode; offline failures say how to pass a file."""
    from pathlib import Path

    from multimodal_har.flow.raft import WeightsUnavailable

    ptlflow = _import_ptlflow()
    names = ptlflow.get_model_names()
    if model not in names:
        raise ValueError(f"unknown ptlflow model {model!r}; choices: {', '.join(sorted(names))}")
    if weights is None or str(weights).lower() == "none":
        return ptlflow.get_model(model).eval()
    ref = ptlflow.get_model_reference(model)
    known = getattr(ref, "pretrained_checkpoints", {}) or {}
    if not Path(weights).exists() and weights not in known:
        raise ValueError(f"unknown checkpoint {weights!r} for ptlflow {model}; choices: "
                         f"{', '.join(known) or 'none published'}, a file path, or none")
    try:
        return ptlflow.get_model(model, ckpt_path=str(weights)).eval()
    except OSError as e:  # URLError and socket errors: offline
        import torch

        url = known.get(weights, "")
        raise WeightsUnavailable(
            f"could not download ptlflow {model} checkpoint {weights!r} ({type(e).__name__}: {e}).\n"
            f"On a machine with internet, download {url}\n"
            f"then copy it to {Path(torch.hub.get_dir()) / 'checkpoints' / Path(url).name} (used "
            f"automatically), or pass the file: --weights /path/to/{Path(url).name}"
        ) from None


class PtlflowExtractor(BatchedFlowExtractor):
    name = "ptlflow"
    config_class = PtlflowConfig

    def setup(self, threads: int = 0) -> None:
        """Load the model (fails here, before any video, if the checkpoint cannot be had)."""
        if self._net is None:
            self._net = load_ptlflow(self.config.model, self.config.weights).to(self.device)

    def run_batch(self, frames_u8, first, second):
        import torch

        self.setup()
        dev, cfg = self.device, self.config
        with torch.inference_mode():
            x = frames_u8.permute(0, 3, 1, 2).float().div_(255.0).flip(1)  # RGB -> BGR, [0, 1]
            images = torch.stack((x.index_select(0, first), x.index_select(0, second)), dim=1)
            amp = dev.type == "cuda" and cfg.precision != "fp32"
            dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
            with torch.autocast(dev.type, dtype=dtype, enabled=amp):
                flows = self._net({"images": images})["flows"]
            return flows[:, 0].float()
