"""collate / finish_batch: uint8 frames with per-sample scale and offset, normalised where the batch is."""

import numpy as np
import pytest
import torch

from multimodal_har.data.batch import apply_affine, collate, finish_batch
from multimodal_har.engine import to_device


def sample(i, frames, *, uint8):
    """One rgb-like input of ``frames`` steps, (T, 3, 4, 4); uint8 with an affine or float32."""
    rng = np.random.default_rng(i)
    q = rng.integers(0, 256, size=(frames, 3, 4, 4), dtype=np.uint8)
    scale, offset = rng.uniform(0.5, 2.0, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    smp = {"id": f"v{i}", "label": i, "start": 0.0, "stop": 1.0}
    if uint8:
        return {**smp, "inputs": {"rgb": {"x": q}}, "affine": {"rgb": {"x": (scale, offset)}}}, apply_affine(q, scale, offset)
    return {**smp, "inputs": {"rgb": {"x": apply_affine(q, scale, offset)}}}, apply_affine(q, scale, offset)


def test_uint8_batch_finishes_to_the_float_values_and_padding_stays_zero():
    pairs = [sample(0, 3, uint8=True), sample(1, 2, uint8=True), ({"id": "v2", "label": 2, "start": 0.0,
                                                                  "stop": 1.0, "inputs": {}}, None)]
    batch = collate([s for s, _ in pairs], ["rgb"])
    x = batch["inputs"]["rgb"]["x"]
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 3, 4, 4)
    assert batch["affine"]["rgb"]["x"][0].shape == (3, 3)
    out = finish_batch(batch)["inputs"]["rgb"]["x"]
    assert out.dtype == torch.float32 and "affine" not in batch
    np.testing.assert_allclose(out[0].numpy(), pairs[0][1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1, :2].numpy(), pairs[1][1], rtol=1e-6, atol=1e-6)
    assert (out[1, 2] == 0).all() and (out[2] == 0).all()  # padded step, missing sample
    assert batch["present"][:, 0].tolist() == [True, True, False]


def test_uint8_and_float_samples_in_one_batch_are_finished_on_the_cpu():
    pairs = [sample(0, 2, uint8=True), sample(1, 2, uint8=False)]
    batch = collate([s for s, _ in pairs], ["rgb"])
    assert "affine" not in batch and batch["inputs"]["rgb"]["x"].dtype == torch.float32
    for i, (_, want) in enumerate(pairs):
        np.testing.assert_allclose(batch["inputs"]["rgb"]["x"][i].numpy(), want, rtol=1e-6, atol=1e-6)


def test_to_device_finishes_and_leaves_the_batch_given_as_it_was():
    batch = collate([sample(i, 2, uint8=True)[0] for i in range(2)], ["rgb"])
    out = to_device(batch, torch.device("cpu"))
    assert out["inputs"]["rgb"]["x"].dtype == torch.float32 and "affine" not in out
    assert batch["inputs"]["rgb"]["x"].dtype == torch.uint8 and "affine" in batch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_finishing_on_the_gpu_equals_the_cpu():
    batch = collate([sample(i, 3 - i, uint8=True)[0] for i in range(3)], ["rgb"])
    cpu = to_device(batch, torch.device("cpu"))["inputs"]["rgb"]["x"]
    gpu = to_device(batch, torch.device("cuda"))["inputs"]["rgb"]["x"]
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-6)
