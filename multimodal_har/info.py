"""``mhar info``: versions, devices, and which optional backends can run here (and why not)."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Callable, Optional

from . import __version__

PACKAGES = ("torch", "torchvision", "torch_geometric", "numpy", "av", "h5py", "librosa", "soxr",
            "PIL", "cv2", "yaml", "tqdm")


def _version(module: str) -> str:
    try:
        m = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - report any import failure as text
        return f"not importable ({type(e).__name__}: {e})"
    return str(getattr(m, "__version__", getattr(m, "VERSION", "?")))


def _check_mmpose() -> Optional[str]:
    importlib.import_module("mmpose")
    importlib.import_module("mmcv._ext")  # mmcv-lite lacks the ops mmpose.apis needs
    importlib.import_module("mmpose.apis")
    return None


def _check_mediapipe() -> Optional[str]:
    mp = importlib.import_module("mediapipe")
    if not hasattr(getattr(mp, "solutions", None), "pose"):
        return (f"mediapipe {getattr(mp, '__version__', '?')} has no legacy `solutions.pose` API "
                f"with bundled weights: install mediapipe==0.10.21 (extra `mediapipe`)")
    return None


def _check_ptlflow() -> Optional[str]:
    importlib.import_module("ptlflow")
    return None


def _check_tvl1() -> Optional[str]:
    cv2 = importlib.import_module("cv2")
    if not hasattr(cv2, "optflow"):
        return ("OpenCV is installed without the contrib modules (cv2.optflow): replace it with "
                "opencv-contrib-python (extra `opencv`); never install two OpenCV distributions")
    return None


def _check_opencv() -> Optional[str]:
    importlib.import_module("cv2")
    return None


def _check_raft() -> Optional[str]:
    importlib.import_module("torchvision.models.optical_flow")
    return None


def _check_gpu_jpeg() -> Optional[str]:
    importlib.import_module("nvidia.nvimgcodec")
    from .flow.gpu_jpeg import gpu_jpeg_status

    return gpu_jpeg_status()


# name -> (what it provides, check, how to get it)
BACKENDS: dict[str, tuple[str, Callable[[], Optional[str]], str]] = {
    "raft": ("optical flow, torchvision RAFT (GPU)", _check_raft, "installed with the package"),
    "opencv": ("optical flow, DIS/Farneback (CPU)", _check_opencv, 'pip install "multimodal-har[opencv]"'),
    "ptlflow": ("optical flow, ptlflow models", _check_ptlflow,
                'pip install "multimodal-har[ptlflow]" (not beside the `opencv` extra)'),
    "tvl1": ("optical flow, TV-L1 (CPU)", _check_tvl1, 'pip install "multimodal-har[opencv]"'),
    "mediapipe": ("3D pose, MediaPipe (CPU)", _check_mediapipe, 'pip install "multimodal-har[mediapipe]"'),
    "mmpose": ("3D pose, mmpose (GPU)", _check_mmpose, "bash scripts/install_mmpose.sh (builds mmcv from source)"),
    "gpu-jpeg": ("flow JPEG encoding on the GPU, nvImageCodec", _check_gpu_jpeg,
                 'pip install "multimodal-har[gpu-jpeg-cu13]" (gpu-jpeg-cu12 for a CUDA 12 torch)'),
}


def backend_status(name: str) -> tuple[bool, str]:
    """(available, reason). The reason says what failed and how to install it."""
    what, check, how = BACKENDS[name]
    try:
        reason = check()
    except Exception as e:  # noqa: BLE001 - any failure means unavailable; say which
        return False, f"{type(e).__name__}: {e}; {how}"
    return (reason is None), (reason or "ok")


def devices() -> list[str]:
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return [f"torch not importable: {e}"]
    out = [f"cpu: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append(f"cuda:{i}: {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}")
    else:
        build = torch.version.cuda
        out.append(f"cuda: not available (torch built for CUDA {build}; no driver or GPU seen)"
                   if build else "cuda: not available (CPU-only torch build)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps: available")
    return out


def report() -> str:
    lines = [f"multimodal-har {__version__}",
             f"python {platform.python_version()} ({sys.platform}, {platform.machine()})", "", "packages:"]
    for p in PACKAGES:
        lines.append(f"  {p:16s} {_version(p)}")
    try:
        import av

        lines.append(f"  {'ffmpeg (PyAV)':16s} libavcodec {av.library_versions.get('libavcodec')}")
    except Exception:  # noqa: BLE001
        pass
    lines += ["", "devices:"] + [f"  {d}" for d in devices()]
    lines += ["", "optional backends:"]
    for name, (what, _, _) in BACKENDS.items():
        ok, reason = backend_status(name)
        lines.append(f"  {name:10s} {'yes' if ok else 'no ':3s}  {what}" + ("" if ok else f"\n{'':16s}{reason}"))
    return "\n".join(lines)
