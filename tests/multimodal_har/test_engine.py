"""The engine: safe checkpoint loading, checkpoint names, load_run (one read), prediction helpers."""

import json
import pickle

import numpy as np
import pytest
import torch

from multimodal_har.ablation_run import run_ablation
from multimodal_har.cli import main
from multimodal_har.engine import (Dist, Run, UnsafeCheckpointError, checkpoint_file, eval_loader, load_checkpoint,
                                   load_run, per_video, predict, rng_state, save_checkpoint, set_rng_state, to_device)
from multimodal_har.evaluate import eval_dir, evaluate_run
from multimodal_har.experiment import experiment_from_dict
from multimodal_har.train import train
from tests.multimodal_har.training_data import make_msr_store, tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    store = make_msr_store(root / "msr")
    run_dir = root / "run"
    train(experiment_from_dict(tiny_config(store, run_dir, epochs=2)), quiet=True)
    return run_dir


class _Touch:
    """Unpickling this runs code: it creates a file (a stand-in for a crafted checkpoint)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (self.path.__class__.touch, (self.path,))


def test_checkpoints_with_rng_states_load_with_weights_only(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "rng": [rng_state()], "epoch": 3, "metrics": {"val_top1": np.float64(0.5)},
             "classes": ["a", "b"], "dtype": np.dtype("float32")}
    save_checkpoint(state, tmp_path / "last.pt")
    back = load_checkpoint(tmp_path / "last.pt")
    assert back["epoch"] == 3 and back["classes"] == ["a", "b"] and torch.equal(back["model"]["w"], torch.ones(2))
    assert back["metrics"]["val_top1"] == 0.5 and back["dtype"] == np.float32
    np.testing.assert_array_equal(back["rng"][0]["numpy"][1], state["rng"][0]["numpy"][1])
    set_rng_state(back["rng"][0])  # usable as saved
    a = np.random.rand()
    set_rng_state(state["rng"][0])
    assert np.random.rand() == a


def test_a_crafted_checkpoint_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "payload": _Touch(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"evil.pt is not read: .*could run code") as e:
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    assert "touch" in str(e.value) or "Path" in str(e.value)  # names what the file asks for
    with open(tmp_path / "raw.pt", "wb") as f:  # a bare pickle (not a torch zip file) too
        pickle.dump(_Touch(marker), f, protocol=2)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(tmp_path / "raw.pt")
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_names_and_paths(run, tmp_path, capsys):
    assert checkpoint_file(run, "best") == ("best", run / "best.pt")
    assert checkpoint_file(run, "last") == ("last", run / "last.pt")
    assert checkpoint_file(run, run / "last.pt") == ("last", run / "last.pt")
    other = tmp_path / "epoch2.pt"
    other.write_bytes((run / "last.pt").read_bytes())
    assert checkpoint_file(run, str(other)) == ("epoch2", other)
    with pytest.raises(ValueError, match="one of best, last or the path of a .pt file, got 'newest'"):
        checkpoint_file(run, "newest")
    with pytest.raises(FileNotFoundError, match=r"has no checkpoint nope.pt \(it has: best.pt, last.pt\)"):
        checkpoint_file(run, tmp_path / "nope.pt")
    assert main(["evaluate", str(run), "--checkpoint", "newest"]) == 2  # the CLI says the same
    assert "one of best, last or the path of a .pt file" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--checkpoint", str(other), "--device", "cpu", "--quiet"]) == 0
    assert f"wrote {run / 'eval_test_epoch2'}" in capsys.readouterr().out


def test_load_run(run):
    r = load_run(run, checkpoint="last", device="cpu")
    assert isinstance(r, Run) and r.checkpoint == "last" and r.epoch == 2 and r.device == torch.device("cpu")
    assert r.modalities == ["joint", "bone", "motion"] and len(r.classes) == 4 and not r.model.training
    ck = load_checkpoint(run / "last.pt")
    for k, v in r.model.state_dict().items():
        assert torch.equal(v, ck["model"][k]), k
    best = load_run(run, device="cpu")
    assert best.checkpoint == "best" and best.metrics["epoch"] == best.epoch
    ds = r.dataset("test")
    batch = next(iter(r.loader(ds, 4)))
    assert len(batch["ids"]) == 4
    with pytest.raises(ValueError, match="split 'nope' .* has no"):
        r.dataset("nope")


def test_evaluation_folders_are_per_checkpoint(run, tmp_path):
    best = evaluate_run(run, split="test", checkpoint="best", device="cpu", quiet=True)
    last = evaluate_run(run, split="test", checkpoint="last", device="cpu", quiet=True)
    assert best["out_dir"] == str(eval_dir(run, "test", "best")) == str(run / "eval_test_best")
    assert last["out_dir"] == str(run / "eval_test_last")
    for name, s in (("best", best), ("last", last)):  # neither replaced the other
        meta = json.loads((run / f"eval_test_{name}" / "metrics.json").read_text())
        assert meta["checkpoint"] == name and meta["checkpoint_path"] == str(run / f"{name}.pt")
        assert meta["top1"] == s["top1"]
    other = tmp_path / "copy.pt"
    other.write_bytes((run / "last.pt").read_bytes())
    by_path = evaluate_run(load_run(run, checkpoint=other, device="cpu"), split="test", quiet=True)
    assert by_path["out_dir"] == str(run / "eval_test_copy") and by_path["top1"] == last["top1"]


def test_one_ablation_reads_the_checkpoint_once(run, monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval_*", "ablation_*"))
    reads = []
    real = torch.load

    def counting(f, *a, **kw):
        reads.append(str(f))
        return real(f, *a, **kw)

    monkeypatch.setattr(torch, "load", counting)
    run_ablation(copy, checkpoint="last", robustness=True, strengths=(0.0, 1.0), n_resamples=0, device="cpu",
                 quiet=True)  # evaluates (no logits yet), then the corruption curves and attention maps
    assert reads == [str(copy / "last.pt")]


def test_predict_gathers_in_dataset_order_and_per_video_means_windows(run):
    r = load_run(run, checkpoint="last", device="cpu")
    ds = r.dataset("test")
    loader = eval_loader(ds, 3, 0, Dist.local("cpu"))

    def fn(batch):
        batch = to_device(batch, r.device)
        return {"fused": r.model(batch["inputs"], batch["present"]).logits}

    ids, labels, starts, outs = predict(fn, loader, Dist.local("cpu"))
    assert ids == [ds[i]["id"] for i in range(len(ds))] and outs["fused"].shape == (len(ds), 4)
    assert labels.shape == starts.shape == (len(ds),)
    v_ids, v_labels, v_outs = per_video(["a", "a", "b"], np.array([1, 1, 0]),
                                        {"x": np.array([[0.0, 2.0], [2.0, 0.0], [1.0, 3.0]], np.float32)})
    assert v_ids == ["a", "b"] and v_labels.tolist() == [1, 0]
    np.testing.assert_allclose(v_outs["x"], [[1.0, 1.0], [1.0, 3.0]])
