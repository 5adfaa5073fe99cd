"""Killing ``mhar extract`` kills its worker processes: none outlives the parent or keeps
writing into the store after it, whether the parent gets SIGKILL (no handler runs) or SIGTERM
(as a launcher or ``kill`` sends it), and the next run finishes the job."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")

SMALL = ["tai_chi.mp4", "clean_and_jerk.mp4", "apply_eye_makeup_with_audio.avi", "cleaning_pool.mp4"]


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    for label in ("a", "b", "c"):
        (root / label).mkdir(parents=True)
        for name in SMALL:
            os.symlink(VIDEOS / name, root / label / name)
    return root


def _final_files(store_root: Path) -> list[Path]:
    return sorted(p for p in store_root.rglob("*.h5") if ".tmp" not in p.parts)


def _children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(p.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie runs no code


def _start_and_wait_for_workers(root: Path, store_root: Path) -> tuple[subprocess.Popen, list[int]]:
    cmd = [sys.executable, "-m", "multimodal_har.cli", "extract", "rgb", "--videos", str(root),
           "--store", str(store_root), "--workers", "2", "--no-progress", "--short-side", "32"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not _final_files(store_root):
        time.sleep(0.02)
    kids = _children(p.pid)
    assert p.poll() is None and len(kids) >= 2, "the kill should land while the workers run"
    return p, kids


def _survivors(kids: list[int], wait: float = 5.0) -> list[int]:
    deadline = time.time() + wait
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    left = [k for k in kids if _alive(k)]
    for k in left:  # do not leak them into the rest of the test session
        os.kill(k, signal.SIGKILL)
    return left


def _resume(root: Path, store_root: Path) -> FeatureStore:
    out = subprocess.run([sys.executable, "-m", "multimodal_har.cli", "extract", "rgb", "--videos", str(root),
                          "--store", str(store_root), "--workers", "2", "--no-progress", "--short-side", "32"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    store = FeatureStore(store_root)
    assert store.manifest.counts() == {"rgb": {"ok": 12}}
    assert len(_final_files(store_root)) == 12 and list(store.tmp_dir.iterdir()) == []
    return store


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_parent_kills_its_workers(tmp_path, sig):
    root, store_root = _folder(tmp_path), tmp_path / "store"
    p, kids = _start_and_wait_for_workers(root, store_root)
    p.send_signal(sig)  # the parent alone, not its process group
    p.wait(timeout=30)
    assert _survivors(kids) == [], f"workers outlived their parent after {sig.name}"
    if sig == signal.SIGTERM:  # unwound: the manifest was committed and its CSV view written
        assert p.returncode == 128 + signal.SIGTERM
        assert (store_root / "manifest.csv").is_file()
    files = {f: f.stat().st_mtime_ns for f in _final_files(store_root)}
    time.sleep(0.5)
    assert {f: f.stat().st_mtime_ns for f in _final_files(store_root)} == files, "the store changed after the kill"
    _resume(root, store_root)
