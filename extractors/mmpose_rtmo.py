"""RTMO's test-time decoding for a whole batch at once (used by ``extractors.mmpose``).

mmpose's ``RTMOHead.predict`` (Lu et al., CVPR 2024) decodes the images of a batch one by
one: a score filter and top-k, a greedy NMS written as a Python loop (``nms_torch``, one
GPU sync per kept box), then the dynamic coordinate classifier (DCC) on that image's people.
On an H100 that loop took 21 ms per frame against 0.4 ms for the backbone and neck
(``benchmarks/README.md``). :func:`batched_predict` computes the same thing for all images
together:

* the score filter and top-``nms_pre`` per image as one masked ``topk``;
* NMS as one ``torchvision.ops.batched_nms`` with the image index as the class, which
  keeps the same boxes as ``nms_torch`` (both suppress a box whose IoU with a kept,
  higher-scoring box exceeds the threshold);
* the DCC on every kept person of the batch in one call (it treats people independently);
* one copy to the host, then the per-image ``InstanceData`` mmpose's estimator expects.

The forward pass, the priors, the box decoding and the DCC are mmpose's own methods;
``tests/extractors/test_mmpose.py`` checks this decoding against ``RTMOHead.predict``.
"""

from __future__ import annotations

import types

import torch


def use_batched_decoding(head) -> None:
    """Make ``head.predict`` (an ``RTMOHead``) decode the whole batch at once."""
    if type(head).__name__ != "RTMOHead":
        raise TypeError(f"batched decoding is written for RTMOHead, not {type(head).__name__}")
    head.predict = types.MethodType(batched_predict, head)


def batched_predict(head, feats, batch_data_samples, test_cfg: dict = {}):  # noqa: B006 (mmpose's signature)
    """``RTMOHead.predict`` for a whole batch: same inputs, same per-image ``InstanceData``."""
    from mmengine.structures import InstanceData
    from mmpose.structures.bbox import bbox_xyxy2cs
    from torchvision.ops import batched_nms

    cls_scores, bbox_preds, _, kpt_vis, pose_vecs = head.forward(feats)
    metas = [d.metainfo for d in batch_data_samples]
    featmap_sizes = [c.shape[2:] for c in cls_scores]
    if featmap_sizes != head.featmap_sizes:  # as RTMOHead.predict: priors cached per size
        head.mlvl_priors = head.prior_generator.grid_priors(featmap_sizes, dtype=cls_scores[0].dtype,
                                                            device=cls_scores[0].device)
        head.featmap_sizes = featmap_sizes
    priors = torch.cat(head.mlvl_priors)  # (N, 2)
    strides = torch.cat([priors.new_full((s.numel(),), st) for s, st in zip(featmap_sizes, head.featmap_strides)])
    scores = head._flatten_predictions(cls_scores).sigmoid()  # (B, N, classes)
    boxes = head.decode_bbox(head._flatten_predictions(bbox_preds), priors, strides)  # (B, N, 4)
    vis = head._flatten_predictions(kpt_vis).sigmoid()  # (B, N, K)
    vecs = head._flatten_predictions(pose_vecs)  # (B, N, C)

    B, N = scores.shape[:2]
    thr = test_cfg.get("score_thr", 0.01)
    k = min(int(test_cfg.get("nms_pre", 100000)), N)
    score, label = scores.max(dim=2)  # (B, N)
    top, anchor = score.masked_fill(score <= thr, -1.0).topk(k, dim=1)  # (B, k), best first
    img, j = (top > thr).nonzero(as_tuple=True)  # candidates of all images, (P,)
    anchor = anchor[img, j]
    cand_boxes, cand_scores = boxes[img, anchor], top[img, j]
    nms_thr = test_cfg.get("nms_thr", 1.0)
    if nms_thr < 1.0 and len(img):
        keep = batched_nms(cand_boxes, cand_scores, img, nms_thr)  # by score, all images mixed
    else:
        keep = torch.arange(len(img), device=img.device)
    keep = keep[torch.sort(img[keep], stable=True).indices]  # grouped by image, best first
    img, anchor = img[keep], anchor[keep]
    kept_boxes, kept_scores = cand_boxes[keep], cand_scores[keep]
    if len(img):
        bbox_cs = torch.cat(bbox_xyxy2cs(kept_boxes, head.bbox_padding), dim=1)
        keypoints = head.dcc.forward_test(vecs[img, anchor], bbox_cs, priors[anchor])  # (P, K, 2)
    else:
        keypoints = kept_boxes.new_zeros((0, head.num_keypoints, 2))
    kept_vis, kept_labels = vis[img, anchor], label[img, anchor]

    counts = torch.bincount(img, minlength=B).tolist()  # the one sync
    parts = [t.detach().float().cpu().numpy() if t.is_floating_point() else t.cpu().numpy()
             for t in (kept_scores, kept_labels, kept_boxes, keypoints, kept_vis)]
    results, start = [], 0
    for b, n in enumerate(counts):
        s, lab, bx, kp, v = (p[start:start + n] for p in parts)
        start += n
        w, h = metas[b]["input_size"]
        bx[:, 0::2] = bx[:, 0::2].clip(0, w)
        bx[:, 1::2] = bx[:, 1::2].clip(0, h)
        results.append(InstanceData(scores=s, labels=lab, bboxes=bx, bbox_scores=s, keypoints=kp,
                                    keypoint_scores=v, keypoints_visible=v))
    return results
