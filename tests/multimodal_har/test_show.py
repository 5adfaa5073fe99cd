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
