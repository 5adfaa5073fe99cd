"""`mhar train` on a tiny real store (MSR Action3D skeletons as joint / bone / motion streams)."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from multimodal_har.cli import main
from multimodal_har.experiment import experiment_from_dict
from multimodal_har.engine import load_checkpoint, save_checkpoint
from multimodal_har.train import Trainer, TrainingError, modality_dropout, train, warmup_cosine
from tests.multimodal_har.training_data import MSR, make_msr_store, tiny_config


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"))


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_gives_the_same_weights_and_metrics(store, tmp_path):
    full = experiment_from_dict(tiny_config(store, tmp_path / "full"))
    out = train(full, quiet=True)
    assert out["epochs_done"] == 3 and out["status"] == "completed"
    cut = experiment_from_dict(tiny_config(store, tmp_path / "cut"))
    assert train(cut, quiet=True, stop_after=2)["epochs_done"] == 2
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    resumed = experiment_from_dict(tiny_config(store, tmp_path / "cut"))
    assert train(resumed, resume=True, quiet=True)["epochs_done"] == 3
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])
    drop = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert drop(metrics(tmp_path / "full")) == drop(metrics(tmp_path / "cut"))
    assert [r["epoch"] for r in metrics(tmp_path / "cut")] == [1, 2, 3]
    # the run directory: resolved config with the classes, checkpoints, logs
    saved = (tmp_path / "full" / "config.yaml").read_text()
    assert "classes:" in saved and "high arm wave" in saved
    assert (tmp_path / "full" / "best.pt").is_file()
    events = list((tmp_path / "full" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0  # TensorBoard scalars written
    # a run directory that holds a run is not overwritten without --resume
    with pytest.raises(TrainingError, match="already holds a run.*--resume"):
        train(experiment_from_dict(tiny_config(store, tmp_path / "full")), quiet=True)


def test_resume_hides_the_killed_runs_tensorboard_events_past_the_checkpoint(store, tmp_path):
    """A run resumed from an older ``last.pt`` (as after a kill between logging an epoch and
    saving it, or in the middle of an epoch) trains those epochs again: TensorBoard shows each
    epoch and each step once (the writers open with ``purge_step``), as metrics.jsonl does."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    cfg = tiny_config(store, run)
    # TensorBoard orders a folder's event files by name: whole seconds, then a per-process
    # counter compared as text. Resumes are separate, later processes in practice; in one test
    # process, a second apart keeps the files in the order they were written.
    train(experiment_from_dict(cfg), quiet=True, stop_after=1)
    shutil.copy(run / "last.pt", tmp_path / "epoch1.pt")
    time.sleep(1.1)
    train(experiment_from_dict(cfg), resume=True, quiet=True, stop_after=2)
    shutil.copy(tmp_path / "epoch1.pt", run / "last.pt")  # back to epoch 1: epoch 2 is trained again
    time.sleep(1.1)
    train(experiment_from_dict(cfg), resume=True, quiet=True)

    def steps(folder, tag):
        return [e.step for e in EventAccumulator(str(folder)).Reload().Scalars(tag)]

    assert steps(run / "tensorboard", "train_loss") == [1, 2, 3]
    losses = steps(run / "tensorboard" / "steps", "train/loss_step")  # log_every 1: every step once
    assert losses == list(range(1, len(losses) + 1)) and len(losses) % 3 == 0
    assert [r["epoch"] for r in metrics(run)] == [1, 2, 3]


def test_two_stage_training_with_frozen_encoders(store, tmp_path):
    cfg = tiny_config(store, tmp_path / "run", epochs=1, pretrain_epochs=1, freeze_encoders=True)
    train(experiment_from_dict(cfg), quiet=True, stop_after=1)  # stage 1 only
    stage1 = load_checkpoint(tmp_path / "run" / "last.pt")
    assert stage1["stage"] == 1 and "pretrain_heads" in stage1
    train(experiment_from_dict(cfg), resume=True, quiet=True)  # stage 2 from the checkpoint
    stage2 = load_checkpoint(tmp_path / "run" / "last.pt")
    rows = metrics(tmp_path / "run")
    assert [r["stage"] for r in rows] == [1, 2]
    assert {"val_top1_joint", "val_top1_bone", "val_top1_motion"} <= set(rows[0]) and "val_top1" in rows[1]
    enc = [k for k in stage1["model"] if k.startswith("encoders.")]
    head = [k for k in stage1["model"] if k.startswith("fusion.")]
    assert enc and head
    for k in enc:  # frozen: weights and batch-norm statistics unchanged by stage 2
        assert torch.equal(stage1["model"][k], stage2["model"][k]), k
    assert any(not torch.equal(stage1["model"][k], stage2["model"][k]) for k in head)
    # stage 1 moved the encoders away from their initialisation
    fresh = Trainer(experiment_from_dict(tiny_config(store, tmp_path / "other")), quiet=True).model.state_dict()
    assert any(not torch.equal(fresh[k], stage1["model"][k]) for k in enc if k.endswith("weight"))


def test_non_finite_loss_names_epoch_step_and_samples(store, tmp_path):
    def nan_logits(module, args, out):
        return out._replace(embedding=out.embedding * float("nan"), logits=out.logits * float("nan"))

    trainer = Trainer(experiment_from_dict(tiny_config(store, tmp_path / "a", epochs=1)), quiet=True)
    trainer.model.fusion.register_forward_hook(nan_logits)
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 1, step 1 .*samples of the batch: "
                                            r"\['msr_action3d/a0.*train.max_bad_batches"):
        trainer.fit()
    trainer = Trainer(experiment_from_dict(tiny_config(store, tmp_path / "b", epochs=1, max_bad_batches=10)),
                      quiet=True)
    trainer.model.fusion.register_forward_hook(nan_logits)
    trainer.fit()
    assert metrics(tmp_path / "b")[0]["skipped_batches"] == 3  # 12 samples, batches of 4
    assert "skipped: non-finite loss" in (tmp_path / "b" / "train.log").read_text()


def test_early_stopping(store, tmp_path):
    cfg = experiment_from_dict(tiny_config(store, tmp_path / "run", epochs=5, lr=1e-9, early_stop_patience=1))
    out = train(cfg, quiet=True)
    assert out["epochs_done"] == 2 and out["status"].startswith("early stop")
    assert load_checkpoint(tmp_path / "run" / "last.pt")["bad_epochs"] == 1


def test_bad_inputs_fail_before_training(store, tmp_path):
    cfg = tiny_config(store, tmp_path / "run")
    cfg["data"]["modalities"]["joint"]["source"] = "rgb"
    with pytest.raises(ValueError, match="has no modality 'rgb' .*it has: pose3d"):
        train(experiment_from_dict(cfg), quiet=True)
    assert not (tmp_path / "run" / "last.pt").exists()
    cfg = tiny_config(store, tmp_path / "run")
    cfg["model"]["encoders"]["rgb"] = cfg["model"]["encoders"].pop("motion")
    with pytest.raises(ValueError, match="model.encoders are for modalities .*'rgb'.* but data.modalities gives"):
        train(experiment_from_dict(cfg), quiet=True)
    cfg = tiny_config(store, tmp_path / "run", classes=["a", "b"])
    cfg["classes"] = cfg["train"].pop("classes")
    with pytest.raises(ValueError, match="classes the train split does not"):
        train(experiment_from_dict(cfg), quiet=True)


def test_a_class_missing_from_training_stops_before_training(tmp_path):
    """'hammer' (action 3) performed only by test subject 2: it used to train to the end and
    fail at `mhar evaluate`."""
    from multimodal_har.data.store import FeatureStore
    from multimodal_har.skeleton.datasets import add_to_store, read_msr_action3d

    root = make_msr_store(tmp_path / "msr", actions=(1, 2), subjects=(1, 2, 3, 4), episodes=(1,))
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "a03_s02_e01_skeleton3D.txt").symlink_to(MSR / "a03_s02_e01_skeleton3D.txt")
    add_to_store(FeatureStore(root), read_msr_action3d(extra), dataset="msr_action3d")
    with pytest.raises(ValueError, match=r"split 'test' has classes with no training sample: \['hammer'\]"):
        train(experiment_from_dict(tiny_config(root, tmp_path / "run", epochs=1)), quiet=True)
    assert not (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "metrics.jsonl").exists()
    # a class only `classes` names (no split to evaluate it on): trained, with a warning in the log
    cfg = tiny_config(root, tmp_path / "run", epochs=1)
    cfg["data"]["test_split"] = "test_b"
    cfg["classes"] = ["hammer", "high arm wave", "horizontal arm wave"]
    train(experiment_from_dict(cfg), quiet=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "warning: classes ['hammer'] of `classes` have no training sample" in log


def test_a_modality_with_no_usable_entry_is_an_error(tmp_path):
    """Every training video's 'imu' entry failed: the stream would train as all-missing, silently."""
    from multimodal_har.data.store import FeatureStore

    root = make_msr_store(tmp_path / "msr", actions=(1, 2), subjects=(1, 3), episodes=(1, 2))
    m = FeatureStore(root).manifest
    for v in m.videos():
        m.record(v["id"], "imu", status="failed", error="sensor file unreadable")
    m.commit()
    cfg = tiny_config(root, tmp_path / "run", streams=("joint",))
    cfg["data"]["modalities"]["imu"] = {"kind": "signal", "rate_hz": 50.0}
    cfg["model"]["encoders"]["imu"] = {"name": "signal", "kwargs": {"in_channels": 6}}
    with pytest.raises(ValueError, match=r"data.modalities.imu: no training video has a usable 'imu' entry "
                                         r"\(6 videos; the store's 'imu' entries: 8 failed\)"):
        train(experiment_from_dict(cfg), quiet=True)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_cli_train_with_overrides(store, tmp_path, capsys):
    import yaml

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(store, tmp_path / "ignored"), sort_keys=False))
    run = tmp_path / "run"
    assert main(["train", "--config", str(path), "--quiet", "--run-dir", str(run), "--set", "train.epochs=1",
                 "--set", "model.fusion.name=concat"]) == 0
    assert "best validation top-1" in capsys.readouterr().out
    assert [r["epoch"] for r in metrics(run)] == [1]
    assert "name: concat" in (run / "config.yaml").read_text()
    assert main(["train", "--config", str(path), "--set", "train.lr_max=1"]) == 2
    assert "unknown key(s) ['lr_max'] in train" in capsys.readouterr().err


def test_schedule_dropout_and_atomic_save(tmp_path):
    f = warmup_cosine(total_steps=10, warmup_steps=2, min_ratio=0.1)
    assert [round(f(s), 4) for s in (0, 1, 2)] == [0.5, 1.0, 1.0] and f(10) == pytest.approx(0.1)
    assert f(6) == pytest.approx(0.1 + 0.9 * 0.5)
    torch.manual_seed(0)
    present = torch.tensor([[True, True, True]] * 200 + [[True, False, False]] * 10)
    out = modality_dropout(present, 1.0)
    assert (out[:200].sum(1) >= 1).all() and (out[:200].sum(1) <= 2).all()  # non-empty proper subsets
    assert out[200:].equal(present[200:])  # one modality: nothing to drop
    assert not (out & ~present).any()
    assert len({tuple(r) for r in out[:200].tolist()}) == 6  # every proper subset drawn
    assert modality_dropout(present, 0.0) is present
    save_checkpoint({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert torch.load(tmp_path / "x.pt")["a"].sum() == 2 and os.listdir(tmp_path) == ["x.pt"]


def _torchrun(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "multimodal_har.cli", "train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_ddp_two_gloo_processes_match_one_process(store, tmp_path):
    """2 processes x 2 samples = 1 process x 4: the same global batches (EpochSampler shards one
    permutation), averaged gradients; batch norm differs (per-process statistics), hence the tolerance."""
    import yaml

    from tests.conftest import ROOT

    cfg = tiny_config(store, tmp_path / "one", epochs=2, modality_dropout=0.0, batch_size=4)
    one = train(experiment_from_dict(cfg), quiet=True)
    cfg["run_dir"] = str(tmp_path / "two")
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    res = _torchrun(["--config", str(path), "--quiet"], ROOT, env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("best validation top-1") == 1  # rank 0 only
    two = metrics(tmp_path / "two")
    assert [r["epoch"] for r in two] == [1, 2]
    for a, b in zip(metrics(tmp_path / "one"), two):
        assert abs(a["val_top1"] - b["val_top1"]) <= 0.25 and abs(a["val_loss"] - b["val_loss"]) < 0.1
        assert abs(a["train_loss"] - b["train_loss"]) < 0.1
    ck1, ck2 = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert ck2["world_size"] == 2 and len(ck2["rng"]) == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]
    diffs = [float((ck1["model"][k].float() - ck2["model"][k].float()).abs().max())
             for k in ck1["model"] if k.startswith("fusion.heads")]
    assert max(diffs) < 0.15  # 2 samples per batch-norm batch vs 4
    # resume under 2 processes continues from last.pt
    path.write_text(yaml.safe_dump({**cfg, "train": {**cfg["train"], "epochs": 3}}, sort_keys=False))
    res = _torchrun(["--config", str(path), "--quiet", "--resume"], ROOT, env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [r["epoch"] for r in metrics(tmp_path / "two")] == [1, 2, 3]
