"""Dataset importers on real files: four UTD-MHAD samples into a store (poses, inertial, depth
videos), the depth videos through the real rgb / DIS flow extractors with ``--as``, the result
read by StoreDataset; MSR Action3D, UTKinect, NTU and PYSKL through the registry; the CLI."""

import shutil

import numpy as np
import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.rgb import RGBExtractor, read_rgb
from multimodal_har.cli import main
from multimodal_har.data.dataset import DataConfig, StoreDataset
from multimodal_har.data.importers import IMPORTERS, depth_to_gray, import_dataset
from multimodal_har.data.store import FeatureStore
from multimodal_har.skeleton.utd_mhad import read_utd_mhad
from tests.conftest import SHARED

UTD = SHARED / "utd_mhad_train"
MSR = SHARED / "skeleton" / "msr_action3d"
UTK = SHARED / "skeleton" / "utkinect"
PICK = dict(subjects=[1], actions=["swipe_left", "jog"], trials=[1, 2])  # 4 samples, 2 classes
IDS = ["utd_mhad/a1_s1_t1", "utd_mhad/a1_s1_t2", "utd_mhad/a22_s1_t1", "utd_mhad/a22_s1_t2"]


def _has_dis() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "DISOpticalFlow_create")


@pytest.fixture(scope="module")
def utd(tmp_path_factory):
    """A store of 4 UTD samples, their depth videos, and ``mhar extract rgb/flow --as`` run on them."""
    tmp = tmp_path_factory.mktemp("utd")
    store, videos = tmp / "store", tmp / "depth_videos"
    first = import_dataset("utd_mhad", UTD, store, depth_videos=videos, **PICK)
    again = import_dataset("utd_mhad", UTD, store, depth_videos=videos, **PICK)
    common = ["--videos", str(videos), "--annotations", first["annotations"], "--store", str(store),
              "--short-side", "240", "--workers", "1", "--no-progress"]
    assert main(["extract", "rgb", *common, "--as", "depth"]) == 0
    if _has_dis():
        assert main(["extract", "flow", "--backend", "dis", *common, "--preset", "ultrafast", "--max-frames", "9",
                     "--as", "depth_flow"]) == 0
    return dict(store=FeatureStore(store), videos=videos, first=first, again=again, common=common)


def test_utd_import_summary_and_resume(utd):
    first, again = utd["first"], utd["again"]
    assert first["samples"] == 4 and first["failed"] == []
    assert first["modalities"] == {m: {"ok": 4, "skipped": 0, "failed": 0} for m in ("pose3d", "inertial", "depth")}
    assert again["modalities"] == {m: {"ok": 0, "skipped": 4, "failed": 0} for m in ("pose3d", "inertial", "depth")}
    assert sorted(p.relative_to(utd["videos"]).as_posix() for p in utd["videos"].rglob("*.mp4")) == \
        [f"{i}.mp4" for i in IDS]
    assert not [p for p in utd["videos"].rglob("*") if "tmp" in p.name]
    rows = (utd["videos"] / "annotations.csv").read_text().splitlines()
    assert rows[0] == "path,label,split" and rows[1] == "utd_mhad/a1_s1_t1.mp4,swipe_left,train" and len(rows) == 5
    assert first["next_commands"][0].startswith(f"mhar extract rgb --videos {utd['videos']} --annotations ")
    assert first["next_commands"][0].endswith("--as depth") and "--as depth_flow" in first["next_commands"][1]


def test_utd_entries_share_ids_labels_and_timeline(utd):
    store = utd["store"]
    m = store.manifest
    wanted = {"pose3d", "inertial", "depth"} | ({"depth_flow"} if _has_dis() else set())
    assert {k for k, v in m.counts().items() if v == {"ok": 4}} == wanted
    sample = next(read_utd_mhad(UTD, subjects=[1], actions=[22], trials=[2]))
    vid = "utd_mhad/a22_s1_t2"
    assert m.video(vid)["label"] == "jog" and m.video(vid)["split"] == "train"
    assert m.video(vid)["path"] == f"{vid}.mp4"  # the extract run found the video of the same id
    pose, pa = store.read(vid, "pose3d")
    imu, ia = store.read(vid, "inertial")
    T, N = len(sample.skeleton.keypoint), len(sample.inertial)
    assert pose["keypoint"].shape == (T, 1, 20, 3) and pose["score"].shape == (T, 1, 20)
    assert np.array_equal(pose["keypoint"], sample.skeleton.keypoint)
    assert pa["layout"] == "kinect_v1_20" and (pa["subject"], pa["trial"], pa["label_index"]) == (1, 2, 21)
    assert imu["data"].shape == (N, 6) and imu["data"].dtype == np.float32
    assert ia["rate_hz"] == 50 and list(ia["channels"])[0] == "acc_x" and list(ia["units"])[-1] == "deg/s"
    assert imu["timestamps"][-1] == pytest.approx((N - 1) / 50)
    with store.open(vid, "depth") as f:
        times = f["timestamps"][()]
        frames = read_rgb(f, [0, T // 2, T - 1])
        assert f.attrs["num_frames"] == T and (f.attrs["height"], f.attrs["width"]) == (240, 320)
    assert np.allclose(times, pose["timestamps"], atol=1e-9)  # frame i at i * D / T
    assert pose["timestamps"][-1] == pytest.approx(sample.duration * (T - 1) / T)
    gray = depth_to_gray(sample.load_depth()[[0, T // 2, T - 1]])
    assert (frames == frames[..., :1]).all()  # grey in all three channels
    assert np.abs(frames[..., 0].astype(int) - gray).mean() < 2  # JPEG of the lossless video's frames
    assert store.entry_attrs(vid, "depth")["modality"] == "depth" and m.entry(vid, "depth")["extractor"] == "rgb"
    if _has_dis():
        with store.open(vid, "depth_flow") as f:  # the first 8 pairs (--max-frames 9), on the same timeline
            assert f["pairs"][()].tolist() == [[i, i + 1] for i in range(8)]
            assert np.allclose(f["times"][()], times[:8], atol=1e-9)


def test_extract_as_resumes_under_the_new_name(utd, capsys):
    capsys.readouterr()
    assert main(["extract", "rgb", *utd["common"], "--as", "depth"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("depth [") and "0 extracted, 4 already done" in out
    assert not utd["store"].path(IDS[0], "rgb").exists()


def test_store_as_keeps_the_class_and_default_names():
    ex = build_extractor("rgb").store_as("depth")
    assert ex.modality == "depth" and RGBExtractor.modality == "rgb" and build_extractor("rgb").modality == "rgb"
    flow = build_extractor("farneback").store_as("depth_flow")
    assert flow.modality == flow.config.modality == "depth_flow"
    with pytest.raises(ValueError, match="single name without '/'"):
        build_extractor("rgb").store_as("a/b")


def test_extract_as_and_modality_must_agree(utd):
    with pytest.raises(SystemExit, match="--as x and --modality y disagree"):
        main(["extract", "flow", "--backend", "farneback", *utd["common"], "--as", "x", "--modality", "y"])


def test_store_dataset_reads_inertial_signal_and_poses(utd):
    cfg = DataConfig(store=str(utd["store"].root), val_fraction=0, num_workers=0, window=2.0, modalities={
        "imu": {"source": "inertial", "kind": "signal", "key": "data"},
        "pose": {"source": "pose3d", "frames": 16}})
    ds = StoreDataset(cfg, "train", train=False)
    assert len(ds) == 4 and ds.classes == ["jog", "swipe_left"]
    sample = ds[0]
    imu, pose = sample["inputs"]["imu"]["x"], sample["inputs"]["pose"]["x"]
    assert imu.shape[1] == 6 and 95 <= imu.shape[0] <= 101  # 2 s at 50 Hz
    assert pose.shape == (16, 1, 20, 3) and np.isfinite(imu).all() and np.isfinite(pose).all()


def test_bad_utd_file_is_recorded_and_named(tmp_path, capsys):
    src = tmp_path / "utd"
    for folder, suffix in (("Skeleton", "skeleton"), ("Inertial", "inertial")):
        (src / folder).mkdir(parents=True)
        for sid in ("a1_s1_t1", "a2_s1_t1"):
            shutil.copy(UTD / folder / f"{sid}_{suffix}.mat", src / folder)
    bad = src / "Skeleton" / "a2_s1_t1_skeleton.mat"
    bad.write_bytes(b"garbage")
    store = tmp_path / "store"
    rc = main(["import", "utd_mhad", str(src), str(store), "--modalities", "skeleton,inertial"])
    out = capsys.readouterr().out
    assert rc == 1 and f"FAILED pose3d utd_mhad/a2_s1_t1: {bad}: not a readable MATLAB .mat file" in out
    assert "inertial     2 ok" in out
    counts = FeatureStore(store).manifest.counts()
    assert counts == {"pose3d": {"ok": 1, "failed": 1}, "inertial": {"ok": 2}}  # its inertial file is fine
    shutil.copy(UTD / "Skeleton" / "a2_s1_t1_skeleton.mat", bad)  # fixed: the rerun retries only it
    s = import_dataset("utd_mhad", src, store, modalities="skeleton,inertial")
    assert s["modalities"]["pose3d"] == {"ok": 1, "skipped": 1, "failed": 0}
    assert s["modalities"]["inertial"] == {"ok": 0, "skipped": 2, "failed": 0}
    assert FeatureStore(store).manifest.counts() == {"pose3d": {"ok": 2}, "inertial": {"ok": 2}}


def test_cli_import_prints_summary_and_next_commands(tmp_path, capsys):
    store = tmp_path / "s"
    assert main(["import", "utd_mhad", str(UTD), str(store), "--subjects", "3", "--actions", "wave",
                 "--limit", "1", "--depth-videos", str(tmp_path / "dv")]) == 0
    out = capsys.readouterr().out
    assert "utd_mhad: 1 samples" in out and "depth        1 ok, 0 already done, 0 failed" in out
    assert f"mhar extract rgb --videos {tmp_path / 'dv'}" in out and "--as depth_flow" in out
    assert FeatureStore(store).has("utd_mhad/a3_s3_t1", "inertial")
    # a second part of the dataset into the same folder: the annotations list both parts
    assert main(["import", "utd_mhad", str(UTD), str(store), "--subjects", "5", "--actions", "3",
                 "--limit", "1", "--depth-videos", str(tmp_path / "dv"), "--modalities", "depth"]) == 0
    rows = (tmp_path / "dv" / "annotations.csv").read_text().splitlines()
    assert rows[1:] == ["utd_mhad/a3_s3_t1.mp4,wave,train", "utd_mhad/a3_s5_t1.mp4,wave,train"]


def test_msr_and_utkinect_through_the_registry(tmp_path):
    msr = tmp_path / "msr"
    msr.mkdir()
    for f in sorted(MSR.glob("a01_s0[12]_e01_skeleton3D.txt")):
        shutil.copy(f, msr)
    s = import_dataset("msr_action3d", msr, tmp_path / "store", protocol_files_only=False)
    assert s["samples"] == 2 and s["modalities"]["pose3d"]["ok"] == 2
    utk = tmp_path / "utk"
    utk.mkdir()
    labels = (UTK / "actionLabel.txt").read_text().split("s01_e02")[0]  # the first sequence only
    (utk / "actionLabel.txt").write_text(labels)
    shutil.copy(UTK / "joints_s01_e01.txt", utk)
    s = import_dataset("utkinect", utk, tmp_path / "store")
    assert s["modalities"]["pose3d"]["ok"] == 10
    m = FeatureStore(tmp_path / "store").manifest
    assert m.video("msr_action3d/a01_s02_e01")["split"] == "test" and m.video("utkinect/s01_e01_walk")["label"] == "walk"
    again = import_dataset("msr_action3d", msr, tmp_path / "store", protocol_files_only=False)
    assert again["modalities"]["pose3d"] == {"ok": 0, "skipped": 2, "failed": 0}


def test_ntu_and_pyskl_through_the_registry(tmp_path):
    from multimodal_har.skeleton.ntu import write_ntu_file
    from multimodal_har.skeleton.pyskl import write_pyskl

    seqs = list(read_utd_mhad(UTD, modalities=("skeleton",), limit=2))
    write_pyskl(tmp_path / "utd.pkl", [s.skeleton for s in seqs])
    s = import_dataset("pyskl", tmp_path / "utd.pkl", tmp_path / "store", layout="kinect_v1_20")
    assert s["dataset"] == "utd" and s["modalities"]["pose3d"]["ok"] == 2
    assert FeatureStore(tmp_path / "store").manifest.video("utd/a1_s1_t1")["split"] == "train"
    ntu = tmp_path / "ntu"
    ntu.mkdir()
    x = np.zeros((10, 1, 25, 3), np.float32)
    x[..., 2] = 3.0
    write_ntu_file(ntu / "S001C001P001R001A001.skeleton", x, np.ones((10, 1, 25), np.float32))
    s = import_dataset("ntu", ntu, tmp_path / "store")
    assert s["dataset"] == "ntu60" and s["modalities"]["pose3d"]["ok"] == 1
    s = import_dataset("ntu", ntu, tmp_path / "store")
    assert s["modalities"]["pose3d"] == {"ok": 0, "skipped": 1, "failed": 0}
    with pytest.raises(ValueError, match="needs the option"):
        import_dataset("pyskl", tmp_path / "utd.pkl", tmp_path / "store")


def test_unknown_names_and_options_list_the_choices(tmp_path, capsys):
    assert IMPORTERS.names() == ["msr_action3d", "ntu", "pyskl", "utd_mhad", "utkinect"]
    with pytest.raises(ValueError, match="unknown dataset importer 'kinetics'; valid choices: msr_action3d, ntu, "
                                         "pyskl, utd_mhad, utkinect"):
        import_dataset("kinetics", UTD, tmp_path / "s")
    with pytest.raises(ValueError, match="importer 'msr_action3d' takes no option modalities; its options: split"):
        import_dataset("msr_action3d", MSR, tmp_path / "s", modalities="skeleton")
    assert main(["import", "nope", str(UTD), str(tmp_path / "s")]) == 2
    assert "valid choices: msr_action3d" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_dataset("utd_mhad", tmp_path / "missing", tmp_path / "s")


def test_depth_video_is_lossless_and_keeps_an_odd_rate(tmp_path):
    """Known answer: 7 frames over 0.62 s (11.29... fps) of an odd-sized gradient decode exactly."""
    from multimodal_har.data.importers import write_depth_video
    from multimodal_har.data.video import iter_frames, probe

    depth = np.tile(np.linspace(0, 5000, 33, dtype=np.uint16), (7, 21, 1))  # (7, 21, 33), 0 = no reading
    depth[3, 5, 5] = 0
    p = write_depth_video(tmp_path / "d.mp4", depth, 0.62)
    assert probe(p).num_frames == 7 and [q.name for q in tmp_path.iterdir()] == ["d.mp4"]
    frames = list(iter_frames(p, short_side=None))
    assert np.allclose([f.time for f in frames], np.arange(7) * 0.62 / 7, atol=1e-9)
    image = np.stack([f.image for f in frames])[:, :21, :33]  # (T, H, W, 3) without the even-size padding
    assert np.array_equal(image[..., 0], depth_to_gray(depth)) and (image == image[..., :1]).all()
    gray = depth_to_gray(np.array([0, 1, 500, 4500, 9000], np.uint16))
    assert gray.tolist() == [0, 1, 1, 255, 255]
