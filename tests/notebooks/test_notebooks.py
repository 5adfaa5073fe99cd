"""The four notebooks run top to bottom, headless (nbclient), with small parameters.

Parameters are injected as papermill does: a cell after the one tagged ``parameters``
overrides its values. The notebooks run in order in one temporary folder: 01 writes a store of
three bundled clips, 02 trains on it, 03 ablates 02's run; 04 imports a few actions of two
UTD-MHAD subjects and trains, compares and ablates on them. Nothing is written next to the
notebooks (the executed copies go to the temporary folder, for inspection).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import SHARED

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("01_extract.ipynb", "02_train_fusion.ipynb", "03_ablation.ipynb", "04_real_multimodal.ipynb")
CLIPS = ["tai_chi", "apply_eye_makeup_with_audio", "demo_skeleton"]  # short; one has audio
TIMEOUT = 300  # seconds per cell: a hung kernel fails the test instead of the suite


def execute(name: str, workdir: Path, params: dict) -> tuple[nbformat.NotebookNode, float]:
    """Run notebook ``name`` in ``workdir`` with ``params`` injected; returns it executed and
    the seconds it took. A failing cell raises ``CellExecutionError`` with its traceback."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "# injected by the test\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, workdir / f"executed_{name}")
    return nb, time.perf_counter() - t0


def text_output(nb) -> str:
    """Everything the code cells printed or returned as text."""
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.output_type == "stream":
                parts.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def extracted(workdir):
    return execute("01_extract.ipynb", workdir, {
        "VIDEO_IDS": CLIPS, "STORE": "store", "FIGURES": "figures", "SHORT_SIDE": 64, "FPS": 4.0, "WORKERS": 1})


@pytest.fixture(scope="module")
def trained(workdir, extracted):
    return execute("02_train_fusion.ipynb", workdir, {
        "STORE": "store", "RUN_DIR": "run", "EPOCHS": 2, "CROP": 48, "SEGMENTS": 2, "WINDOWS": 2, "BATCH_SIZE": 6})


@pytest.fixture(scope="module")
def ablated(workdir, trained):
    return execute("03_ablation.ipynb", workdir, {"RUN": "run", "N_RESAMPLES": 100, "STRENGTHS": [0.0, 1.0]})


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs_and_models(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: clear the outputs"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    source = "\n".join(c.source for c in code)
    defines = re.search(r"^\s*class\s+\w+|nn\.Module|torch\.nn", source, re.M)
    assert defines is None, f"{name} must import its models, not define them: {defines}"


def test_01_extract(extracted, workdir):
    nb, seconds = extracted
    out = text_output(nb)
    assert "3 videos from" in out and "modalities in the store" in out
    store = workdir / "store"
    assert (store / "manifest.csv").is_file()
    for m in ("rgb", "audio"):
        assert (store / m).is_dir()
    figures = {p.name for p in (workdir / "figures").glob("01_*.png")}
    assert "01_spectrograms.png" in figures  # apply_eye_makeup has a track
    if (store / "flow").is_dir():
        assert "01_flow.png" in figures
    if (store / "pose3d").is_dir():
        assert any(f.startswith("01_pose_") for f in figures)
    assert images(nb) >= 2  # figures shown inline too
    assert "<table>" in "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))
    print(f"01_extract: {seconds:.1f} s")


def test_02_train_fusion(trained, workdir):
    nb, seconds = trained
    run = workdir / "run"
    for f in ("config.yaml", "best.pt", "last.pt", "metrics.jsonl", "curves.png", "eval_test_best/confusion.png",
              "eval_test_best/logits.npz", "eval_test_best/metrics.json"):
        assert (run / f).is_file(), f
    printed = [line for line in text_output(nb).splitlines() if line.startswith('{"count"')]
    metrics = json.loads(printed[-1])  # the metrics dict the notebook prints
    assert metrics["count"] == 3 and 0.0 <= metrics["top1"] <= 1.0
    assert len([json.loads(line) for line in open(run / "metrics.jsonl")]) == 2
    assert "best.pt: epoch" in text_output(nb)  # the run loaded back (api.load_run)
    print(f"02_train_fusion: {seconds:.1f} s")


def test_03_ablation(ablated, workdir):
    nb, seconds = ablated
    out_dir = workdir / "run" / "ablation_test"
    for f in ("ablation.json", "shapley.png", "subset_lattice.png", "per_class.png", "robustness.png",
              "confusion.png", "shapley.csv"):
        assert (out_dir / f).is_file(), f
    report = json.loads((out_dir / "ablation.json").read_text())
    summary = json.loads(next(o.text for c in nb.cells for o in c.get("outputs", [])
                              if o.output_type == "stream" and o.text.lstrip().startswith('{\n "modalities"')))
    assert summary["modalities"] == report["modalities"]
    # efficiency of the Shapley values: they add up to v(all) - v(none)
    assert sum(summary["shapley"].values()) == pytest.approx(summary["full_set_top1"] - summary["chance"], abs=1e-3)
    assert images(nb) >= 5
    print(f"03_ablation: {seconds:.1f} s")


@pytest.fixture(scope="module")
def real_multimodal(workdir):
    repo = NOTEBOOKS.parent
    return execute("04_real_multimodal.ipynb", workdir, {
        "SRC": str(SHARED / "utd_mhad_train"), "STORE": "utd_store", "CONFIG": str(repo / "configs/utd_mhad_fusion.yaml"),
        "RUNS": "utd_runs", "SUBJECTS": [1, 7], "ACTIONS": [1, 2, 3, 4], "TRAIN_SUBJECTS": [1], "TEST_SUBJECTS": [7],
        "EPOCHS": 2, "FUSION_EPOCHS": 1, "METHODS": ["late_poe", "cross_attention"], "DEVICE": "cpu",
        "N_RESAMPLES": 50, "RESULTS": str(repo / "benchmarks/results/fusion_real_2026-12-04.json")})


def test_04_real_multimodal(real_multimodal, workdir):
    nb, seconds = real_multimodal
    out = text_output(nb)
    assert "utd_mhad: 32 samples" in out  # 4 actions x 2 subjects x 4 trials
    printed = json.loads(next(line for line in out.splitlines() if line.startswith('{"count"')))
    assert printed["count"] == 16  # subject 7's 4 trials of 4 actions
    assert set(printed["top1"]) == {"skeleton (ST-GCN)", "inertial (TCN)", "product of the two", "late_poe",
                                    "cross_attention"}
    assert "init_from pose: encoder of" in (workdir / "utd_runs" / "late_poe" / "train.log").read_text()
    assert "slow" in out and "product" in out  # the GPU benchmark's table
    reliability = json.loads(out[out.index('{\n "run"'):].split("\n}\n")[0] + "\n}")["reliability"]
    assert reliability["reliable"] is True
    assert images(nb) >= 3
    print(f"04_real_multimodal: {seconds:.1f} s")
