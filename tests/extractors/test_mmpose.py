"""The mmpose backend (RTMO 2D + MotionBERT lifting) end to end with random weights.

Needs mmpose (bash scripts/install_mmpose.sh); skipped where it is not installed. The CPU
tests build the real models with random weights (checkpoints cannot be fetched offline):
they test the integration (pipelines, batching, tracking, lifting, the stored entry), not
accuracy. The gpu-marked test runs the same on CUDA.
"""

import shutil

import numpy as np
import pytest

pytest.importorskip("mmpose")

from multimodal_har.extractors import build_extractor  # noqa: E402
from multimodal_har.extractors.mmpose import LIFTERS, MODELS_2D, _resolve, metafile_weights  # noqa: E402
from multimodal_har.extractors.runner import run_extraction  # noqa: E402
from multimodal_har.data.store import FeatureStore  # noqa: E402
from multimodal_har.data.video import iter_frames  # noqa: E402
from multimodal_har.flow.raft import WeightsUnavailable  # noqa: E402
from tests.conftest import VIDEOS, make_broken_videos  # noqa: E402

RANDOM = dict(pose2d_weights=None, lifter_weights=None)


@pytest.mark.parametrize("name,table", [(n, MODELS_2D) for n in MODELS_2D] + [(n, LIFTERS) for n in LIFTERS])
def test_every_named_model_has_a_config_and_a_checkpoint(name, table):
    config, url = _resolve(name, "default", table)
    assert url == metafile_weights(config)
    assert url.startswith("https://download.openmmlab.com/") and url.endswith(".pth")


def _condition(pose2d) -> None:
    """Tame RTMO's random output layers: random box regressors give boxes of 1e38 px (NaN
    IoUs, on which no two NMS implementations agree) and random classifiers saturate every
    score at 1.0 (ties, so any top-k order is right). Shrunk, boxes are a few strides wide
    and scores distinct, as with trained weights."""
    import torch

    with torch.no_grad():
        for conv in [*pose2d.head.head_module.out_bbox, *pose2d.head.head_module.out_cls]:
            conv.weight.mul_(1e-4)
            conv.bias.zero_()


def test_batched_2d_equals_mmpose_one_image_inference():
    import torch
    from mmengine.dataset import pseudo_collate

    frames = [fr.image for fr in iter_frames(VIDEOS / "tai_chi.mp4", short_side=256, max_frames=3)]
    batched = build_extractor("mmpose", device="cpu", **RANDOM)
    single = build_extractor("mmpose", device="cpu", batched=False, **RANDOM)
    for ex in (batched, single):  # the same random weights; single keeps mmpose's own
        torch.manual_seed(1)  # per-image decoding
        _condition(ex.models()[0])
    pose2d, _, pipeline, _ = batched.models()
    # the batch holds exactly the inputs and image metadata inference_bottomup builds per image
    data = [pipeline(dict(img=im[..., ::-1].copy(), **pose2d.dataset_meta)) for im in frames]
    batch = pose2d.data_preprocessor(pseudo_collate(data), False)
    for i, im in enumerate(frames):
        one = pose2d.data_preprocessor(pseudo_collate([data[i]]), False)
        torch.testing.assert_close(batch["inputs"][i], one["inputs"][0], rtol=0, atol=0)
        for key in ("input_size", "input_center", "input_scale", "ori_shape"):
            np.testing.assert_array_equal(batch["data_samples"][i].metainfo[key], one["data_samples"][0].metainfo[key])
    # and the decoded people agree
    for (xy_b, s_b), (xy_s, s_s) in zip(batched.detect_2d(frames), single.detect_2d(frames)):
        assert xy_b.shape == xy_s.shape and xy_b.shape[0] > 0 and xy_b.shape[1:] == (17, 2)
        ob, os_ = np.argsort(-s_b.mean(1), kind="stable"), np.argsort(-s_s.mean(1), kind="stable")
        np.testing.assert_allclose(s_b[ob], s_s[os_], atol=1e-4)
        np.testing.assert_allclose(xy_b[ob], xy_s[os_], rtol=1e-3, atol=0.05)


def test_batched_rtmo_decoding_equals_rtmo_head_predict():
    import torch
    from mmengine.dataset import pseudo_collate

    from multimodal_har.extractors.mmpose_rtmo import batched_predict

    frames = [fr.image for fr in iter_frames(VIDEOS / "arm_wrestling.mp4", short_side=256, max_frames=4)]
    torch.manual_seed(1)
    ex = build_extractor("mmpose", device="cpu", batched=False, max_detections=50, **RANDOM)
    pose2d, _, pipeline, _ = ex.models()
    _condition(pose2d)
    data = [pipeline(dict(img=im[..., ::-1].copy(), **pose2d.dataset_meta)) for im in frames]
    with torch.no_grad():
        batch = pose2d.data_preprocessor(pseudo_collate(data), False)
        feats = pose2d.extract_feat(batch["inputs"])
        ref = pose2d.head.predict(feats, batch["data_samples"], test_cfg=pose2d.test_cfg)
        got = batched_predict(pose2d.head, feats, batch["data_samples"], test_cfg=pose2d.test_cfg)
    assert len(got) == len(ref) == 4
    for g, r in zip(got, ref):
        assert len(g.scores) == len(r.scores) > 0  # NMS kept the same number of people
        og, orf = np.argsort(-g.scores, kind="stable"), np.argsort(-r.scores, kind="stable")
        np.testing.assert_allclose(g.scores[og], r.scores[orf], rtol=1e-5)
        np.testing.assert_allclose(g.bboxes[og], r.bboxes[orf], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(g.keypoint_scores[og], r.keypoint_scores[orf], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(g.keypoints[og], r.keypoints[orf], rtol=1e-3, atol=1e-2)


def _check_entry(store, vid, max_people=2):
    d, a = store.read(vid, "pose3d")
    T = a["num_frames"]
    assert (a["layout"], a["layout2d"], a["backend"]) == ("h36m_17", "coco_17", "mmpose")
    assert d["keypoint"].shape == (T, max_people, 17, 3) and d["score"].shape == (T, max_people, 17)
    assert d["keypoint2d"].shape == (T, max_people, 17, 2) and d["score2d"].shape == (T, max_people, 17)
    for v in d.values():
        assert np.isfinite(v).all()
    assert ((d["score"] >= 0) & (d["score"] <= 1)).all()
    empty = d["score2d"].max(axis=2) == 0  # (T, M): slots without a person hold zeros
    assert not d["keypoint"][empty].any() and not d["keypoint2d"][empty].any()
    return d, a


@pytest.mark.slow
def test_extract_random_weights_cpu(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(VIDEOS / "arm_wrestling.mp4", videos)
    broken = make_broken_videos(videos / "broken")
    ex = build_extractor("mmpose", device="cpu", max_frames=6, batch_frames=4, **RANDOM)
    s = run_extraction(ex, videos_root=videos, store=tmp_path / "store", workers=1, progress=False)
    assert s.done == 1 and len(s.failed) == len(broken)
    store = FeatureStore(tmp_path / "store")
    _check_entry(store, "arm_wrestling")
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.gpu
def test_extract_random_weights_gpu(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("arm_wrestling.mp4", "tai_chi.mp4"):
        shutil.copy(VIDEOS / name, videos)
    ex = build_extractor("mmpose", device="cuda", max_frames=300, **RANDOM)
    s = run_extraction(ex, videos_root=videos, store=tmp_path / "store", workers=1, progress=False)
    assert s.done == 2 and not s.failed
    store = FeatureStore(tmp_path / "store")
    for vid in ("arm_wrestling", "tai_chi"):
        _check_entry(store, vid)


def test_offline_download_failure_says_what_to_do():
    ex = build_extractor("mmpose", device="cpu", pose2d_weights="default", lifter_weights=None)
    with pytest.raises(WeightsUnavailable, match=r"(?s)rtmo-s.*https://download\.openmmlab\.com.*--pose2d-weights FILE"):
        ex.models()


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="pose2d must be one of"):
        build_extractor("mmpose", pose2d="nope")
    ex = build_extractor("mmpose", device="cpu", pose2d_weights=str(tmp_path / "missing.pth"), lifter_weights=None)
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        ex.models()
