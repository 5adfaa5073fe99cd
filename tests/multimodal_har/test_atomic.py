"""atomic_path: the target is the old file or the complete new one, and no temp file stays."""

import os
import subprocess
import sys

import pytest

from multimodal_har.atomic import atomic_path, atomic_write_text, sweep_stale


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "sub" / "report.json"
    atomic_write_text(target, "old")
    assert target.read_text() == "old"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    with atomic_path(target, durable=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]  # no temp file left


def test_sweep_stale_removes_what_dead_processes_left(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".last.pt.{dead}.tmp").write_bytes(b"x" * 100)  # a killed writer's
    (tmp_path / f".best.pt.{os.getppid()}.tmp").write_bytes(b"x")  # a running process's
    (tmp_path / "keep.tmp").write_text("not ours")
    assert [p.name for p in sweep_stale(tmp_path)] == [f".last.pt.{dead}.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".best.pt.{os.getppid()}.tmp", "keep.tmp"]
