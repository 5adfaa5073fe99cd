"""`mhar train` killed with SIGKILL (mid-epoch, or while writing its first ``last.pt``) and run
again: the result is bit-exact with an uninterrupted run, with data-loader worker processes
(the shipped configs use them), and the run directory holds no stale files or duplicate rows.

The child process is the real CLI entry point; the only thing the test adds is the moment of
the kill (a SIGKILL the process sends itself at a chosen training step or file write), so the
kill lands at the same place on every machine."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from multimodal_har.engine import load_checkpoint
from tests.conftest import ROOT
from tests.multimodal_har.training_data import make_msr_store, tiny_config

WORKERS = 2
EPOCHS = 3  # 12 training samples, batches of 4: 3 steps an epoch

# Runs `mhar train`, SIGKILLing itself at training step KILL_STEP (1-based, counted over the run)
# or right after the first temporary file of last.pt is written (before its rename).
CHILD = textwrap.dedent("""
    import os, signal, sys
    import torch
    import multimodal_har.train as T
    from multimodal_har.cli import main

    kill_step, kill_on_save = int(os.environ["KILL_STEP"]), os.environ.get("KILL_ON_SAVE") == "1"
    steps = [0]
    dropout = T.modality_dropout
    def counted(*a, **k):  # called once per training step (stage 2)
        steps[0] += 1
        if steps[0] == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        return dropout(*a, **k)
    T.modality_dropout = counted
    save = torch.save
    def save_then_die(obj, f, *a, **k):
        save(obj, f, *a, **k)
        if kill_on_save and os.path.basename(str(f)).startswith(".last.pt."):
            os.kill(os.getpid(), signal.SIGKILL)
    torch.save = save_then_die
    sys.exit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"))


def _config(store, run_dir):
    cfg = tiny_config(store, run_dir, epochs=EPOCHS)
    cfg["data"]["num_workers"] = WORKERS
    return cfg


@pytest.fixture(scope="module")
def uninterrupted(store, tmp_path_factory):
    """The same run in one go, in a child process too (the same threads as the killed ones)."""
    run = tmp_path_factory.mktemp("full") / "run"
    res = _child(store, run)
    assert res.returncode == 0, res.stderr[-3000:]
    return run


def _child(store, run, *, kill_step=0, kill_on_save=False, resume=False):
    path = run.parent / "cfg.yaml"
    path.write_text(yaml.safe_dump(_config(store, run), sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "KILL_STEP": str(kill_step),
           "KILL_ON_SAVE": "1" if kill_on_save else "0"}
    args = ["train", "--config", str(path), "--quiet"] + (["--resume"] if resume else [])
    return subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _same_run(a, b):
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert ca["epoch"] == cb["epoch"] == EPOCHS
    assert ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    for s in ca["optimizer"]["state"]:
        assert torch.equal(ca["optimizer"]["state"][s]["exp_avg"], cb["optimizer"]["state"][s]["exp_avg"]), s
    drop = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert drop(_rows(a)) == drop(_rows(b))


def test_sigkill_mid_epoch_then_resume_is_bit_exact_with_workers(store, uninterrupted, tmp_path):
    run = tmp_path / "run"
    res = _child(store, run, kill_step=5)  # epoch 2, step 2: its workers are mid-epoch too
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    res = _child(store, run, resume=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [r["epoch"] for r in _rows(run)] == [1, 2, 3]
    _same_run(uninterrupted, run)


def test_sigkill_while_writing_the_first_checkpoint_then_restart(store, uninterrupted, tmp_path):
    """Killed between ``torch.save`` of the temporary file and its rename: no ``last.pt``, an
    orphaned temporary file and a metrics row of epoch 1. A fresh start (nothing to resume)
    removes the temporary file and starts metrics.jsonl over."""
    run = tmp_path / "run"
    res = _child(store, run, kill_on_save=True)
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert not (run / "last.pt").exists()
    assert [p.name for p in run.glob(".last.pt.*.tmp")], sorted(os.listdir(run))  # what the kill left
    assert [r["epoch"] for r in _rows(run)] == [1]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    res = _child(store, run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")], sorted(os.listdir(run))
    assert [r["epoch"] for r in _rows(run)] == [1, 2, 3]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1  # the killed run's events went with it
    assert "left by a killed run" in (run / "train.log").read_text()
    _same_run(uninterrupted, run)
