"""Greyscale JPEG encoding on the GPU (nvJPEG through NVIDIA's nvImageCodec), for flow stores.

The ``jpeg`` flow format stores one greyscale JPEG per component and pair (TSN's layout, see
``multimodal_har.flow.codec``). On the CPU, libjpeg encoding of those images bounds a fast GPU
flow model (``benchmarks/README.md``); ``torchvision.io.encode_jpeg`` encodes on CUDA but only
3-channel images. nvImageCodec's nvJPEG backend encodes 1-channel images (``CSS_GRAY``) from
device memory, so the quantised flow never leaves the GPU and only the JPEG bytes cross to the
host.

Opt-in (``jpeg_encoder="gpu"``; the default is ``cpu``) and optional:
``pip install "multimodal-har[gpu-jpeg-cu13]"`` (or ``-cu12``, matching the CUDA of your torch
build); ``mhar info`` reports whether it works here. The stored entries are the same format
either way (baseline greyscale JPEGs, decoded by the same readers).

Measured (``benchmarks/README.md``, H100, nvImageCodec 0.9.0): its only JPEG encoder there is
the hybrid one (``HYBRID_CPU_GPU``: nvJPEG's hybrid encoder, part of the work on the host),
which encoded 4,895 greyscale flow images/s in one call against 7,233 for libjpeg in 8
threads, with the same error (EPE 0.0876 vs 0.0878 px), and the one end-to-end benchmark run
with it stopped when a decoding process was terminated (not diagnosed); so it is not the default.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np

ENCODERS = ("cpu", "gpu")

_INSTALL = ('pip install "multimodal-har[gpu-jpeg-cu13]" (or gpu-jpeg-cu12 for a CUDA 12 build of torch: '
            "nvImageCodec and the nvJPEG library)")


def _import_nvimgcodec():
    try:
        from nvidia import nvimgcodec
    except ImportError as e:
        raise ImportError(f"GPU JPEG encoding needs nvImageCodec ({e}): {_INSTALL}") from None
    return nvimgcodec


def gpu_jpeg_status() -> Optional[str]:
    """``None`` if greyscale JPEG encoding on the GPU works here, else why not (``mhar info``)."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        resolve_encoder("gpu", torch.device("cuda", torch.cuda.current_device()), quality=90)
    except RuntimeError as e:
        return str(e)
    return None


class GpuJpegEncoder:
    """Encodes batches of ``(H, W)`` uint8 images on a CUDA device into baseline greyscale JPEGs.

    Args:
        quality: libjpeg-style quality 1..100 (the ``jpeg_quality`` of the flow config).
        device: the CUDA device holding the images.

    One nvImageCodec encoder per calling thread (its state is not shared between threads).
    """

    def __init__(self, *, quality: int, device: Any) -> None:
        self.nv = _import_nvimgcodec()
        self.quality, self.device = int(quality), device
        nv = self.nv
        self.params = nv.EncodeParams(quality_type=nv.QualityType.QUALITY, quality_value=float(quality),
                                      color_spec=nv.ColorSpec.GRAY, chroma_subsampling=nv.ChromaSubsampling.CSS_GRAY)
        self._local = threading.local()
        self.backend: Optional[str] = None  # the nvImageCodec backend kind in use, once encoding

    def _encoder(self):
        enc = getattr(self._local, "enc", None)
        if enc is None:
            nv, errors = self.nv, []
            for kind in ("GPU_ONLY", "HYBRID_CPU_GPU", "HW_GPU_ONLY"):  # never the CPU-only backends
                try:
                    enc = nv.Encoder(device_id=self.device.index or 0, backends=[nv.Backend(getattr(nv, kind))])
                except RuntimeError as e:
                    errors.append(f"{kind}: {e}")
                    continue
                self.backend = kind
                break
            if enc is None:
                raise RuntimeError("nvImageCodec has no GPU JPEG encoder here (" + "; ".join(errors) + ")")
            self._local.enc = enc
        return enc

    def _stream(self):
        import torch

        st = getattr(self._local, "stream", None)
        if st is None:
            st = self._local.stream = torch.cuda.Stream(self.device)
        return st

    def encode(self, images: Any, *, ready: Any = None) -> list[np.ndarray]:
        """``(N, H, W)`` uint8 CUDA tensor -> ``N`` JPEGs as uint8 arrays (what ``FlowWriter`` stores).

        Encodes on the calling thread's own CUDA stream, after ``ready`` (a ``torch.cuda.Event``
        recorded after the work that made ``images``), or else after the current stream's work;
        returns when the bytes are on the host.

        Raises:
            RuntimeError: nvImageCodec could not encode an image (the message says which).
        """
        import torch

        if images.dtype != torch.uint8 or images.dim() != 3 or images.device.type != "cuda":
            raise ValueError(f"expected an (N, H, W) uint8 CUDA tensor, got {tuple(images.shape)} "
                             f"{images.dtype} on {images.device}")
        if images.shape[0] == 0:
            return []
        nv, st = self.nv, self._stream()
        if ready is not None:
            st.wait_event(ready)
        else:
            st.wait_stream(torch.cuda.current_stream(images.device))
        with torch.cuda.stream(st):
            images = images.contiguous()
            imgs = nv.as_images([images[i] for i in range(images.shape[0])], st.cuda_stream,
                                sample_format=nv.SampleFormat.I_Y)
            streams = self._encoder().encode(imgs, "jpeg", params=self.params, cuda_stream=st.cuda_stream)
        out = []
        for k, cs in enumerate(streams):
            if cs is None:
                raise RuntimeError(f"nvImageCodec could not encode image {k} of {len(streams)} "
                                   f"({tuple(images.shape[1:])} uint8) as greyscale JPEG")
            out.append(np.frombuffer(memoryview(cs), dtype=np.uint8).copy())
        images.record_stream(st)  # freed memory waits for this stream, should the encoder still read it
        return out


def resolve_encoder(name: str, device: Any, *, quality: int) -> Optional[GpuJpegEncoder]:
    """The encoder a ``jpeg_encoder`` setting asks for: ``cpu`` -> ``None`` (libjpeg in threads);
    ``gpu`` -> a :class:`GpuJpegEncoder`, checked on a test image (raises, saying why, if it
    cannot run here)."""
    if name not in ENCODERS:
        raise ValueError(f"jpeg_encoder must be one of {ENCODERS}, got {name!r}")
    if name == "cpu":
        return None
    if getattr(device, "type", "cpu") != "cuda":
        raise ValueError(f"jpeg_encoder='gpu' needs a CUDA device, the extractor runs on {device}")
    import torch

    try:
        enc = GpuJpegEncoder(quality=quality, device=device)
        out = enc.encode(torch.zeros((1, 16, 16), dtype=torch.uint8, device=device))  # a test image
        if len(out) != 1 or bytes(out[0][:2]) != b"\xff\xd8":
            raise RuntimeError("nvImageCodec returned no JPEG for a test image")
    except Exception as e:
        raise RuntimeError(f"jpeg_encoder='gpu': {type(e).__name__}: {e}; {_INSTALL}") from e
    return enc


def encode_pairs(encoder: GpuJpegEncoder, q: Any, *, ready: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(P, 2, H, W)`` quantised uint8 flow on the GPU (contiguous) -> ``P`` rows
    ``(flow_x JPEG, flow_y JPEG)``; ``ready``: see :meth:`GpuJpegEncoder.encode`."""
    P = int(q.shape[0])
    flat = encoder.encode(q.reshape(P * 2, *q.shape[2:]), ready=ready)
    return [(flat[2 * k], flat[2 * k + 1]) for k in range(P)]
