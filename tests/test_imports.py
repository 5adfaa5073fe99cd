"""The three packages import without optional extras and without heavy libraries."""

import subprocess
import sys

HEAVY = ("torch", "torchvision", "av", "librosa", "h5py", "cv2", "mediapipe", "mmpose", "ptlflow", "torch_geometric")


def test_import_is_light():
    code = (
        "import sys, multimodal_har, multimodal_har.extractors, multimodal_har.fusion, multimodal_har.data, multimodal_har.cli, "
        "multimodal_har.registry, multimodal_har.config;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_registries_list_their_choices():
    from multimodal_har import extractors

    assert {"rgb", "audio"} <= set(extractors.list_extractors())


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_installed_top_level_is_the_one_namespace(tmp_path):
    """The editable install (the README's) exposes multimodal_har only: ``extractors`` and
    ``fusion`` are importable as multimodal_har.extractors / .fusion, not under their own names
    (both are taken on the package index; pip would overwrite one with the other)."""
    code = ("import importlib.util as u, multimodal_har.extractors as e, multimodal_har.fusion as f;"
            "print(u.find_spec('extractors'), u.find_spec('fusion'), e.EXTRACTORS.names()[:1], f.FUSION.names()[:1])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["None", "None"], out.stdout


def test_regular_install_has_one_top_level_package(tmp_path):
    """A regular (non-editable) install puts one package into site-packages, and every source
    folder with an ``__init__.py`` is installed inside it."""
    import shutil

    import pytest

    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    for name in ("multimodal_har", "extractors", "fusion"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "videos"))
    sources = {p.parent.relative_to(src) for p in src.rglob("__init__.py")}
    expected = {("multimodal_har" / s) if s.parts[0] != "multimodal_har" else s for s in sources}
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-compile", "--target", str(target), str(src)], check=True, capture_output=True)
    top = sorted(p.name for p in target.iterdir() if p.name != "bin" and not p.name.endswith(".dist-info"))
    assert top == ["multimodal_har"]
    installed = {p.parent.relative_to(target) for p in (target / "multimodal_har").rglob("__init__.py")}
    assert installed == expected
