"""Quality of extracted poses on real videos, without ground truth: the fraction of frames
with a person and the temporal stability of the 3D bone lengths (coefficient of variation
per bone over the frames where both joints are seen; a rigid skeleton gives 0).

    mhar extract pose --backend mediapipe --videos ../shared/data/videos --store runs/pose
    python benchmarks/pose_quality.py runs/pose [--modality pose3d]
"""

from __future__ import annotations

import argparse

import numpy as np

from multimodal_har.data.store import FeatureStore
from multimodal_har.skeleton import get_layout
from multimodal_har.skeleton.quality import pose_quality


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store")
    ap.add_argument("--modality", default="pose3d")
    args = ap.parse_args()
    store = FeatureStore(args.store)
    print("| video | frames | with a person | median bone CV (slot 0) | worst bone (CV) |")
    print("| --- | --- | --- | --- | --- |")
    cvs = []
    for v in sorted(store.manifest.videos(), key=lambda v: v["id"]):
        if not store.has(v["id"], args.modality):
            continue
        data, attrs = store.read(v["id"], args.modality)
        q = pose_quality(data["keypoint"], data["score"], get_layout(str(attrs["layout"])))
        worst = max(q.bone_cv.items(), key=lambda kv: kv[1]) if q.bone_cv else ("-", float("nan"))
        cvs.append(q.median_bone_cv)
        print(f"| {v['id']} | {attrs['num_frames']} | {q.person_fraction:.3f} | {q.median_bone_cv:.3f} | "
              f"{worst[0]} ({worst[1]:.3f}) |")
    print(f"backend {attrs.get('backend', '?')}: median over videos of the median bone CV = {np.nanmedian(cvs):.3f}")


if __name__ == "__main__":
    main()
