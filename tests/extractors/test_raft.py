"""The batched RAFT pipeline on the CPU (small model, saved random weights): the stored flow is
torchvision's flow of the decoded frame pairs, in order, x then y, for dense and sparse plans,
across batches that mix videos; bad videos are reported; a dead decoder loses one video."""

import os

import numpy as np
import pytest
import torch

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.raft import RAFTExtractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from multimodal_har.data.video import iter_frames
from multimodal_har.flow.codec import read_flow
from multimodal_har.flow.raft import WeightsUnavailable, crop_flow, load_raft, pad_to_raft, prepare_frames
from tests.conftest import VIDEOS, make_broken_videos

NAMES = ["tai_chi.mp4", "apply_eye_makeup_with_audio.avi", "demo_skeleton.mp4"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "raft_small_random.pth"
    torch.save(load_raft("raft_small", None).state_dict(), path)
    return path


def _folder(tmp_path, names=NAMES):
    root = tmp_path / "v"
    root.mkdir()
    for n in names:
        (root / n).symlink_to(VIDEOS / n)
    return root


def _reference(weights, path, positions, short_side=128, max_frames=None, updates=3):
    """One plain torchvision call per pair on frames decoded independently of the pipeline."""
    net = load_raft("raft_small", str(weights))
    frames = [f for f in iter_frames(path, short_side=short_side, max_frames=max_frames)]
    out = []
    with torch.inference_mode():
        for k in positions:
            pair = torch.from_numpy(np.stack([frames[k].image, frames[k + 1].image]))
            pad = pad_to_raft(*pair.shape[1:3])
            x = prepare_frames(pair, pad)
            out.append(crop_flow(net(x[:1], x[1:], num_flow_updates=updates)[-1], pad)[0].numpy())
    return np.stack(out), [(frames[k].index, frames[k + 1].index) for k in positions]


def _config(weights, **kw):
    base = dict(model="raft_small", weights=str(weights), short_side=128, updates=3, format="float16",
                batch_frames=5, precision="fp32", compile="none")
    return {**base, **kw}


def test_dense_flow_equals_per_pair_torchvision(tmp_path, weights):
    root = _folder(tmp_path)
    ex = build_extractor("raft", _config(weights, max_frames=7))
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert s.done == 3 and s.items == 18 and not s.failed, s.format()
    store = FeatureStore(tmp_path / "s")
    for name in NAMES:
        vid = name.rsplit(".", 1)[0]
        with store.open(vid, "flow") as f:
            got, pairs = read_flow(f), f["pairs"][:].tolist()
        ref, ref_pairs = _reference(weights, root / name, range(6), max_frames=7)
        assert pairs == [list(p) for p in ref_pairs]  # order, no off-by-one
        err = np.abs(got - ref)
        assert err.max() < 0.01 + 2e-3 * np.abs(ref).max(), (vid, err.max())  # float16 storage
        # sensitivity: a pair shifted by one, or x/y swapped, would be far off
        assert np.abs(got[1:] - ref[:-1]).mean() > 20 * err.mean()
        assert np.abs(got - ref[:, ::-1]).mean() > 20 * err.mean()


def test_sparse_pairs_and_jpeg_storage(tmp_path, weights):
    root = _folder(tmp_path, ["tai_chi.mp4"])
    ex = build_extractor("raft", _config(weights, segments=3, snippet_length=2, format="jpeg", batch_frames=4))
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=1, progress=False)
    assert s.done == 1 and s.items == 6
    with FeatureStore(tmp_path / "s").open("tai_chi", "flow") as f:
        got, pairs = read_flow(f), f["pairs"][:]
        n_kept = int(f.attrs["source_num_frames"])
    from multimodal_har.flow.pairs import tsn_runs

    positions = [k for s_, e in tsn_runs(n_kept, 3, 2) for k in range(s_, e - 1)]
    ref, ref_pairs = _reference(weights, root / "tai_chi.mp4", positions)
    assert pairs.tolist() == [list(p) for p in ref_pairs]
    clipped = np.clip(ref, -20, 20)
    assert np.abs(got - clipped).mean() < 0.15  # JPEG q95 of TSN-quantised flow


def test_per_video_path_equals_the_pipeline(tmp_path, weights):
    root = _folder(tmp_path, ["apply_eye_makeup_with_audio.avi"])
    ex = build_extractor("raft", _config(weights, max_frames=6))
    run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=1, progress=False)
    with FeatureStore(tmp_path / "s").open("apply_eye_makeup_with_audio", "flow") as f:
        got = read_flow(f)
    frames = np.stack([f.image for f in iter_frames(root / "apply_eye_makeup_with_audio.avi", short_side=128,
                                                    max_frames=6)])
    direct = ex.flow_chunk(frames)
    np.testing.assert_allclose(got, direct, atol=0.01 + 2e-3 * np.abs(direct).max())


def test_bad_videos_are_reported_and_the_rest_is_done(tmp_path, weights):
    root = _folder(tmp_path, ["tai_chi.mp4", "demo_skeleton.mp4"])
    broken = make_broken_videos(root)
    ex = build_extractor("raft", _config(weights, max_frames=4))
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert s.done == 2 and sorted(v for v, _ in s.failed) == sorted(broken), s.format()
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []
    again = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert again.skipped == 2 and again.done == 0


class CrashingRAFT(RAFTExtractor):
    """The decoding process dies on one video, as a segfaulting decoder would."""

    def iter_chunks(self, path, info, *, chunk, threads=0):
        for i, ch in enumerate(super().iter_chunks(path, info, chunk=chunk, threads=threads)):
            if "tai_chi" in str(path):
                os._exit(11)
            yield ch


def test_a_dying_decoder_fails_only_its_video(tmp_path, weights):
    root = _folder(tmp_path, ["tai_chi.mp4", "clean_and_jerk.mp4", "cleaning_pool.mp4", "arm_wrestling.mp4"])
    ex = CrashingRAFT(config=build_extractor("raft", _config(weights, max_frames=8, batch_frames=4)).config)
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert [v for v, _ in s.failed] == ["tai_chi"] and "process died" in s.failed[0][1], s.format()
    assert s.done == 3
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []


def test_offline_weights_fail_before_any_video(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    root = _folder(tmp_path, ["tai_chi.mp4"])
    ex = build_extractor("raft", model="raft_small")
    with pytest.raises(WeightsUnavailable, match="--weights"):
        run_extraction(ex, videos_root=root, store=tmp_path / "s", progress=False)
    assert FeatureStore(tmp_path / "s").manifest.entries("flow") == []


# ------------------------------------------------------------------------------------ GPU
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("mode", ["fp32-eager", "bf16-compiled"])
def test_gpu_pipeline_against_plain_fp32_calls(tmp_path, mode):
    """The fast pipeline (batched across videos, padded, bf16, CUDA graphs) vs one plain fp32
    torchvision call per pair on the GPU, same weights: mean end-point difference, printed."""
    torch.manual_seed(0)
    wpath = tmp_path / "raft_large.pth"
    torch.save(load_raft("raft_large", None).state_dict(), wpath)
    names = ["tai_chi.mp4", "chaplin_with_audio.mp4", "demo_skeleton.mp4"]  # 256x341 and 256x455
    root = _folder(tmp_path, names)
    kw = dict(precision="fp32", compile="none") if mode == "fp32-eager" else dict(precision="bf16",
                                                                                   compile="reduce-overhead")
    ex = build_extractor("raft", model="raft_large", weights=str(wpath), short_side=256, max_frames=13,
                         batch_frames=8, format="float16", **kw)
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", progress=False, workers=2)
    assert s.done == 3 and s.items == 36, s.format()
    net = load_raft("raft_large", str(wpath)).cuda()
    store = FeatureStore(tmp_path / "s")
    for name in names:
        with store.open(name.rsplit(".", 1)[0], "flow") as f:
            got = torch.from_numpy(read_flow(f)).cuda()
        frames = [fr.image for fr in iter_frames(root / name, short_side=256, max_frames=13)]
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(frames)).cuda()
            pad = pad_to_raft(*x.shape[1:3])
            xs = prepare_frames(x, pad)
            ref = torch.cat([crop_flow(net(xs[k:k + 1], xs[k + 1:k + 2])[-1], pad) for k in range(12)])
        epe = (got - ref).norm(dim=1).mean().item()
        mag = ref.norm(dim=1).mean().item()
        shifted = (got[1:] - ref[:-1]).norm(dim=1).mean().item()
        print(f"{mode} {name}: mean EPE vs plain fp32 {epe:.4f} px, mean |flow| {mag:.3f} px, "
              f"off-by-one pairing would give {shifted:.3f} px")
        if mode == "fp32-eager":  # exact up to float16 storage; a pairing error would show
            assert epe < 1e-3 * mag and shifted > 5 * epe
        else:  # bf16 differs by ~1% of the magnitude (H100: 0.047 px of 3.96 px)
            assert epe < 0.05 * mag


def test_kill_9_mid_run_then_resume(tmp_path, weights):
    """Kill the batched pipeline (main process, decoders, writer thread) mid-run: what was
    renamed into place is whole, the rerun finishes the rest and leaves no temporary file."""
    import signal
    import subprocess
    import sys
    import time

    import h5py

    root = tmp_path / "v"
    for label in ("a", "b", "c"):
        (root / label).mkdir(parents=True)
        for name in sorted(p.name for p in VIDEOS.iterdir()):
            (root / label / name).symlink_to(VIDEOS / name)
    store_root = tmp_path / "s"
    cmd = [sys.executable, "-m", "multimodal_har.cli", "extract", "raft", "--videos", str(root), "--store",
           str(store_root), "--workers", "2", "--no-progress", "--model", "raft_small", "--weights", str(weights),
           "--short-side", "128", "--max-frames", "6", "--updates", "3", "--compile", "none",
           "--precision", "fp32", "--batch-frames", "8"]
    finals = lambda: [p for p in store_root.rglob("*.h5") if ".tmp" not in p.parts]  # noqa: E731
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(finals()) < 3:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    before = finals()
    assert 3 <= len(before) < 21, "the kill should land mid-run"
    for f in before:
        with h5py.File(f, "r") as h:
            assert h["pairs"].shape[0] == h.attrs["num_pairs"] == 5
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    store = FeatureStore(store_root)
    assert store.manifest.counts() == {"flow": {"ok": 21}} and len(finals()) == 21
    assert list(store.tmp_dir.iterdir()) == []
    done_now = int(out.stdout.split(" extracted")[0].rsplit(" ", 1)[-1])
    assert done_now <= 21 - len(before)
