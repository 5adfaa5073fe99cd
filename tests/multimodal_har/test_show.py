"""mhar show: flow colour strips above the matching RGB frames, written as a whole PNG."""

import numpy as np
import pytest
from PIL import Image

from multimodal_har.cli import main
from multimodal_har.data.store import FeatureStore
from multimodal_har.show import render
from tests.conftest import VIDEOS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    pytest.importorskip("cv2")
    tmp = tmp_path_factory.mktemp("show")
    root = tmp / "v"
    root.mkdir()
    (root / "tai_chi.mp4").symlink_to(VIDEOS / "tai_chi.mp4")
    common = ["--videos", str(root), "--store", str(tmp / "s"), "--max-frames", "8", "--short-side", "64",
              "--no-progress", "--workers", "1"]
    assert main(["extract", "rgb", *common]) == 0
    assert main(["extract", "flow", "--backend", "dis", *common]) == 0
    return FeatureStore(tmp / "s")


def test_flow_is_drawn_under_its_frames(store):
    img = render(store, "tai_chi", "flow", count=3)
    with store.open("tai_chi", "rgb") as f:
        h, w = f.attrs["height"], f.attrs["width"]
    assert img.shape == (2 * h + 4, 3 * w + 2 * 4, 3) and img.dtype == np.uint8
    flow_row = img[h + 4:]
    assert len(np.unique(flow_row.reshape(-1, 3), axis=0)) >= 5  # several directions, not a blank strip
    assert render(store, "tai_chi", "rgb", count=2).shape == (h, 2 * w + 4, 3)


def test_cli_writes_a_png_and_reports_missing_entries(store, tmp_path, capsys):
    out = tmp_path / "pics" / "t.png"
    assert main(["show", str(store.root), "tai_chi", "--out", str(out), "--count", "4"]) == 0
    assert Image.open(out).size[0] > 0 and not list(out.parent.glob(".*tmp"))
    assert main(["show", str(store.root), "nope"]) == 2
    assert "no 'flow' entry for 'nope'" in capsys.readouterr().err


def _add_pose(store, frames=8):
    """A pose entry at twice the rgb entry's size: one wrist-to-elbow bone per frame."""
    from multimodal_har.skeleton import get_layout

    L = get_layout("coco_17")
    with store.open("tai_chi", "rgb") as f:
        h, w = int(f.attrs["height"]), int(f.attrs["width"])
        idx = f["frame_indices"][:frames]
    xy = np.zeros((frames, 2, 17, 2), np.float32)
    score = np.zeros((frames, 2, 17), np.float32)
    xy[:, 0, L.index("elbow_left")] = [0.5 * w, 0.5 * h]  # pixels of a (2h, 2w) frame
    xy[:, 0, L.index("wrist_left")] = [1.5 * w, 1.5 * h]
    score[:, 0, [L.index("elbow_left"), L.index("wrist_left")]] = 1.0
    store.add("tai_chi", "pose3d", {"keypoint2d": xy, "score2d": score, "frame_indices": idx,
                                     "keypoint": np.zeros((frames, 2, 17, 3), np.float32),
                                     "score": score},
              attrs={"layout": "coco_17", "layout2d": "coco_17", "height": 2 * h, "width": 2 * w})
    return h, w


def test_pose_is_drawn_over_its_frames_scaled_to_their_size(store, tmp_path):
    h, w = _add_pose(store)
    img = render(store, "tai_chi", "pose3d", count=2)
    assert img.shape == (h, 2 * w + 4, 3)
    with store.open("tai_chi", "rgb") as f:
        from multimodal_har.extractors.rgb import read_rgb

        frame = read_rgb(f, [0])[0].astype(int)
    diff = np.abs(img[:, :w].astype(int) - frame).sum(-1) > 60  # where the bone was drawn
    ys, xs = np.nonzero(diff)
    assert len(ys) > 10
    # the bone runs from (w/4, h/4) to (3w/4, 3h/4) in the rgb frame's pixels
    assert abs(xs.mean() - w / 2) < 0.1 * w and abs(ys.mean() - h / 2) < 0.1 * h
    assert np.corrcoef(xs, ys)[0, 1] > 0.9

    import pickle

    out = tmp_path / "poses.pkl"
    assert main(["pyskl", str(store.root), str(out)]) == 0
    ann = pickle.loads(out.read_bytes())["annotations"][0]
    assert ann["keypoint"].shape == (2, 8, 17, 2) and ann["img_shape"] == (2 * h, 2 * w)
    assert ann["frame_dir"] == "tai_chi" and ann["layout"] == "coco_17"
