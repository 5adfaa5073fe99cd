"""``mhar demo``: the whole path on real bundled clips (quick sizes), resuming, skips said, and
the README's main-job block as ``.ci/run`` reads it."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from multimodal_har.cli import main
from multimodal_har.demo import (QUICK, SAMPLE_VIDEOS, DemoError, cached_raft, experiment_dict, plan_extraction,
                                 run_demo, train_or_resume, video_records)
from multimodal_har.info import backend_status

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ("tai_chi.mp4", "apply_eye_makeup_with_audio.avi", "demo_skeleton.mp4")  # short; one with audio


@pytest.fixture
def empty_torch_cache(tmp_path, monkeypatch):
    """torch's cache without any weights: the demo must not find (or download) any."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for name in CLIPS:
        os.symlink(SAMPLE_VIDEOS / name, root / name)
    return root


def test_bundled_samples_and_notice():
    videos = sorted(p.name for p in SAMPLE_VIDEOS.iterdir())
    assert len(videos) == 7
    notice = (SAMPLE_VIDEOS.parent / "NOTICE").read_text()
    assert all(name in notice for name in videos)  # every file has its source and licence
    records = video_records(SAMPLE_VIDEOS)
    assert [r.label for r in records] == [r.id for r in records]  # each clip its own class


def test_plan_says_what_it_replaces_or_skips(empty_torch_cache):
    steps, notes = plan_extraction(QUICK)
    names = [s.extractor for s in steps]
    assert names[0] == "rgb" and names[-1] == "audio"
    assert cached_raft() is None
    if backend_status("opencv")[0]:
        assert "dis" in names and any("RAFT weights are not in torch's cache" in n and "DIS" in n for n in notes)
    else:
        assert any(n.startswith("flow: skipped") for n in notes)
    assert ("mediapipe" in names) == backend_status("mediapipe")[0]
    assert ("mediapipe" in names) != any(n.startswith("pose: skipped") for n in notes)


def test_plan_uses_raft_when_its_weights_are_cached(empty_torch_cache):
    import torchvision.models.optical_flow as of

    url = of.Raft_Small_Weights.DEFAULT.url
    empty_torch_cache.mkdir(parents=True)
    (empty_torch_cache / Path(url).name).write_bytes(b"only its presence is read here")
    steps, notes = plan_extraction(QUICK)
    flow = next(s for s in steps if s.input == "flow")
    assert flow.extractor == "raft" and flow.config["model"] == "raft_small"
    assert not any(n.startswith("flow") for n in notes)


def test_quick_demo_end_to_end_and_resume(clips, tmp_path, empty_torch_cache, capsys):
    out = tmp_path / "demo"
    res = run_demo(out, videos=clips, quick=True, workers=1, quiet=True)
    mods = res.modalities
    assert mods[0] == "rgb" and "audio" in mods
    assert ("pose" in mods) == backend_status("mediapipe")[0]
    # what was skipped, and why
    assert "audio: 2 of 3 videos have no audio track (the model sees it as missing for them)" in res.notes
    assert any("ImageNet" in n and "random initialisation" in n for n in res.notes)
    # every stage's outputs
    for f in ("store/manifest.csv", "train_config.yaml", "run/best.pt", "run/train_summary.json",
              "run/eval_test_best/metrics.json", "run/eval_test_best/confusion.png", "ablation/ablation.json",
              "ablation/shapley.png", "ablation/subset_lattice.png", "ablation/robustness.png",
              "ablation/per_class.png", "demo.json"):
        assert (out / f).is_file(), f
    if "flow" in mods:
        assert (out / "preview_flow.png").is_file()
    # proportionate to a 2 MB store: the checkpoints of two whole ResNet-18s made it 354 MB
    size = sum(p.stat().st_size for p in (out / "run").rglob("*") if p.is_file())
    assert size < 40e6, f"{size / 1e6:.0f} MB"
    report = json.loads((out / "demo.json").read_text())
    assert report["classes"] == ["apply_eye_makeup_with_audio", "demo_skeleton", "tai_chi"]
    assert report["modalities"] == mods and report["notes"] == res.notes
    assert report["training"]["how"] == "trained" and report["training"]["epochs_done"] == QUICK.epochs
    assert report["test"]["count"] == 3 and set(report["shapley"]) == set(mods)
    assert sum(report["shapley"].values()) == pytest.approx(
        res.ablation.result.value[-1] - res.ablation.result.value[0], abs=1e-9)
    # the config it wrote is the one `mhar train --config` reads
    from multimodal_har.experiment import load_experiment

    assert load_experiment(out / "train_config.yaml").data.time_splits == {
        "train": [0.0, 0.6], "val": [0.6, 0.8], "test": [0.8, 1.0]}

    # run again: extraction skips every video, training is skipped
    capsys.readouterr()
    again = run_demo(out, videos=clips, quick=True, workers=1, quiet=False)
    printed = capsys.readouterr().out
    assert printed.count("3 already done") == len([s for s in plan_extraction(QUICK)[0]])
    assert "already trained: skipped" in printed and "skipped / changed: audio: 2 of 3" in printed
    assert again.metrics["top1"] == res.metrics["top1"]

    # an interrupted run (no train_summary.json yet) is resumed from last.pt
    cfg = experiment_dict(out / "store", out / "run", {m: {"pose": "pose3d"}.get(m, m) for m in mods}, QUICK)
    (out / "run" / "train_summary.json").unlink()
    summary, how = train_or_resume(cfg, quiet=True)
    assert how == "resumed from last.pt" and summary["epochs_done"] == QUICK.epochs

    # other settings in the same folder: a clear error, nothing overwritten
    cfg["train"]["epochs"] += 1
    with pytest.raises(DemoError, match="other settings"):
        train_or_resume(cfg, quiet=True)


def test_cli_errors(tmp_path, capsys):
    assert main(["demo", "--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    one = tmp_path / "one"
    one.mkdir()
    os.symlink(SAMPLE_VIDEOS / "tai_chi.mp4", one / "tai_chi.mp4")
    assert main(["demo", "--videos", str(one), "--out", str(tmp_path / "o")]) == 1
    assert "at least two videos" in capsys.readouterr().err


def test_readme_main_job_is_the_demo():
    """``.ci/run`` reads the block after ``<!-- ci:main -->`` with its own awk function: run
    that very function on the README."""
    ci = (ROOT / ".ci" / "run").read_text()
    block_fn = re.search(r"^block\(\) \{.*?^\}", ci, re.S | re.M).group(0)
    cmd = subprocess.run(["bash", "-c", f"{block_fn}\nblock main"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert cmd == "mhar demo --out runs/demo"
