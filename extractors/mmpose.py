"""3D pose on the GPU through mmpose: a one-stage multi-person 2D model, then a 3D lifter.

* 2D: RTMO (Lu et al., 2024, "RTMO: Towards High-Performance One-Stage Real-Time
  Multi-Person Pose Estimation", CVPR), COCO-17 keypoints. One-stage: it finds the people
  and their joints in one pass, so there is no separate detector and its cost does not
  grow with the number of people.
* 3D: MotionBERT (Zhu et al., 2023, "MotionBERT: A Unified Perspective on Learning Human
  Motion Representations", ICCV) lifts each tracked person's 2D sequence (COCO joints
  converted to Human3.6M-17 the way mmpose's demo does) to root-relative 3D, 243 frames per
  window. ``videopose3d`` (Pavllo et al., CVPR 2019) is the lighter alternative.

Everything goes through mmpose's own APIs: ``init_model`` builds both models from the
configs that ship inside the mmpose package; their test pipelines prepare the inputs and
``model.test_step`` runs them. What this file adds is batching: frames of a video go
through the 2D model ``batch_frames`` at a time (the pipeline runs in a thread pool), RTMO's
decoding runs for the whole batch at once (``extractors.mmpose_rtmo``), and all windows of
all people of a video go through the lifter together. ``batched=False``
runs mmpose's one-image ``inference_bottomup`` and one window per frame instead (the
baseline of ``benchmarks/pose_throughput.py``).

Weights: ``"default"`` downloads the checkpoint named below through mmengine (into
torch's hub cache) on first use; a path loads a local file; ``None`` keeps random weights
(for offline tests of the integration). Install: ``bash scripts/install_mmpose.sh``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from multimodal_har.data.video import VideoInfo

from .pose_base import FramePeople, PoseConfig, PoseExtractor

# name -> config inside mmpose's package; the checkpoint URL of each is read from the
# model-index metafile (``*.yml``) that ships beside it, as mmpose's inferencers do.
MODELS_2D = {
    "rtmo-s": "body_2d_keypoint/rtmo/body7/rtmo-s_8xb32-600e_body7-640x640.py",
    "rtmo-m": "body_2d_keypoint/rtmo/body7/rtmo-m_16xb16-600e_body7-640x640.py",
    "rtmo-l": "body_2d_keypoint/rtmo/body7/rtmo-l_16xb16-600e_body7-640x640.py",
}
LIFTERS = {
    # fine-tuned on Human3.6M, as mmpose's 3D demo uses
    "motionbert": "body_3d_keypoint/motionbert/h36m/motionbert_dstformer-ft-243frm_8xb32-120e_h36m.py",
    # 2D from a detector (CPN) during training: closer to video input than ground-truth 2D
    "videopose3d": "body_3d_keypoint/video_pose_lift/h36m/video-pose-lift_tcn-243frm-supv-cpn-ft_8xb128-200e_h36m.py",
}
V2D, V3D = 17, 17
# lifter output (camera-like: x right, y down, z away) -> stored frame (y up), as MediaPipe
_FLIP = np.array([1.0, -1.0, -1.0], dtype=np.float32)


@dataclass
class MMPoseConfig(PoseConfig):
    """mmpose backend options (and ``PoseConfig``'s sampling and people fields).

    Attributes:
        pose2d: a name of ``MODELS_2D`` or a path to an mmpose config file.
        pose2d_weights: ``"default"`` (download the named model's checkpoint), a local
            checkpoint path, or ``None`` (random weights: tests only).
        lifter: a name of ``LIFTERS`` or a path to an mmpose pose-lifter config.
        lifter_weights: as ``pose2d_weights``.
        batch_frames: frames per 2D forward pass.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``; ``None``: ``cuda:$LOCAL_RANK`` if a GPU
            is visible, else the CPU.
        batched: ``False`` runs mmpose's one-frame-at-a-time inference (baseline).
        pipeline_threads: threads preparing 2D inputs (mmpose's resize/pad pipeline).
        max_detections: candidates RTMO keeps per frame before its NMS (its ``nms_pre``,
            the highest-scoring first), so a crowd cannot make the per-person decoding
            explode; tracking keeps ``max_candidates`` of them anyway.
        precision: ``"bf16"`` runs the 2D model's backbone and neck under CUDA autocast
            (bfloat16; the head stays float32), ``"fp32"`` all in full precision; on the CPU
            it is always fp32. The lifter runs in fp32.
    """

    pose2d: str = "rtmo-s"
    pose2d_weights: Optional[str] = "default"
    lifter: str = "motionbert"
    lifter_weights: Optional[str] = "default"
    batch_frames: int = 64
    device: Optional[str] = None
    batched: bool = True
    pipeline_threads: int = 4
    max_detections: int = 30
    precision: str = "bf16"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', got {self.precision!r}")
        if self.batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {self.batch_frames}")
        for field_, table in (("pose2d", MODELS_2D), ("lifter", LIFTERS)):
            value = getattr(self, field_)
            if value not in table and not value.endswith(".py"):
                raise ValueError(f"{field_} must be one of {sorted(table)} or an mmpose config file (.py), got {value!r}")


def import_mmpose():
    try:
        from mmpose import apis
    except ImportError as e:
        raise ImportError("the mmpose pose backend needs mmpose 1.3 and mmcv 2.1: "
                          "bash scripts/install_mmpose.sh (see the README)") from e
    return apis


def metafile_weights(config: str | Path) -> Optional[str]:
    """The checkpoint URL the mmpose metafiles beside ``config`` give for it (None if none)."""
    import yaml

    config = Path(config)
    for meta in sorted(config.parent.glob("*.yml")):
        doc = yaml.safe_load(meta.read_text()) or {}
        for entry in doc.get("Models", []) if isinstance(doc, dict) else []:
            if Path(str(entry.get("Config", ""))).name == config.name and entry.get("Weights"):
                return str(entry["Weights"])
    return None


def _resolve(name: str, weights: Optional[str], table: dict) -> tuple[str, Optional[str]]:
    """-> (config file, checkpoint path or URL or None)."""
    import mmpose

    if name in table:
        config = str(Path(mmpose.__file__).parent / ".mim" / "configs" / table[name])
    else:
        config = name
    if not Path(config).is_file():
        raise FileNotFoundError(f"mmpose config {config} not found")
    if weights is None or str(weights).lower() == "none":
        return config, None
    if weights == "default":
        url = metafile_weights(config)
        if url is None:
            raise ValueError(f"no checkpoint is listed for {config} in mmpose's metafiles: "
                             "give one as a local path or URL")
        return config, url
    return config, weights


def build_model(name: str, weights: Optional[str], table: dict, device: str):
    """``init_model`` with a clear message when a checkpoint cannot be fetched."""
    from multimodal_har.flow.raft import WeightsUnavailable

    apis = import_mmpose()
    config, checkpoint = _resolve(name, weights, table)
    if checkpoint is not None and not checkpoint.startswith(("http://", "https://")) and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    import socket

    previous = socket.getdefaulttimeout()
    # a machine whose outgoing packets are dropped would otherwise wait minutes per attempt
    socket.setdefaulttimeout(30.0)
    try:
        return apis.init_model(config, checkpoint, device=device)
    except Exception as e:
        if checkpoint is None or not checkpoint.startswith("http"):
            raise
        import torch.hub

        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsUnavailable(
            f"could not download the {name} checkpoint {checkpoint} ({type(e).__name__}: {e}). Offline: "
            f"download it on a machine with internet access and either put it in {cache} (mmengine's "
            f"cache) or pass the file (--pose2d-weights FILE / --lifter-weights FILE); "
            f"'none' builds random weights (tests only).") from e
    finally:
        socket.setdefaulttimeout(previous)


def _bf16_features(model) -> None:
    """Run ``model.extract_feat`` (backbone and neck, nearly all the FLOPs) under bfloat16
    autocast and hand float32 features to the head: RTMO's head decodes with ``.numpy()``,
    which has no bfloat16, and its coordinate decoding is better kept in float32."""
    import torch

    extract = model.extract_feat

    def extract_feat(inputs):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            feats = extract(inputs)
        return tuple(f.float() for f in feats)

    model.extract_feat = extract_feat


def _prefetch(frames, depth: int):
    """Decode in a background thread (FFmpeg releases the GIL) while the GPU works.

    If the consumer stops early (an error in the model), the thread stops too instead of
    waiting forever on a full queue with the video open.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for fr in frames:
                if not put(fr):
                    return
            put(done)
        except BaseException as e:  # a decoding error surfaces in the consumer
            put(e)

    threading.Thread(target=run, daemon=True).start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class MMPoseExtractor(PoseExtractor):
    """Runs in one process by default: on an H100, 4 processes sharing the GPU were slower
    than one (``benchmarks/README.md``); ``--workers`` changes it."""

    name = "mmpose"
    version = 1
    default_workers = 1
    config_class = MMPoseConfig
    layout = "h36m_17"
    layout2d = "coco_17"

    def __init__(self, *, config: Any = None) -> None:
        super().__init__(config=config)
        self._models = None

    # -- models ------------------------------------------------------------------------
    def device(self) -> str:
        import torch

        if self.config.device:
            return self.config.device
        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
        return "cpu"

    def models(self):
        if self._models is None:
            from mmcv.transforms import Compose

            cfg, dev = self.config, self.device()
            pose2d = build_model(cfg.pose2d, cfg.pose2d_weights, MODELS_2D, dev)
            pose2d.test_cfg["nms_pre"] = cfg.max_detections
            if cfg.batched:  # the baseline keeps mmpose's per-image decoding
                from .mmpose_rtmo import use_batched_decoding

                use_batched_decoding(pose2d.head)
            if cfg.precision == "bf16" and dev.startswith("cuda"):
                _bf16_features(pose2d)
            lifter = build_model(cfg.lifter, cfg.lifter_weights, LIFTERS, dev)
            self._models = (pose2d, lifter, Compose(pose2d.cfg.test_dataloader.dataset.pipeline),
                            Compose(lifter.cfg.test_dataloader.dataset.pipeline))
        return self._models

    # -- 2D ----------------------------------------------------------------------------
    def prepare_2d(self, image: np.ndarray) -> dict:
        """One ``(H, W, 3)`` RGB frame through the 2D model's test pipeline (resize, pad, pack)."""
        pose2d, _, pipeline, _ = self.models()
        return pipeline(dict(img=image[..., ::-1].copy(), **pose2d.dataset_meta))  # mmpose reads BGR

    def detect_2d(self, images: list[np.ndarray], pool: Optional[ThreadPoolExecutor] = None,
                  prepared: Optional[list] = None):
        """``(H, W, 3)`` RGB frames -> per frame ``(N, 17, 2)`` pixels and ``(N, 17)`` scores.

        ``prepared``: the frames' :meth:`prepare_2d` results (or futures of them) where the
        caller prepared them ahead, e.g. while the GPU ran the previous batch.
        """
        import torch
        from mmengine.dataset import pseudo_collate

        pose2d = self.models()[0]
        if not self.config.batched:
            from mmpose.apis import inference_bottomup

            samples = [inference_bottomup(pose2d, im[..., ::-1].copy())[0] for im in images]
        else:
            if prepared is not None:
                data = [p.result() if hasattr(p, "result") else p for p in prepared]
            elif pool is not None:
                data = list(pool.map(self.prepare_2d, images))
            else:
                data = [self.prepare_2d(im) for im in images]
            with torch.no_grad():
                samples = pose2d.test_step(pseudo_collate(data))
        out = []
        for s in samples:
            p = s.pred_instances
            xy = np.asarray(p.keypoints, dtype=np.float32).reshape(-1, V2D, 2)
            sc = np.clip(np.asarray(p.keypoint_scores, dtype=np.float32).reshape(-1, V2D), 0.0, 1.0)
            # a non-finite joint (seen with random weights) is an unseen joint, never stored
            bad = ~np.isfinite(xy).all(axis=-1) | ~np.isfinite(sc)
            xy[bad], sc[bad] = 0.0, 0.0
            keep = sc.max(axis=1, initial=0.0) > 0
            out.append((xy[keep], sc[keep]))
        return out

    # -- 3D ----------------------------------------------------------------------------
    def lift(self, xy: np.ndarray, score: np.ndarray) -> np.ndarray:
        """One person's 2D track ``(T, 17, 2)`` COCO pixels, ``(T, 17)`` -> ``(T, 17, 3)`` H36M, y up.

        As mmpose's ``Pose3DInferencer`` does: COCO joints become H36M joints
        (``convert_keypoint_definition``), and each frame's pose is moved and scaled from
        its own box to the mean box of the lifter's training set (``stats_info``), i.e.
        into the 1000-pixel Human3.6M image frame the lifter was trained in (hence
        ``camera_param`` 1000 x 1000). Frames where the person is absent take the nearest
        present frame's pose, so the temporal context is not fed zeros.

        Batched: MotionBERT (seq2seq) sees windows of 243 frames that each predict all
        their frames, VideoPose3D one centred window per frame; all windows of the video
        go through ``test_step`` together. Not batched: one frame per ``test_step``, as
        the inferencer runs MotionBERT (its test config has ``seq_len=1``).
        """
        import torch
        from mmengine.dataset import pseudo_collate
        from mmpose.apis import convert_keypoint_definition

        from multimodal_har.skeleton.tracking import boxes_from_keypoints

        _, lifter, _, pipeline = self.models()
        T = len(xy)
        present = score.max(axis=1) > 0
        if present.any() and not present.all():
            idx = np.arange(T)
            known = idx[present]
            nearest = known[np.abs(idx[:, None] - known[None, :]).argmin(axis=1)]
            xy, score = xy[nearest], score[nearest]
        # own box (around the confident joints, padded 1.25x like mmpose's top-down boxes)
        # -> the training set's mean box
        box = boxes_from_keypoints(xy, score, min_score=self.config.min_score)  # (T, 4)
        centre = (box[:, :2] + box[:, 2:]) / 2
        size = np.maximum((box[:, 2:] - box[:, :2]).max(axis=1), 1.0) * 1.25
        stats = lifter.dataset_meta.get("stats_info", {})
        if stats:
            xy = (xy - centre[:, None]) / size[:, None, None] * stats["bbox_scale"] + np.asarray(stats["bbox_center"]).reshape(1, 1, 2)
        kp = convert_keypoint_definition(xy.astype(np.float32), "coco", "h36m")  # (T, 17, 2)
        ds = lifter.cfg.test_dataloader.dataset
        seq2seq = bool(ds.get("multiple_target", 0))
        seq_len = int(ds.get("multiple_target", 0) or ds.get("seq_len", 1))
        windows, targets = [], []
        if not self.config.batched:
            windows = [kp[t:t + 1] for t in range(T)]
            targets = [np.array([t]) for t in range(T)]
        elif seq2seq:
            for s0 in range(0, T, seq_len):
                windows.append(kp[np.clip(np.arange(s0, s0 + seq_len), 0, T - 1)])  # tail padded by repetition
                targets.append(np.arange(s0, min(s0 + seq_len, T)))
        else:
            half = seq_len // 2
            for t in range(T):
                windows.append(kp[np.clip(np.arange(t - half, t + half + 1), 0, T - 1)])
                targets.append(np.array([t]))
        # the inputs Pose3DInferencer gives (no 3D target; factor 0 lets the codec pick its own)
        data = [pipeline(dict(keypoints=w, keypoints_visible=np.ones(w.shape[:2], np.float32),
                              lifting_target=np.zeros((len(w), V3D, 3), np.float32),
                              lifting_target_visible=np.ones((len(w), V3D, 1), np.float32),
                              factor=np.zeros((len(w),), np.float32), camera_param=dict(w=1000, h=1000),
                              **lifter.dataset_meta))
                for w in windows]
        out = np.zeros((T, V3D, 3), np.float32)
        step = (8 if seq2seq else self.config.batch_frames) if self.config.batched else 1
        for b in range(0, len(data), step):
            with torch.no_grad():
                res = lifter.test_step(pseudo_collate(data[b:b + step]))
            for k, r in enumerate(res):
                pred = np.asarray(r.pred_instances.keypoints, dtype=np.float32).reshape(-1, V3D, 3)
                tgt = targets[b + k]
                out[tgt] = pred[:len(tgt)] if len(pred) >= len(tgt) > 1 else pred[len(pred) // 2]
        return out * _FLIP

    # -- one video ---------------------------------------------------------------------
    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        cfg = self.config
        self.models()
        frames, batch, futures, meta = [], [], [], []
        size = (0, 0)
        with ThreadPoolExecutor(cfg.pipeline_threads) as pool:
            def flush():
                found = self.detect_2d(batch, pool, prepared=futures if cfg.batched else None)
                for (xy, sc), (t, i) in zip(found, meta):
                    frames.append(FramePeople(xy=xy, score2d=sc, time=t, index=i))  # 3D comes from lifting
                for lst in (batch, futures, meta):
                    lst.clear()

            def decoded():  # runs in the decoding thread: frames are prepared while the GPU works
                for fr in cfg.frames(path, threads):
                    yield fr, pool.submit(self.prepare_2d, fr.image) if cfg.batched else None

            for fr, fut in _prefetch(decoded(), 2 * cfg.batch_frames):
                size = fr.image.shape[:2]
                batch.append(fr.image)
                futures.append(fut)
                meta.append((fr.time, fr.index))
                if len(batch) == cfg.batch_frames:
                    flush()
            if batch:
                flush()
        return self.write_entry(out, frames, path=path, info=info, size=size, lift=self._lift_tracks,
                                extra_attrs={"backend": "mmpose", "pose2d": cfg.pose2d, "lifter": cfg.lifter,
                                             "random_weights": cfg.pose2d_weights is None or cfg.lifter_weights is None})

    def _lift_tracks(self, kp2d: np.ndarray, sc2d: np.ndarray, size=None) -> tuple[np.ndarray, np.ndarray]:
        """``(T, M, 17, 2)``, ``(T, M, 17)`` tracked 2D -> 3D ``(T, M, 17, 3)`` and scores."""
        from mmpose.apis import convert_keypoint_definition

        T, M = sc2d.shape[:2]
        xyz = np.zeros((T, M, V3D, 3), np.float32)
        score = np.zeros((T, M, V3D), np.float32)
        for m in range(M):
            present = sc2d[:, m].max(axis=1) > 0
            if not present.any():
                continue
            lifted = self.lift(kp2d[:, m], sc2d[:, m])  # (T, 17, 3)
            finite = np.isfinite(lifted).all(axis=-1)  # (T, 17)
            xyz[:, m] = np.where(finite[..., None], lifted, 0.0)
            # a lifted joint is as confident as the 2D joints it comes from (H36M from COCO)
            s = convert_keypoint_definition(np.concatenate([kp2d[:, m], sc2d[:, m, :, None]], -1),
                                            "coco", "h36m")[..., 2]  # (T, 17)
            score[:, m] = np.where(present[:, None] & finite, s, 0.0)
            xyz[~present, m] = 0.0
        return xyz, score
