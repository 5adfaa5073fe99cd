"""The public API: keyword-only functions that the CLI, the demo and the notebooks call."""

import inspect
import json
import re
from pathlib import Path

import pytest

from multimodal_har import api
from multimodal_har.cli import main
from multimodal_har.data.importers import IMPORTERS
from multimodal_har.data.store import FeatureStore
from tests.conftest import SHARED
from tests.multimodal_har.training_data import make_msr_store, tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_options_are_keyword_only():
    for name in ("extract", "import_dataset", "train", "evaluate", "ablate", "load_run", "experiment"):
        params = list(inspect.signature(getattr(api, name)).parameters.values())
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert len(positional) <= 1, f"api.{name}: {positional}"  # the one thing it acts on, then keywords


def test_train_evaluate_ablate(tmp_path):
    store = make_msr_store(tmp_path / "msr")
    cfg = tiny_config(store, tmp_path / "run", epochs=2)
    first = api.train(cfg, quiet=True)
    assert first["how"] == "trained" and first["epochs_done"] == 2
    assert json.loads((tmp_path / "run" / api.TRAIN_SUMMARY).read_text())["epochs_done"] == 2
    again = api.train(cfg, resume="auto", quiet=True)  # finished: not trained again
    assert again["how"] == "already trained: skipped" and again["best_val_top1"] == first["best_val_top1"]
    with pytest.raises(api.RunSettingsError, match="other settings"):
        api.train(cfg, resume="auto", overrides=["train.epochs=3"], quiet=True)
    with pytest.raises(ValueError, match="resume must be"):
        api.train(cfg, resume="yes")
    metrics = api.evaluate(tmp_path / "run", checkpoint="last", device="cpu")
    assert metrics["out_dir"] == str(tmp_path / "run" / "eval_test_last") and metrics["epoch"] == 2
    run = api.load_run(tmp_path / "run", checkpoint="last", device="cpu")
    assert api.evaluate(run)["top1"] == metrics["top1"]  # a loaded run is not read again
    report = api.ablate(tmp_path / "run", checkpoint="last", robustness=False, n_resamples=0, device="cpu")
    assert report.out_dir == tmp_path / "run" / "ablation_test" and "shapley.png" in report.files


def test_experiment_from_a_yaml_file_a_mapping_or_a_config(tmp_path):
    cfg = tiny_config(tmp_path / "store", tmp_path / "run")
    a = api.experiment(cfg, overrides=["train.epochs=7"])
    assert a.train.epochs == 7 and cfg["train"]["epochs"] == 3  # the mapping given is left as it was
    assert api.experiment(a).train.epochs == 7
    import yaml

    (tmp_path / "e.yaml").write_text(yaml.safe_dump(cfg))
    assert api.experiment(tmp_path / "e.yaml", overrides=["seed=3"]).seed == 3
    with pytest.raises(ValueError, match="config must be"):
        api.experiment(42)


def test_import_dataset_and_the_cli_share_one_registry(tmp_path, capsys):
    assert api.dataset_names() == IMPORTERS.names()
    src = SHARED / "skeleton" / "msr_action3d"
    files = tmp_path / "msr"
    files.mkdir()
    for f in sorted(src.glob("a01_s0[12]_e01_skeleton3D.txt")):
        (files / f.name).symlink_to(f)
    s = api.import_dataset("msr_action3d", src=files, store=tmp_path / "s", protocol_files_only=False)
    assert s["modalities"]["pose3d"]["ok"] == 2
    assert main(["import", "msr_action3d", str(files), str(tmp_path / "s")]) == 0
    assert "2 already done" in capsys.readouterr().out
    with pytest.raises(ValueError, match="valid choices: msr_action3d, ntu, pyskl, utd_mhad, utkinect"):
        api.import_dataset("kinetics", src=files, store=tmp_path / "s")


def test_extract_one_clip(tmp_path):
    clip = tmp_path / "clips"
    clip.mkdir()
    (clip / "tai_chi.mp4").symlink_to(api.SAMPLE_VIDEOS / "tai_chi.mp4")
    records = api.video_records(clip)
    assert [(r.id, r.label) for r in records] == [("tai_chi", "tai_chi")]  # no class folder: its own class
    summary = api.extract("rgb", videos=clip, store=tmp_path / "store", config={"short_side": 32, "fps": 2.0},
                          records=records, workers=1)
    assert summary.done == 1 and FeatureStore(tmp_path / "store").has("tai_chi", "rgb")
    with pytest.raises(ValueError, match="already built"):
        from multimodal_har.extractors import build_extractor

        api.extract(build_extractor("rgb"), videos=clip, store=tmp_path / "s2", config={"fps": 1.0})
    with pytest.raises(NotADirectoryError):
        api.extract("rgb", videos=tmp_path / "nope", store=tmp_path / "s3")


def test_the_cli_demo_and_notebooks_use_the_api():
    cli = (ROOT / "multimodal_har" / "cli.py").read_text()
    for fn in ("extract", "import_dataset", "train", "evaluate", "ablate"):
        assert f"api.{fn}(" in cli, fn
    demo = (ROOT / "multimodal_har" / "demo.py").read_text()
    assert "api.extract(" in demo and "api.train(" in demo and "api.evaluate(" in demo and "api.ablate(" in demo
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        from_demo = re.findall(r"from multimodal_har\.demo import ([^\n]+)", source)
        assert all(names.strip() == "run_demo" for names in from_demo), (nb.name, from_demo)  # its entry point only
        for private in ("multimodal_har.train import", "multimodal_har.evaluate import evaluate_run",
                        "multimodal_har.ablation_run import run_ablation", "importers import import_dataset"):
            assert private not in source, (nb.name, private)


def test_importing_the_api_does_not_import_torch():
    """`mhar extract` goes through the API: its memory bound (tests/extractors/test_rgb.py) has no room for torch."""
    import subprocess
    import sys

    code = "import sys, multimodal_har.api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
