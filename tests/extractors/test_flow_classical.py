"""TV-L1, DIS and Farneback: known answers on real frames, and extraction over real videos."""

import numpy as np
import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from multimodal_har.data.video import iter_frames
from multimodal_har.flow.codec import read_flow
from multimodal_har.flow.synthetic import epe, similarity, translation, warp_pair
from tests.conftest import VIDEOS, make_broken_videos

cv2 = pytest.importorskip("cv2")

# Measured on this frame (benchmarks/README.md): TV-L1 <= 0.10, DIS <= 0.17, Farneback <= 1.45 px.
BOUNDS = {"tvl1": (0.15, 0.2), "dis": (0.2, 0.3), "farneback": (1.0, 2.0)}  # (translations, affine)


@pytest.fixture(scope="module")
def frame():
    return next(iter_frames(VIDEOS / "apply_eye_makeup_with_audio.avi", short_side=256)).image


@pytest.mark.parametrize("backend", ["tvl1", "dis", "farneback"])
def test_known_shifts_and_affine_warp(frame, backend):
    ex = build_extractor(backend)
    h, w = frame.shape[:2]
    cases = {"integer (3, -2)": (translation(3, -2), 0), "sub-pixel (1.5, 0.25)": (translation(1.5, 0.25), 0),
             "sub-pixel (0.3, -0.6)": (translation(0.3, -0.6), 0),
             "rotation 2 deg, scale 1.03": (similarity(2.0, 1.03, 1.0, -0.5, (w / 2, h / 2)), 1)}
    for name, (a, kind) in cases.items():
        first, second, truth = warp_pair(frame, a)
        flow = ex.flow_chunk(np.stack([first, second]))[0]
        err = epe(flow, truth, margin=16)
        assert err < BOUNDS[backend][kind], f"{backend} {name}: EPE {err:.3f} px"
    # direction and sign: a shift right and up is +x, -y
    first, second, _ = warp_pair(frame, translation(3, -2))
    med = np.median(ex.flow_chunk(np.stack([first, second]))[0][:, 16:-16, 16:-16], axis=(1, 2))
    assert abs(med[0] - 3) < 0.5 and abs(med[1] + 2) < 0.5


def test_extract_dis_over_real_and_broken_videos(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    for name in ["tai_chi.mp4", "chaplin_with_audio.mp4"]:
        (root / name).symlink_to(VIDEOS / name)
    broken = make_broken_videos(root)
    one = root / "one_frame.mp4"  # a real one-frame video
    import av

    with av.open(str(one), "w") as out:
        st = out.add_stream("mpeg4", rate=25)
        st.width, st.height = 64, 48
        fr = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for pkt in list(st.encode(fr)) + list(st.encode(None)):
            out.mux(pkt)
    ex = build_extractor("dis", short_side=128, max_frames=9)
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert s.done == 2 and s.unit == "pairs" and s.items == 16
    assert sorted(v for v, _ in s.failed) == sorted(broken)
    assert [v for v, _ in s.missing] == ["one_frame"] and "no frame pair" in s.missing[0][1]
    store = FeatureStore(tmp_path / "s")
    with store.open("chaplin_with_audio", "flow") as f:
        assert f.attrs["backend"] == "dis" and f.attrs["format"] == "jpeg"
        assert f["pairs"][:].tolist() == [[k, k + 1] for k in range(8)]
        flow = read_flow(f)
    assert flow.shape == (8, 2, 128, 228) and np.isfinite(flow).all()
    # the stored (quantised, JPEG) flow is the flow of the decoded frames
    frames = np.stack([fr.image for fr in iter_frames(root / "chaplin_with_audio.mp4", short_side=128, max_frames=9)])
    direct = build_extractor("dis").flow_chunk(frames)
    assert np.abs(np.clip(direct, -20, 20) - flow).mean() < 0.15
    again = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert again.done == 0 and again.skipped == 3  # 2 ok + 1 missing are not redone


def test_sparse_tsn_pairs(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    (root / "tai_chi.mp4").symlink_to(VIDEOS / "tai_chi.mp4")
    ex = build_extractor("farneback", short_side=64, segments=3, snippet_length=2)
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=1, progress=False)
    assert s.done == 1 and s.items == 6
    with FeatureStore(tmp_path / "s").open("tai_chi", "flow") as f:
        pairs = f["pairs"][:]
        n = int(f.attrs["source_num_frames"])
        assert f.attrs["pair_mode"] == "tsn"
    assert (pairs[:, 1] - pairs[:, 0] == 1).all()
    centres = [(k + 0.5) * n / 3 for k in range(3)]
    for c, p in zip(centres, pairs[::2]):
        assert abs(p[0] + 1.5 - c) <= 1.5  # each snippet sits at its segment's centre


def test_tvl1_without_contrib_says_what_to_install(monkeypatch):
    import multimodal_har.extractors.flow_base as fb

    class NoContrib:
        __version__ = "4.x"

    monkeypatch.setitem(__import__("sys").modules, "cv2", NoContrib)
    with pytest.raises(ImportError, match=r"multimodal-har\[opencv\]"):
        fb.import_cv2("tvl1", need_contrib=True)


def test_disk_estimate_from_headers_and_from_a_sample():
    ex = build_extractor("dis", short_side=256, max_frames=11)
    paths = [VIDEOS / "tai_chi.mp4", VIDEOS / "clean_and_jerk.mp4"]
    line = ex.estimate_disk(paths)
    assert "about 20 frame pairs" in line and "GB on disk as jpeg" in line
    sampled = ex.estimate_disk(paths * 3, sample=2)  # reads 2 headers, scales to 6 videos
    assert "about 60 frame pairs" in sampled and "from 2 of 6 videos" in sampled
