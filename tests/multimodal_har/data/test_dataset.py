"""The multimodal dataset on real stores: three real videos through the project's extractors
(rgb, Farneback flow, audio, MediaPipe pose, plus a user signal) and real MSR Action3D skeletons."""

import logging
import os
from collections import Counter

import h5py
import numpy as np
import pytest
import torch

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.augment import crop_resize
from multimodal_har.data.dataset import DataConfig, EpochSampler, StoreDataset, collate, make_loader
from multimodal_har.data.kinds import PoseKind
from multimodal_har.data.store import FeatureStore
from multimodal_har.flow.codec import read_flow
from multimodal_har.skeleton import get_layout, read_msr_action3d
from multimodal_har.skeleton.datasets import add_to_store
from tests.conftest import SHARED, VIDEOS

VIDS = [("taichi", "tai_chi.mp4"), ("makeup", "apply_eye_makeup_with_audio.avi"),
        ("walking", "chaplin_with_audio.mp4")]


@pytest.fixture(scope="module")
def video_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mm")
    root = tmp / "videos"
    for label, name in VIDS:
        (root / label).mkdir(parents=True)
        os.symlink(VIDEOS / name, root / label / name)
    store = FeatureStore(tmp / "store", create=True)
    for name, kw in [("rgb", dict(short_side=64, fps=8)), ("farneback", dict(short_side=64, fps=8)),
                     ("audio", dict(n_mels=32)), ("mediapipe", dict(short_side=256, fps=2))]:
        run_extraction(build_extractor(name, **kw), videos_root=root, store=store, workers=1, progress=False)
    # a user signal on the video timeline whose values are its own timestamps (checks alignment);
    # the make-up video's holds a NaN
    for vid in ("taichi/tai_chi", "makeup/apply_eye_makeup_with_audio", "walking/chaplin_with_audio"):
        t = np.arange(0, 6.0, 0.02)
        data = np.stack([t, np.sin(t)], 1).astype(np.float32)
        if vid.startswith("makeup"):
            data[100, 1] = np.nan
        store.add(vid, "clock", {"data": data, "timestamps": t})
    return store.root


@pytest.fixture(scope="module")
def skeleton_store(tmp_path_factory):
    """MSR Action3D: actions 1, 2 (train subjects 1, 3 and test subjects 2, 4), action 3 train only."""
    store = FeatureStore(tmp_path_factory.mktemp("skel") / "store", create=True)
    keep = {f"a{a:02d}_s{s:02d}_e01" for a in (1, 2) for s in (1, 2, 3, 4)} | {"a03_s01_e01", "a03_s01_e02",
                                                                                "a03_s03_e01", "a01_s01_e02"}
    seqs = [q for q in read_msr_action3d(SHARED / "skeleton/msr_action3d") if q.id in keep]
    add_to_store(store, seqs, dataset="msr_action3d")
    return store.root


def video_config(root, **kw):
    mods = {"rgb": {"segments": 3, "crop": 48}, "flow": {"segments": 3, "flow_length": 2, "crop": 48},
            "pose": {"source": "pose3d", "frames": 8, "normalize": {}, "max_people": 1},
            "audio": {"frames": 150}}
    return DataConfig(store=str(root), modalities=kw.pop("modalities", mods), val_fraction=0,
                      **{"window": 2.0, **kw})


def skeleton_config(root, **kw):
    return DataConfig(store=str(root), val_fraction=0, modalities={
        s: {"source": "pose3d", "stream": s, "rate_hz": 15.0, "frames": 20} for s in ("joint", "bone", "motion")},
        **kw)


def equal(a, b):
    return a.keys() == b.keys() and all(
        a[m].keys() == b[m].keys() and all(np.array_equal(a[m][k], b[m][k]) for k in a[m]) for m in a)


def test_shapes_per_modality_and_missing_audio(video_store):
    ds = StoreDataset(video_config(video_store), "train", train=False)
    assert ds.classes == ["makeup", "taichi", "walking"] and ds.modalities == ["rgb", "flow", "pose", "audio"]
    by_id = {ds[i]["id"]: ds[i] for i in range(len(ds))}
    full = by_id["makeup/apply_eye_makeup_with_audio"]["inputs"]
    assert full["rgb"]["x"].shape == (3, 3, 48, 48)
    assert full["flow"]["x"].shape == (3, 4, 48, 48)
    assert full["pose"]["x"].shape[1:] == (1, 33, 3) and full["pose"]["x"].shape[0] == 4  # 2 s at 2 fps
    assert full["audio"]["x"].shape == (150, 32)
    assert "audio" not in by_id["taichi/tai_chi"]["inputs"]  # no audio track
    for name, v in full.items():  # frames leave as uint8 crops, normalised on the device
        assert v["x"].dtype == (np.uint8 if name in ("rgb", "flow") else np.float32) and np.isfinite(v["x"]).all()
    scale, offset = by_id["makeup/apply_eye_makeup_with_audio"]["affine"]["flow"]["x"]
    assert scale.shape == offset.shape == (4,)  # x0, y0, x1, y1
    # 3D layout: T consecutive frames per segment, flow as (K, 2, L, H, W)
    cfg3 = video_config(video_store, modalities={
        "rgb": {"segments": 2, "layout": "3d", "clip_length": 4, "crop": 32, "resize": 40},
        "flow": {"segments": 2, "layout": "3d", "flow_length": 3, "crop": 32}})
    s = StoreDataset(cfg3, "train", train=False)[0]["inputs"]
    assert s["rgb"]["x"].shape == (2, 3, 4, 32, 32) and s["flow"]["x"].shape == (2, 2, 3, 32, 32)


def test_every_stream_reads_the_same_window(video_store):
    mods = {**video_config(video_store).modalities, "clock": {"augment": False}}  # values = times
    ds = StoreDataset(video_config(video_store, modalities=mods), "train", train=True, seed=3)
    for epoch in range(3):
        for i in range(len(ds)):
            smp = ds[(epoch, i)]
            start, stop = smp["start"], smp["stop"]
            assert stop - start == pytest.approx(2.0)
            times = ds.sample_times(i, epoch=epoch)
            assert set(times) == {"rgb", "flow", "pose"} | ({"audio", "clock"} & set(smp["inputs"]))
            for name, t in times.items():
                assert (t >= start).all() and (t < stop).all(), (name, t, start, stop)
            if "clock" in smp["inputs"]:  # the signal's values are its timestamps
                np.testing.assert_allclose(smp["inputs"]["clock"]["x"][:, 0], times["clock"], atol=1e-5)


def test_flip_mirrors_flow_and_negates_x(video_store):
    with h5py.File(video_store / "flow/walking/chaplin_with_audio.h5") as f:
        flow = read_flow(f, [3, 4])  # (2, 2, H, W) real pixels
    H, W = flow.shape[2:]
    plain = crop_resize(flow, (0, 0, H, W), (H, W), flow=True)
    flipped = crop_resize(flow, (0, 0, H, W), (H, W), flip=True, flow=True)
    np.testing.assert_array_equal(flipped[:, 0], -plain[:, 0, :, ::-1])
    np.testing.assert_array_equal(flipped[:, 1], plain[:, 1, :, ::-1])
    half = crop_resize(flow, (0, 0, H, W), (H // 2, W // 2), flow=True)  # vectors shrink with the image
    assert np.abs(half).mean() == pytest.approx(np.abs(plain).mean() / 2, rel=0.1)


@pytest.mark.parametrize("train", [False, True])
def test_frames_normalised_on_the_device_equal_the_workers_own(video_store, train):
    """uint8 crops + finish_batch give what the dataset gives with normalize_on_device=False,
    for 2D and 3D layouts, crops, multi-scale resizing and mirroring."""
    from multimodal_har.data.batch import finish_batch

    mods = {"rgb": {"segments": 3, "crop": 40, "resize": 56, "multi_scale": True},
            "flow": {"segments": 2, "flow_length": 3, "crop": 40, "resize": 48, "multi_scale": True},
            "rgb3": {"source": "rgb", "kind": "rgb", "segments": 2, "layout": "3d", "clip_length": 2, "crop": 32},
            "flow3": {"source": "flow", "kind": "flow", "segments": 2, "layout": "3d", "flow_length": 2,
                      "crop": 32, "mean": [0.5, -0.5], "std": [10.0, 30.0]},
            "audio": {"frames": 150}}
    mine = StoreDataset(video_config(video_store, modalities=mods), "train", train=train, seed=2)
    theirs = StoreDataset(video_config(video_store, modalities=mods, normalize_on_device=False), "train",
                          train=train, seed=2)
    for epoch in (0, 1):
        a = [mine[(epoch, i)] for i in range(len(mine))]
        b = theirs.collate([theirs[(epoch, i)] for i in range(len(theirs))])
        assert all("affine" in x for x in a) and "affine" not in b
        batch = mine.collate(a)
        assert batch["inputs"]["rgb"]["x"].dtype == torch.uint8 and "affine" in batch
        done = finish_batch(batch)
        assert "affine" not in done
        for m, kws in b["inputs"].items():
            for k, v in kws.items():
                assert done["inputs"][m][k].dtype == v.dtype
                torch.testing.assert_close(done["inputs"][m][k], v, atol=1e-5, rtol=1e-5)


def test_quantised_flow_crop_mirror_and_resize_keep_the_vectors(video_store):
    """The uint8 path's flow equals the float-pixel path: exactly up to float rounding for crops
    and mirroring, within the quantisation step where both resize."""
    from multimodal_har.data.batch import apply_affine

    ds = StoreDataset(video_config(video_store), "train", train=False)
    s = ds.streams[1]
    with h5py.File(video_store / "flow/walking/chaplin_with_audio.h5") as f:
        q, bound = read_flow(f, [3, 4], quantized=True), float(f.attrs["bound"])
        pixels = read_flow(f, [3, 4])
    assert q.dtype == np.uint8
    H, W = q.shape[2:]

    class Flip:  # crop_region draws first (positions), then the mirror
        def __init__(self, flip):
            self.flip = flip

        def integers(self, lo, hi, size=None):
            return lo

        def random(self):
            return 0.0 if self.flip else 1.0

    for crop, resize, flip in ((40, None, False), (40, None, True), (24, 32, True)):
        s.cfg.crop, s.cfg.resize = crop, resize
        x, aff = s.handler.spatial(q, Flip(flip), bound=bound)
        got = apply_affine(x, *aff) * 20.0  # back to pixels (mean 0, std 20)
        r = resize / min(H, W) if resize else 1.0
        side = round(crop / r)
        want = crop_resize(pixels, (0, 0, side, side), (crop, crop), flip=flip, flow=True)
        tol = 1e-4 if resize is None else 2 * (2 * bound / 255) * r + 0.05 * np.abs(want).max()
        assert np.abs(got - want).max() <= tol, (crop, resize, flip)
        assert np.abs(got - want).mean() < (1e-5 if resize is None else 2 * bound / 255)


def test_eval_is_deterministic_and_epochs_reproduce_in_training(video_store):
    cfg = video_config(video_store)
    a, b = StoreDataset(cfg, "train", train=False), StoreDataset(cfg, "train", train=False)
    b.set_epoch(5)
    for i in range(len(a)):
        assert equal(a[i]["inputs"], b[i]["inputs"])
    t1, t2 = StoreDataset(cfg, "train", train=True, seed=1), StoreDataset(cfg, "train", train=True, seed=1)
    t1.set_epoch(2)
    t2.set_epoch(2)
    s1, s2 = t1[1], t2[1]
    assert s1["start"] == s2["start"] and equal(s1["inputs"], s2["inputs"])
    t2.set_epoch(3)
    s3 = t2[1]
    assert s3["start"] != s1["start"] and not np.array_equal(s3["inputs"]["rgb"]["x"], s1["inputs"]["rgb"]["x"])


def test_collate_pads_masks_and_marks_missing(video_store, skeleton_store):
    ds = StoreDataset(video_config(video_store), "train", train=False)
    batch = ds.collate([ds[i] for i in range(len(ds))])
    order = batch["ids"]
    taichi = order.index("taichi/tai_chi")
    assert batch["present"][:, 3].tolist() == [i != taichi for i in range(3)]
    assert batch["present"][:, :3].all()
    audio = batch["inputs"]["audio"]
    assert not audio["mask"][taichi].any() and (audio["x"][taichi] == 0).all()
    assert audio["mask"][1 - taichi if taichi < 2 else 0].all()
    # an input absent from the whole batch still comes with its shape and an all-False mask
    only = ds.collate([ds[taichi]])
    assert only["inputs"]["audio"]["x"].shape == (1, 1, 32) and not only["inputs"]["audio"]["mask"].any()
    # variable-length skeletons (frames=None): padded to the longest, mask = lengths
    cfg = DataConfig(store=str(skeleton_store), val_fraction=0,
                     modalities={"joint": {"source": "pose3d", "rate_hz": 15.0}})
    sk = StoreDataset(cfg, "train", train=False)
    samples = [sk[i] for i in range(4)]
    lengths = [len(s["inputs"]["joint"]["x"]) for s in samples]
    b = collate(samples, ["joint"])
    assert len(set(lengths)) > 1
    assert b["inputs"]["joint"]["mask"].sum(1).tolist() == lengths
    for i, n in enumerate(lengths):
        assert (b["inputs"]["joint"]["x"][i, n:] == 0).all()
        torch.testing.assert_close(b["inputs"]["joint"]["x"][i, :n], torch.from_numpy(samples[i]["inputs"]["joint"]["x"]))


def test_skeleton_streams_from_one_entry(skeleton_store):
    ds = StoreDataset(skeleton_config(skeleton_store), "train", train=False)
    assert ds.modalities == ["joint", "bone", "motion"]
    assert ds.classes == ["hammer", "high arm wave", "horizontal arm wave"]  # MSR actions 3, 1, 2
    s = ds[0]["inputs"]
    j, bone, motion = s["joint"]["x"], s["bone"]["x"], s["motion"]["x"]
    assert j.shape == (20, 1, 20, 3)
    edges = get_layout("kinect_v1_20").edges
    np.testing.assert_allclose(bone[:, :, edges[0]], j[:, :, edges[0]] - j[:, :, edges[1]])
    root = get_layout("kinect_v1_20").index(get_layout("kinect_v1_20").center)
    assert (bone[:, :, root] == 0).all()
    np.testing.assert_allclose(motion[:-1], j[1:] - j[:-1])
    assert (motion[-1] == 0).all()
    # a target layout and training augmentation: still finite, new joint count
    cfg = DataConfig(store=str(skeleton_store), val_fraction=0, window=1.0, modalities={
        "joint": {"source": "pose3d", "rate_hz": 15.0, "target_layout": "common_13", "normalize": {}}})
    x = StoreDataset(cfg, "train", train=True)[0]["inputs"]["joint"]["x"]
    assert x.shape[1:] == (1, 13, 3) and 13 <= len(x) <= 15 and np.isfinite(x).all()


def test_streams_of_one_entry_share_their_augmentation(skeleton_store):
    """joint, bone and motion from one pose3d entry are the same augmented frames in training."""
    mods = {s: {"source": "pose3d", "stream": s, "rate_hz": 15.0, "frames": 12, "rotate_deg": 30.0,
                "scale": 0.2, "jitter": 0.01} for s in ("joint", "bone", "motion")}
    cfg = DataConfig(store=str(skeleton_store), val_fraction=0, window=2.0, modalities=mods)
    ds = StoreDataset(cfg, "train", train=True, seed=3)
    edges = get_layout("kinect_v1_20").edges
    for epoch in (0, 1):
        s = ds[(epoch, 1)]["inputs"]
        j, bone, motion = s["joint"]["x"], s["bone"]["x"], s["motion"]["x"]
        np.testing.assert_allclose(bone[:, :, edges[0]], j[:, :, edges[0]] - j[:, :, edges[1]], atol=1e-6)
        np.testing.assert_allclose(motion[:-1], j[1:] - j[:-1], atol=1e-6)
        # each stream is what a dataset of that stream alone gives
        alone = DataConfig(store=str(skeleton_store), val_fraction=0, window=2.0, modalities={"bone": mods["bone"]})
        np.testing.assert_array_equal(StoreDataset(alone, "train", train=True, seed=3)[(epoch, 1)]["inputs"]["bone"]["x"],
                                      bone)


def test_streams_of_one_entry_read_it_once(skeleton_store, monkeypatch):
    """The three streams of one entry cost one read and one augmentation per sample; a stream
    with other settings (here: no augmentation) reads its own."""
    mods = {s: {"source": "pose3d", "stream": s, "rate_hz": 15.0, "frames": 12} for s in ("joint", "bone", "motion")}
    mods["plain"] = {"source": "pose3d", "stream": "joint", "rate_hz": 15.0, "frames": 12, "augment": False,
                     "input": "plain"}
    ds = StoreDataset(DataConfig(store=str(skeleton_store), val_fraction=0, window=2.0, modalities=mods),
                      "train", train=True, seed=3)
    reads = []
    real = PoseKind.read
    monkeypatch.setattr(PoseKind, "read", lambda self, *a: reads.append(self.stream) or real(self, *a))
    sample = ds[(0, 1)]["inputs"]
    assert reads == ["joint", "plain"]
    assert set(sample) == {"joint", "bone", "motion", "plain"}


def test_class_balanced_sampler_draws_classes_evenly(skeleton_store):
    ds = StoreDataset(skeleton_config(skeleton_store), "train", train=False)
    counts = Counter(ds.labels)
    assert sorted(counts.values()) == [2, 3, 3]  # imbalanced (see the fixture)
    sampler = EpochSampler(ds, shuffle=True, seed=0, balanced=True, num_samples=6000)
    drawn = Counter(ds.labels[i] for _, i in sampler)
    for c in counts:
        assert drawn[c] / 6000 == pytest.approx(1 / len(counts), abs=0.03)
    # the order depends only on (seed, epoch)
    first = list(sampler)
    again = EpochSampler(ds, shuffle=True, seed=0, balanced=True, num_samples=6000)
    assert list(again) == first
    again.set_epoch(1)  # the epoch lives in the dataset, which both samplers read
    assert [i for _, i in again] != [i for _, i in first] and list(sampler) == list(again)
    ds.set_epoch(0)
    assert list(sampler) == first
    # sharding: two ranks together cover the epoch's draws
    ranks = [list(EpochSampler(ds, shuffle=True, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(i for r in ranks for _, i in r) == sorted(range(len(ds)))


def test_loader_with_two_workers_matches_one_process(video_store):
    ds = StoreDataset(video_config(video_store), "train", train=True, seed=7)
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, 2, shuffle=True, class_balanced=False, num_workers=workers, seed=7)
        ds.set_epoch(4)
        batches[workers] = list(loader)
    assert len(batches[2]) == 2
    for a, b in zip(batches[0], batches[2]):
        assert a["ids"] == b["ids"]
        for m in a["inputs"]:
            for k in a["inputs"][m]:
                torch.testing.assert_close(a["inputs"][m][k], b["inputs"][m][k])


def test_errors_and_logged_skips(video_store, skeleton_store, caplog):
    with pytest.raises(ValueError, match=r"no modality 'depth'.*audio, clock, flow, pose3d, rgb"):
        StoreDataset(video_config(video_store, modalities={"depth": {}}), "train", train=True)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['crop_size'\]"):
        video_config(video_store, modalities={"rgb": {"crop_size": 3}})
    # test subjects perform no 'hammer'... but the train split does; a class only in test fails:
    cfg = skeleton_config(skeleton_store)
    sk = StoreDataset(cfg, "test", train=False)
    assert sk.classes == ["hammer", "high arm wave", "horizontal arm wave"]
    with pytest.raises(ValueError, match=r"split 'test' has classes the train split does not: \['high arm wave'"):
        StoreDataset(cfg, "test", train=False, classes=["hammer", "horizontal arm wave"])
    with pytest.raises(ValueError, match="split 'val' .* has no videos"):
        StoreDataset(cfg, "val", train=False)
    with pytest.raises(ValueError, match="no timestamps and no rate_hz"):
        StoreDataset(DataConfig(store=str(skeleton_store), modalities={"joint": {"source": "pose3d"}}),
                     "train", train=False)
    # a video with no configured stream is dropped with a warning
    with caplog.at_level(logging.WARNING):
        ds = StoreDataset(video_config(video_store, modalities={"audio": {}}), "train", train=False)
    assert [v for v, _ in ds.videos] == ["makeup/apply_eye_makeup_with_audio", "walking/chaplin_with_audio"]
    assert "taichi/tai_chi" in caplog.text and "skipped" in caplog.text
    # NaN in what a sample reads: that stream is missing for it, logged
    caplog.clear()
    ds = StoreDataset(video_config(video_store, window=None, modalities={"clock": {}, "rgb": {"segments": 2, "crop": 32}}),
                      "train", train=False)
    by_id = {ds[i]["id"]: ds[i] for i in range(len(ds))}
    assert "clock" not in by_id["makeup/apply_eye_makeup_with_audio"]["inputs"]
    assert "clock" in by_id["taichi/tai_chi"]["inputs"]
    assert "NaN/inf in clock of 'makeup/apply_eye_makeup_with_audio'" in caplog.text


def test_a_crop_larger_than_the_frames_is_refused_with_the_sizes(video_store):
    """``crop: 4000`` on 64 px frames used to upsample every frame to 4000 x 4000 (killed for memory)."""
    with pytest.raises(ValueError, match=r"data.modalities.rgb.crop \(4000\) is larger than the stored frames of rgb "
                                         r"\(85x64 px in '.*'\): set crop <= 64"):
        StoreDataset(video_config(video_store, modalities={"rgb": {"crop": 4000}}), "train", train=True)
    with pytest.raises(ValueError, match=r"data.modalities.flow.crop \(65\) is larger than the stored frames"):
        StoreDataset(video_config(video_store, modalities={"flow": {"crop": 65}}), "train", train=True)
    with pytest.raises(ValueError, match=r"crop \(4000\) must not exceed resize \(128\)"):
        video_config(video_store, modalities={"rgb": {"crop": 4000, "resize": 128}})
    # what fits: the short side itself, or a resize first
    StoreDataset(video_config(video_store, modalities={"rgb": {"crop": 64}}), "train", train=True)
    ds = StoreDataset(video_config(video_store, modalities={"rgb": {"crop": 96, "resize": 96}}), "train", train=True)
    assert ds[0]["inputs"]["rgb"]["x"].shape[-2:] == (96, 96)


def test_val_is_carved_from_train_by_video(skeleton_store):
    cfg = DataConfig(store=str(skeleton_store), val_fraction=0.3, modalities={
        "joint": {"source": "pose3d", "rate_hz": 15.0}})
    train, val = StoreDataset(cfg, "train", train=True), StoreDataset(cfg, "val", train=False)
    tv, vv = {v for v, _ in train.videos}, {v for v, _ in val.videos}
    assert vv and not tv & vv and val.classes == train.classes
    assert vv == {v for v, _ in StoreDataset(cfg, "val", train=False, seed=9).videos}


def test_each_stream_gives_its_step_times_from_the_window_start(video_store):
    mods = {**video_config(video_store).modalities, "clock": {"augment": False}}  # values = times
    ds = StoreDataset(video_config(video_store, modalities=mods), "train", train=True, seed=3)
    for i in range(len(ds)):
        smp = ds[(1, i)]
        for name, t in ds.sample_times(i, epoch=1).items():
            expected = (t.mean(axis=1) if t.ndim == 2 else t) - smp["start"]  # rgb / flow: segment centres
            np.testing.assert_allclose(smp["inputs"][name]["times"], expected, atol=1e-5)
            assert len(smp["inputs"][name]["times"]) == len(smp["inputs"][name]["x"])
        if "clock" in smp["inputs"]:
            np.testing.assert_allclose(smp["inputs"]["clock"]["times"],
                                       smp["inputs"]["clock"]["x"][:, 0] - smp["start"], atol=1e-5)
    batch = ds.collate([ds[0], ds[1]])
    assert batch["inputs"]["pose"]["times"].shape == batch["inputs"]["pose"]["mask"].shape
    off = StoreDataset(video_config(video_store, modalities=mods, token_times=False), "train", train=False)
    assert all("times" not in kw for kw in off[0]["inputs"].values())


def test_id_splits_assign_videos_by_pattern(skeleton_store):
    mods = {"joint": {"source": "pose3d", "rate_hz": 15.0}}
    cfg = DataConfig(store=str(skeleton_store), modalities=mods,
                     id_splits={"train": ["*_s01_*"], "val": ["*_s02_*"], "test": ["*_s03_*"]})
    subjects = {split: {v.split("_")[2] for v, _ in StoreDataset(cfg, split, train=False).videos}
                for split in ("train", "val", "test")}
    assert subjects == {"train": {"s01"}, "val": {"s02"}, "test": {"s03"}}  # the manifest's splits ignored
    both = DataConfig(store=str(skeleton_store), modalities=mods, id_splits={"train": ["*"], "test": ["*_s03_*"]})
    with pytest.raises(ValueError, match=r"matches the id_splits of \['train', 'test'\]"):
        StoreDataset(both, "train", train=True)
    with pytest.raises(ValueError, match="id_splits and time_splits exclude each other"):
        DataConfig(store=str(skeleton_store), modalities=mods, id_splits={"train": ["*"]},
                   time_splits={"train": [0, 1]})
    with pytest.raises(ValueError, match="id_splits must map split names to non-empty lists"):
        DataConfig(store=str(skeleton_store), modalities=mods, id_splits={"train": "*_s01_*"})


def test_modality_config_builds_the_kinds_typed_config():
    """The former all-kinds class name still builds a stream config (now the kind's own)."""
    from multimodal_har.config import ConfigError
    from multimodal_har.data.dataset import ModalityConfig
    from multimodal_har.data.kinds import PoseStreamConfig, resolve_config

    pose = ModalityConfig(kind="pose", frames=32, stream="bone")
    assert isinstance(pose, PoseStreamConfig) and (pose.frames, pose.stream) == (32, "bone")
    inferred = ModalityConfig(frames=16)  # kind from the store entry
    assert inferred.kind is None and resolve_config(inferred, "pose").frames == 16
    with pytest.raises(ConfigError, match=r"ModalityConfig\.frames: .*valid integer"):
        ModalityConfig(kind="pose", frames="many")
