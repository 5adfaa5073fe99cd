"""MediaPipe 3D pose on the real videos: people found, stable bones, bad input survived.

Needs the `mediapipe` extra (mediapipe 0.10.21, numpy < 2), the README's install.
"""

import shutil

import h5py
import numpy as np
import pytest

pytest.importorskip("mediapipe")

from multimodal_har.extractors import build_extractor  # noqa: E402
from multimodal_har.extractors.runner import run_extraction  # noqa: E402
from multimodal_har.data.store import FeatureStore  # noqa: E402
from multimodal_har.skeleton import get_layout  # noqa: E402
from multimodal_har.skeleton.quality import pose_quality  # noqa: E402
from tests.conftest import VIDEOS, make_broken_videos  # noqa: E402

ONE_PERSON = ["tai_chi.mp4", "demo_skeleton.mp4", "apply_eye_makeup_with_audio.avi"]


def _black_video(path, frames=12, size=(96, 128)):
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.height, st.width = size
        st.pix_fmt = "yuv420p"
        for _ in range(frames):
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.zeros((*size, 3), np.uint8), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("mp")
    videos = root / "videos"
    videos.mkdir()
    for name in ONE_PERSON:
        shutil.copy(VIDEOS / name, videos / name)
    _black_video(videos / "nobody.mp4")
    broken = make_broken_videos(videos / "broken")
    ex = build_extractor("mediapipe", max_frames=90)
    summary = run_extraction(ex, videos_root=videos, store=root / "store", workers=2, progress=False)
    return FeatureStore(root / "store"), summary, broken


def test_people_found_and_bones_stable_on_real_videos(extracted):
    store, summary, _ = extracted
    L = get_layout("mediapipe_33")
    for name in ONE_PERSON:
        vid = name.rsplit(".", 1)[0]
        d, a = store.read(vid, "pose3d")
        T = a["num_frames"]
        assert d["keypoint"].shape == (T, 2, 33, 3) and d["score"].shape == (T, 2, 33)
        assert d["keypoint2d"].shape == (T, 2, 33, 2) and a["layout"] == a["layout2d"] == "mediapipe_33"
        with h5py.File(store.path(vid, "pose3d")) as f:  # chunked along time only: a window is one read
            assert f["keypoint"].chunks == (T, 2, 33, 3) and f["score"].chunks == (T, 2, 33)
        q = pose_quality(d["keypoint"], d["score"], L)
        # measured on these clips: 1.0 of frames, median bone CV 0.05-0.13
        assert q.person_fraction >= 0.95, (vid, q.person_fraction)
        assert q.median_bone_cv <= 0.2, (vid, q.median_bone_cv)
        assert abs(a["person_fraction"] - q.person_fraction) < 1e-9
        seen = d["score"][:, 0].max(axis=1) > 0
        # y points up: the nose is above the hips in (nearly) every frame
        x = d["keypoint"][seen, 0]
        hips = (x[:, L.index("hip_left"), 1] + x[:, L.index("hip_right"), 1]) / 2
        assert (x[:, L.index("nose"), 1] > hips + 0.1).mean() > 0.95, vid
        # 2D joints in pixels of the sampled frames (short side 256); MediaPipe also places
        # joints outside the image (a close-up's legs), with low visibility
        visible = d["score2d"][:, 0] >= 0.5
        xy = d["keypoint2d"][:, 0][visible]
        inside = (xy[:, 0] >= -5) & (xy[:, 0] <= a["width"] + 5) & (xy[:, 1] >= -5) & (xy[:, 1] <= a["height"] + 5)
        assert min(a["width"], a["height"]) == 256 and inside.mean() > 0.8, (vid, inside.mean())
        assert ((d["score"] >= 0) & (d["score"] <= 1)).all()
        assert not d["score"][:, 1].any()  # the bundled model finds one person: slot 1 stays empty


def test_frames_with_nobody_give_zeros_not_errors(extracted):
    store, summary, _ = extracted
    d, a = store.read("nobody", "pose3d")
    assert a["person_fraction"] == 0.0 and a["num_frames"] == 12
    assert not d["keypoint"].any() and not d["score"].any()


def test_broken_videos_are_reported_and_the_rest_is_done(extracted):
    store, summary, broken = extracted
    assert summary.done == len(ONE_PERSON) + 1
    failed = {vid.split("/")[-1]: msg for vid, msg in summary.failed}
    assert set(failed) == set(broken)
    for vid, what in broken.items():
        assert what in failed[vid].lower(), failed[vid]
    assert list(store.tmp_dir.iterdir()) == []  # nothing half-written


def test_config_errors():
    with pytest.raises(ValueError, match="model_complexity must be 0, 1 or 2"):
        build_extractor("mediapipe", model_complexity=3)
    with pytest.raises(ValueError, match="max_people must be >= 1"):
        build_extractor("mediapipe", max_people=0)
