"""Damaged store entries: real rgb entries of the bundled sample clips are truncated to half
their size or have bytes flipped (in HDF5 metadata, and inside a JPEG frame where nothing but the
checksum notices). ``mhar manifest --verify`` finds them against the size and SHA-256 recorded
at commit and marks them failed, a resumed extraction redoes them, and reading one (the store,
training, evaluation) raises ``DamagedEntryError`` naming the entry and its file."""

import csv
import os
import shutil
from pathlib import Path

import pytest
import yaml

from multimodal_har.cli import main
from multimodal_har.data.dataset import DataConfig, StoreDataset
from multimodal_har.data.store import DamagedEntryError, FeatureStore
from tests.multimodal_har.training_data import make_msr_store, tiny_config

SAMPLES = Path(__file__).resolve().parents[2] / "multimodal_har" / "sample_data" / "videos"
EXTRACT = ["--short-side", "32", "--fps", "2", "--workers", "1", "--no-progress"]
TRUNCATED, METADATA, SILENT = "tai_chi/tai_chi", "arm_wrestling/arm_wrestling", "cleaning_pool/cleaning_pool"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path, offset: int, n: int = 8) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The 7 sample clips, each its own class (folder), and their rgb entries."""
    tmp = tmp_path_factory.mktemp("integrity")
    videos = tmp / "videos"
    for clip in sorted(SAMPLES.iterdir()):
        (videos / clip.stem).mkdir(parents=True)
        os.symlink(clip, videos / clip.stem / clip.name)
    assert main(["extract", "rgb", "--videos", str(videos), "--store", str(tmp / "store"), *EXTRACT]) == 0
    return videos, tmp / "store"


@pytest.fixture
def damaged(pristine, tmp_path):
    """A copy of the store with one entry truncated, one with flipped bytes in its metadata (it
    opens; its frames do not), one with flipped bytes inside a JPEG frame (everything reads)."""
    videos, src = pristine
    store = FeatureStore(shutil.copytree(src, tmp_path / "store"))
    truncate(store.path(TRUNCATED, "rgb"))
    flip(store.path(METADATA, "rgb"), 100)
    silent = store.path(SILENT, "rgb")
    flip(silent, silent.stat().st_size // 2)
    return videos, store


def test_verify_marks_damaged_entries_failed_and_a_resumed_extraction_redoes_them(damaged, capsys):
    videos, store = damaged
    assert store.check_entry(SILENT, "rgb", config_hash=store.manifest.entry(SILENT, "rgb")["config_hash"]) is None
    capsys.readouterr()
    assert main(["manifest", str(store.root)]) == 0
    assert "rgb        7 ok" in capsys.readouterr().out  # the plain summary reads the manifest only

    assert main(["manifest", str(store.root), "--verify"]) == 1
    out = capsys.readouterr().out
    for vid in (TRUNCATED, METADATA, SILENT):
        assert f"DAMAGED rgb {vid} ({store.path(vid, 'rgb')}): " in out
    assert "rgb        3 failed, 4 ok" in out and "verified: 3 damaged entries marked failed" in out
    assert "29696 bytes, 59392 when it was committed (truncated or overwritten)" in out
    assert out.count("its SHA-256 differs from the one recorded when it was committed") == 2
    e = store.manifest.entry(SILENT, "rgb")
    assert e["status"] == "failed" and e["error"].startswith("damaged: its SHA-256 differs")
    with open(store.root / "manifest.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert sorted(v for v, r in rows.items() if r["rgb_error"].startswith("damaged: ")) == \
        sorted([TRUNCATED, METADATA, SILENT])
    assert rows[SILENT]["rgb_status"] == "failed" and rows[SILENT]["rgb_checksum"].startswith("sha256:")

    assert main(["extract", "rgb", "--videos", str(videos), "--store", str(store.root), *EXTRACT]) == 0
    assert "7 videos: 3 extracted, 4 already done, 0 recovered" in capsys.readouterr().out
    assert main(["manifest", str(store.root), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "rgb        7 ok" in out and "verified: 0 damaged entries" in out and "DAMAGED" not in out
    arrays, _ = store.read(TRUNCATED, "rgb")
    assert len(arrays["frames"]) == len(arrays["timestamps"]) > 0


def test_a_resumed_extraction_without_verify_redoes_what_it_can_see(damaged, capsys):
    """Planning stats each file (the size recorded at commit) and reads a few rows: the truncated
    and the metadata-damaged entries are redone; damage inside a frame needs ``--verify``."""
    videos, store = damaged
    capsys.readouterr()
    assert main(["extract", "rgb", "--videos", str(videos), "--store", str(store.root), *EXTRACT]) == 0
    assert "2 extracted, 5 already done" in capsys.readouterr().out
    assert [d["video_id"] for d in store.verify()] == [SILENT]


def test_reading_a_damaged_entry_names_it_and_its_file(damaged):
    _, store = damaged
    for vid, problem in ((TRUNCATED, "truncated or overwritten"), (METADATA, "SHA-256 differs")):
        with pytest.raises(DamagedEntryError, match=rf"damaged store entry 'rgb' of video '{vid}' \(file "
                                                    rf"{store.path(vid, 'rgb')}\): .*{problem}.*mhar manifest "
                                                    rf"{store.root} --verify") as info:
            store.read(vid, "rgb")
        assert (info.value.video_id, info.value.modality, info.value.path) == (vid, "rgb", store.path(vid, "rgb"))
        assert isinstance(info.value.__cause__, (OSError, KeyError))  # h5py's own error, kept as the cause
    store.read("chaplin_with_audio/chaplin_with_audio", "rgb")  # intact entries read

    cfg = DataConfig(store=str(store.root), modalities={"rgb": {"segments": 2, "crop": 24}}, val_fraction=0)
    ds = StoreDataset(cfg, "train", train=False)
    index = {vid: i for i, (vid, _) in enumerate(ds.videos)}
    ds[index["chaplin_with_audio/chaplin_with_audio"]]
    for vid in (TRUNCATED, METADATA):
        with pytest.raises(DamagedEntryError, match=rf"'rgb' of video '{vid}' \(file {store.path(vid, 'rgb')}\)"):
            ds[index[vid]]
    ds[index[SILENT]]  # its JPEGs still decode: only the checksum (--verify) sees this one

    store.verify()  # marked failed: the dataset leaves them out
    ds = StoreDataset(cfg, "train", train=False)
    assert sorted(v for v, _ in ds.videos) == sorted(set(index) - {TRUNCATED, METADATA, SILENT})


def test_old_manifests_without_checksums_are_verified_by_reading(damaged):
    _, store = damaged
    store.manifest.conn.execute("UPDATE entries SET checksum = NULL, file_size = NULL")
    store.manifest.commit()
    assert sorted(d["video_id"] for d in store.verify(mark=False)) == sorted([TRUNCATED, METADATA])
    with pytest.raises(DamagedEntryError, match=rf"'{TRUNCATED}' .*cannot be opened .*truncated file"):
        store.read(TRUNCATED, "rgb")


@pytest.fixture(scope="module")
def skeletons(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"), actions=(1, 2), subjects=(1, 2), episodes=(1, 2))


def _train(cfg_path: Path, run: Path) -> int:
    return main(["train", "--config", str(cfg_path), "--quiet", "--run-dir", str(run), "--set", "train.epochs=1"])


def test_training_and_evaluation_name_the_damaged_entry(skeletons, tmp_path, capsys):
    store = FeatureStore(shutil.copytree(skeletons, tmp_path / "store"))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(store.root, tmp_path / "unused", streams=("joint",)), sort_keys=False))
    assert _train(cfg, tmp_path / "run") == 0
    splits = {v["id"]: v["split"] for v in store.manifest.videos()}
    train_vid = next(v for v, s in splits.items() if s == "train")
    test_vid = next(v for v, s in splits.items() if s == "test")
    truncate(store.path(test_vid, "pose3d"))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"damaged store entry 'pose3d' of video '{test_vid}' (file {store.path(test_vid, 'pose3d')})" in err
    flip(store.path(train_vid, "pose3d"), 100)
    assert _train(cfg, tmp_path / "run2") == 2
    err = capsys.readouterr().err
    assert f"damaged store entry 'pose3d' of video '{train_vid}' (file {store.path(train_vid, 'pose3d')})" in err


def test_a_dataloader_worker_raises_it_too(damaged):
    from multimodal_har.data.loader import make_loader

    _, store = damaged
    cfg = DataConfig(store=str(store.root), modalities={"rgb": {"segments": 2, "crop": 24}}, val_fraction=0)
    loader = make_loader(StoreDataset(cfg, "train", train=False), 7, shuffle=False, num_workers=1)
    with pytest.raises(DamagedEntryError, match=rf"damaged store entry 'rgb' of video '({TRUNCATED}|{METADATA})'"):
        next(iter(loader))


def test_a_resumed_import_redoes_damaged_entries(tmp_path, capsys):
    from multimodal_har.data.importers import import_dataset
    from tests.multimodal_har.training_data import MSR

    src = tmp_path / "msr"
    src.mkdir()
    for f in sorted(MSR.glob("a01_s0[12]_e0[12]_skeleton3D.txt")):
        (src / f.name).symlink_to(f)
    store = FeatureStore(tmp_path / "store", create=True)
    assert import_dataset("msr_action3d", src, store)["modalities"]["pose3d"]["ok"] == 4
    ids = sorted(e["video_id"] for e in store.manifest.entries())
    truncate(store.path(ids[0], "pose3d"))
    inner = store.path(ids[1], "pose3d")
    flip(inner, inner.stat().st_size // 2)
    assert import_dataset("msr_action3d", src, store)["modalities"]["pose3d"] == {"ok": 1, "skipped": 3, "failed": 0}
    assert [d["video_id"] for d in store.verify()] == [ids[1]]
    assert import_dataset("msr_action3d", src, store)["modalities"]["pose3d"] == {"ok": 1, "skipped": 3, "failed": 0}
    assert store.verify() == []
