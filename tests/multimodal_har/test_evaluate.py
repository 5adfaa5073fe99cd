"""`mhar evaluate`: metrics by hand, per-video aggregation, and the files of a real run."""

import json

import numpy as np
import pytest
import torch

from multimodal_har.cli import main
from multimodal_har.data.dataset import StoreDataset
from multimodal_har.evaluate import classification_metrics, per_class_report, per_video
from multimodal_har.experiment import build_model, experiment_from_dict, load_run_config
from multimodal_har.engine import load_checkpoint
from multimodal_har.train import train
from tests.multimodal_har.training_data import make_msr_store, tiny_config


def test_metrics_by_hand():
    logits = np.array([[3, 2, 1, 0, -1, -2],   # true 0: top-1 right
                       [0, 1, 2, 3, 4, 5],     # true 0: rank 6, outside the top-5
                       [0, 5, 1, 2, 3, 4],     # true 1: right
                       [5, 4, 3, 2, 1, 0],     # true 2: rank 3
                       [0, 0, 0, 0, 0, 9]], dtype=np.float32)  # unlabelled: ignored
    labels = np.array([0, 0, 1, 2, -1])
    m = classification_metrics(logits, labels, 6)
    assert m["count"] == 4 and m["top1"] == 0.5 and m["top5"] == 0.75
    assert m["mean_class_accuracy"] == pytest.approx((0.5 + 1 + 0) / 3)  # classes without samples left out
    assert m["confusion"][0].tolist() == [1, 0, 0, 0, 0, 1] and m["confusion"][2, 0] == 1
    lp = torch.log_softmax(torch.tensor(logits[:4], dtype=torch.float64), 1)
    assert m["loss"] == pytest.approx(float(-lp[torch.arange(4), torch.tensor(labels[:4])].mean()))
    rows = per_class_report(m["confusion"], list("abcdef"))
    assert rows[0] == {"class": "a", "index": 0, "support": 2, "correct": 1, "accuracy": 0.5,
                       "precision": 0.5, "f1": 0.5}
    assert np.isnan(rows[3]["accuracy"]) and rows[2]["f1"] == 0.0
    assert classification_metrics(logits[:, :3], np.array([0, 1, 2, 0, 1]), 3)["top5"] == 1.0  # top-min(5, C)


def test_per_video_means_the_windows():
    ids, labels = ["a", "b", "a", "b", "c"], np.array([0, 1, 0, 1, 2])
    outs = {"x": np.array([[1, 0], [0, 2], [3, 0], [0, 4], [5, 5]], dtype=np.float32)}
    v_ids, v_labels, v_outs = per_video(ids, labels, outs)
    assert v_ids == ["a", "b", "c"] and v_labels.tolist() == [0, 1, 2]
    assert v_outs["x"].tolist() == [[2, 0], [0, 3], [5, 5]]
    assert per_video(["a", "b"], labels[:2], {"x": outs["x"][:2]})[2]["x"] is not None


def test_evaluate_a_trained_run(tmp_path, capsys):
    import yaml

    store = make_msr_store(tmp_path / "msr")
    run = tmp_path / "run"
    train(experiment_from_dict(tiny_config(store, run, epochs=2)), quiet=True)
    assert main(["evaluate", str(run), "--split", "test", "--checkpoint", "last", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "joint+bone+motion" in out
    ev = run / "eval_test_last"
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["checkpoint"] == "last" and metrics["epoch"] == 2
    assert list(metrics["subsets"]) == ["joint", "bone", "motion", "joint+bone", "joint+motion", "bone+motion",
                                        "joint+bone+motion"]
    assert (ev / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((ev / "per_class.csv").read_text().splitlines()) == 1 + 4
    assert len(json.loads((ev / "per_class.json").read_text())) == 4
    z = np.load(ev / "logits.npz")
    n = metrics["count"]
    assert z["ids"].shape == (n,) and z["labels"].shape == (n,) and list(z["modalities"]) == ["joint", "bone", "motion"]
    for key in metrics["subsets"]:
        assert z[key].shape == (n, 4) and np.isfinite(z[key]).all()
    assert (z["joint+bone+motion"].argmax(1) == z["labels"]).mean() == pytest.approx(metrics["top1"])
    # the saved subset logits are the model's forward_subset on the same samples
    cfg = load_run_config(run)
    model = build_model(cfg.model, 4)
    model.load_state_dict(load_checkpoint(run / "last.pt")["model"])
    model.eval()
    ds = StoreDataset(cfg.data, "test", train=False, classes=cfg.classes)
    batch = ds.collate([ds[i] for i in range(3)])
    assert list(z["ids"][:3]) == batch["ids"]
    with torch.no_grad():
        ref = model.forward_subset(batch["inputs"], batch["present"], modalities=("bone", "motion")).logits
    np.testing.assert_allclose(z["bone+motion"][:3], ref.numpy(), rtol=1e-4, atol=1e-5)
    # a missing checkpoint or run is a clear error
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert yaml.safe_load((run / "config.yaml").read_text())["classes"] == cfg.classes
