"""The three packages import without optional extras and without heavy libraries."""

import subprocess
import sys

HEAVY = ("torch", "torchvision", "av", "librosa", "h5py", "cv2", "mediapipe", "mmpose", "ptlflow", "torch_geometric")


def test_import_is_light():
    code = (
        "import sys, multimodal_har, extractors, fusion, multimodal_har.data, multimodal_har.cli, "
        "multimodal_har.registry, multimodal_har.config;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_registries_list_their_choices():
    import extractors

    assert {"rgb", "audio"} <= set(extractors.list_extractors())
