import subprocess
import sys

import pytest

from multimodal_har.cli import main
from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS


def test_info_reports_versions_devices_and_backends():
    out = subprocess.run([sys.executable, "-m", "multimodal_har.cli", "info"], capture_output=True,
                         text=True, check=True).stdout
    for needle in ("multimodal-har", "torch", "devices:", "cpu:", "optional backends:", "raft", "mediapipe", "mmpose"):
        assert needle in out
    # an unavailable backend says why and how to get it
    for line in out.splitlines():
        if line.strip().startswith("mediapipe") and " no " in line:
            assert "pip install" in out


def test_extract_rgb_and_audio_on_a_class_folder(small_videos, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["extract", "rgb", "--videos", str(small_videos), "--store", str(store), "--workers", "2",
                 "--short-side", "96", "--fps", "4", "--no-progress"]) == 0
    assert main(["extract", "audio", "--videos", str(small_videos), "--store", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rgb [" in out and "3 extracted" in out and "2 without this modality" in out
    m = FeatureStore(store).manifest
    assert {v["id"]: v["label"] for v in m.videos()} == {
        "taichi/tai_chi": "taichi", "lifting/clean_and_jerk": "lifting",
        "makeup/apply_eye_makeup_with_audio": "makeup"}
    assert m.counts() == {"rgb": {"ok": 3}, "audio": {"ok": 1, "missing": 2}}
    with FeatureStore(store).open("taichi/tai_chi", "rgb") as f:
        assert f.attrs["height"] == 96 and 38 <= f.attrs["num_frames"] <= 42  # 10 s at 4 fps
    assert main(["manifest", str(store), "--csv", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == 4


def test_yaml_config_and_its_errors(small_videos, tmp_path, capsys):
    cfg = tmp_path / "rgb.yaml"
    cfg.write_text("short_side: 64\nmax_frames: 3\n")
    store = tmp_path / "s"
    assert main(["extract", "rgb", "--videos", str(small_videos), "--store", str(store), "--config", str(cfg),
                 "--jpeg-quality", "75", "--no-progress"]) == 0
    with FeatureStore(store).open("taichi/tai_chi", "rgb") as f:
        assert f.attrs["num_frames"] == 3 and '"jpeg_quality": 75' in f.attrs["config_json"]
    cfg.write_text("short_side: 64\nshortside: 3\n")
    assert main(["extract", "rgb", "--videos", str(small_videos), "--store", str(store), "--config", str(cfg)]) == 2
    assert "unknown key(s) ['shortside']" in capsys.readouterr().err


def test_strict_exit_status(small_videos, tmp_path):
    (small_videos / "taichi" / "broken.mp4").write_bytes(b"\x00" * 1000)
    args = ["extract", "rgb", "--videos", str(small_videos), "--store", str(tmp_path / "s"),
            "--max-frames", "2", "--no-progress"]
    assert main(args) == 0  # failures are reported, the folder is processed
    assert main(args + ["--strict"]) == 1


def test_extract_flow_alias(tmp_path, capsys):
    root = tmp_path / "v"
    root.mkdir()
    (root / "tai_chi.mp4").symlink_to(VIDEOS / "tai_chi.mp4")
    pytest.importorskip("cv2")
    rc = main(["extract", "flow", "--backend", "dis", "--videos", str(root), "--store", str(tmp_path / "s"),
               "--max-frames", "4", "--short-side", "64", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "flow [" in out and "1 extracted" in out and "pairs/s" in out
    with pytest.raises(SystemExit, match="choices: raft, ptlflow, tvl1, dis, farneback"):
        main(["extract", "flow", "--backend", "nope", "--videos", str(root), "--store", str(tmp_path / "s")])


@pytest.mark.parametrize("flag,value,message", [
    ("--short-side", "abc", "argument --short-side: expected an integer or none, got 'abc'"),
    ("--stride", "2.5", "argument --stride: expected an integer, got '2.5'"),
    ("--max-frames", "2.5", "argument --max-frames: expected an integer or none, got '2.5'"),
    ("--fps", "fast", "argument --fps: expected a number or none, got 'fast'"),
    ("--fps", "nan", "argument --fps: expected a number or none, got 'nan'"),
    ("--fps", "0", "argument --fps: fps must be > 0, got 0.0"),
    ("--short-side", "4", "argument --short-side: short_side must be >= 8 or None, got 4"),
    ("--jpeg-quality", "0", "argument --jpeg-quality: jpeg_quality must be in 1..100, got 0"),
])
def test_a_bad_flag_is_refused_by_name_before_any_video(tmp_path, capsys, flag, value, message):
    root = tmp_path / "v"
    root.mkdir()
    (root / "tai_chi.mp4").symlink_to(VIDEOS / "tai_chi.mp4")
    store = tmp_path / "s"
    try:
        rc = main(["extract", "rgb", "--videos", str(root), "--store", str(store), "--no-progress", flag, value])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not store.exists()  # no video was marked corrupt for a typo


def test_numeric_flags_in_any_spelling(tmp_path, capsys):
    root = tmp_path / "v"
    root.mkdir()
    (root / "tai_chi.mp4").symlink_to(VIDEOS / "tai_chi.mp4")
    store = tmp_path / "s"
    args = ["extract", "rgb", "--videos", str(root), "--store", str(store), "--no-progress", "--short-side", "32"]
    assert main(args + ["--fps", "1e-1"]) == 0
    with FeatureStore(store).open("tai_chi", "rgb") as f:
        assert '"fps": 0.1' in f.attrs["config_json"] and f.attrs["num_frames"] == 1  # 10 s at 0.1 fps
    assert main(args + ["--fps", "4"]) == 0
    assert main(args + ["--fps", "4.0"]) == 0  # the same config: nothing to redo
    out = capsys.readouterr().out
    assert "1 extracted" in out and "0 extracted, 1 already done" in out
