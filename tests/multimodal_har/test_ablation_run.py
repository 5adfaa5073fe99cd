"""`mhar ablate`: the report of a tiny real run (MSR Action3D skeletons, three streams fused by
cross-modal attention), retraining per subset, known Shapley values through the run-level
path, the reliability verdict on subset paths (flagged when never trained), attention maps of
a pose-driven encoder, and the errors."""

import csv
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from multimodal_har import ablation_plots
from multimodal_har.ablation_run import (RETRAINED_BANNER, UNRELIABLE_BANNER, UnreliableAblationError, _display_frames,
                                         attention_figures, corrupt_input, corruption_targets, reliability_banner,
                                         run_ablation, subset_logits_of_run, subset_path_reliability)
from multimodal_har.cli import main
from multimodal_har.experiment import experiment_from_dict, load_run_config
from multimodal_har.engine import load_checkpoint
from multimodal_har.train import train
from tests.multimodal_har.training_data import make_msr_store, tiny_config

PNG = b"\x89PNG\r\n\x1a\n"
SUBSETS = ["joint", "bone", "motion", "joint+bone", "joint+motion", "bone+motion", "joint+bone+motion"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are tiny, and on a 2-core machine shared with other
    jobs OpenMP's spinning threads make them 10-20x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"))


@pytest.fixture(scope="module")
def run(store, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "xattn"
    cfg = tiny_config(store, run, fusion="cross_attention", epochs=10, lr=0.001, modality_dropout=0.0)
    cfg["model"]["fusion"]["kwargs"] = {"width": 16, "heads": 2, "self_layers": 0, "dropout": 0.0}
    train(experiment_from_dict(cfg), quiet=True)
    return run


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def tie_aware_accuracy(logits, labels):
    top = logits == logits.max(axis=1, keepdims=True)
    return float((top[np.arange(len(labels)), labels] / top.sum(axis=1)).mean())


def test_report_of_a_real_run(run):
    res = run_ablation(run, checkpoint="last", n_resamples=200, strengths=(0, 0.5, 1), quiet=True)
    out = run / "ablation_test"
    assert res.out_dir == out and not [p for p in run.iterdir() if p.name.startswith(".ablation")]
    for name in ["ablation.json", "subsets.csv", "shapley.csv", "interactions.csv", "per_class.csv", "dropout.csv",
                 "corruption.csv"]:
        assert (out / name).stat().st_size > 0, name
    figures = ["shapley", "subset_lattice", "per_class", "interactions", "robustness", "confusion",
               *[f"attention_cross_{q}_{k}" for q in ("joint", "bone", "motion") for k in ("joint", "bone", "motion")
                 if q != k]]
    for name in figures:
        assert (out / f"{name}.png").read_bytes()[:8] == PNG, name
    assert set(res.files.values()) == set(out.iterdir())
    report = json.loads((out / "ablation.json").read_text())
    assert sorted(report["files"]) == sorted(p.name for p in out.iterdir())
    assert report["run"]["checkpoint"] == "last" and report["run"]["epoch"] == 10
    # the subset table is the accuracy of each subset's logits in logits.npz (chance for the empty set)
    z = np.load(run / "eval_test_last" / "logits.npz")
    table = {r["subset"]: r for r in rows(out / "subsets.csv")}
    assert list(table) == ["(none)", *[SUBSETS[i] for i in (0, 1, 3, 2, 4, 5, 6)]]  # bitmask order
    assert float(table["(none)"]["top1"]) == pytest.approx(0.25)
    for key in SUBSETS:
        acc = tie_aware_accuracy(z[key], z["labels"])
        assert float(table[key]["top1"]) == pytest.approx(acc) and float(table[key]["value"]) == pytest.approx(acc)
    # efficiency: the Shapley values share out v(all) - v(empty), in the result and in the files
    r = res.result
    assert r.shapley.sum() == pytest.approx(r.value[-1] - r.value[0], abs=1e-12)
    phi = {row["modality"]: float(row["shapley"]) for row in rows(out / "shapley.csv")}
    assert sum(phi.values()) == pytest.approx(float(table["joint+bone+motion"]["top1"]) - 0.25, abs=1e-9)
    assert all(m["shapley_lo"] <= m["shapley_hi"] for m in report["modality"])
    # robustness: one curve per pose stream and one for all three; strength 0 is the clean accuracy
    curves = {}
    for row in report["corruption"]:
        curves.setdefault(row["corruption"], {})[row["strength"]] = row["accuracy"]
    assert set(curves) == {"pose_noise: joint", "pose_noise: bone", "pose_noise: motion", "pose_noise: all 3"}
    for c in curves.values():
        assert sorted(c) == [0.0, 0.5, 1.0] and c[0.0] == pytest.approx(r.top1[-1], abs=1e-12)
    assert [d["kept"] for d in report["dropout"]] == [3, 2, 1, 0]
    assert report["attention"]["sample"] in z["ids"].tolist() and len(report["attention"]["cross"]) == 6
    # again without robustness: the folder is replaced as a whole, the logits reused (not re-evaluated)
    stamp = (run / "eval_test_last" / "logits.npz").stat().st_mtime_ns
    res2 = run_ablation(run, checkpoint="last", robustness=False, n_resamples=0, quiet=True)
    assert (run / "eval_test_last" / "logits.npz").stat().st_mtime_ns == stamp
    assert not (out / "corruption.csv").exists() and any("skipped" in n for n in res2.notes)
    assert np.allclose(res2.result.shapley, r.shapley) and np.isnan(res2.result.shapley_ci).all()


def test_stale_logits_are_recomputed(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("ablation_*", "retrain"))
    subset_logits_of_run(copy, quiet=True)
    logits = copy / "eval_test_best" / "logits.npz"
    stamp = logits.stat().st_mtime_ns
    subset_logits_of_run(copy, quiet=True)
    assert logits.stat().st_mtime_ns == stamp  # current: reused
    ck = copy / "best.pt"
    os.utime(ck, ns=(stamp + 10**9, stamp + 10**9))  # the checkpoint is newer than the logits
    subset_logits_of_run(copy, quiet=True)
    assert logits.stat().st_mtime_ns > stamp
    meta = json.loads((copy / "eval_test_best" / "metrics.json").read_text())
    assert meta["checkpoint"] == "best"
    subset_logits_of_run(copy, checkpoint="last", quiet=True)  # another checkpoint: re-evaluated for it
    assert json.loads((copy / "eval_test_last" / "metrics.json").read_text())["checkpoint"] == "last"


def test_cli_prints_the_table(run, tmp_path, capsys):
    out = tmp_path / "abl"
    assert main(["ablate", str(run), "--no-robustness", "--resamples", "50", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    for word in ["Shapley", "LOO", "95% CI", "joint+bone+motion", "sum of Shapley values", str(out)]:
        assert word in text, word
    assert (out / "ablation.json").is_file() and (out / "shapley.png").is_file()


def test_a_run_without_checkpoint_is_a_clear_error(run, tmp_path, capsys):
    empty = tmp_path / "untrained"
    empty.mkdir()
    shutil.copy(run / "config.yaml", empty / "config.yaml")
    with pytest.raises(FileNotFoundError, match=r"has no checkpoint best.pt .*train the run first"):
        run_ablation(empty, quiet=True)
    assert main(["ablate", str(empty), "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        run_ablation(tmp_path / "nothing", quiet=True)
    assert not (empty / "ablation_test").exists()
    with pytest.raises(ValueError, match="is not a report of mhar ablate .*choose a new or empty folder"):
        run_ablation(run, out_dir=run, quiet=True)  # never replaces a folder that is not a report
    assert (run / "config.yaml").is_file()


def test_retrain_per_subset(store, tmp_path):
    run = tmp_path / "late"
    cfg = tiny_config(store, run, streams=("joint", "bone"), epochs=2)
    cfg["model"]["fusion"]["kwargs"] = {"mode": "fixed", "weights": {"joint": 1.0, "bone": 1.5}}
    train(experiment_from_dict(cfg), quiet=True)
    res = run_ablation(run, retrain=True, robustness=False, n_resamples=0, quiet=True)
    got = {r["subset"]: r for r in res.retrained}
    assert list(got) == ["joint", "bone", "joint+bone"]
    assert got["joint+bone"]["run_dir"] == str(run)  # the full set is the run itself
    assert got["joint+bone"]["retrained_top1"] == pytest.approx(got["joint+bone"]["missing_modality_top1"])
    for key in ("joint", "bone"):
        sub = run / "retrain" / key
        assert got[key]["run_dir"] == str(sub)
        sc = load_run_config(sub)  # same seed and budget, only this modality
        assert list(sc.model.encoders) == [key] and list(sc.data.modalities) == [key]
        assert sc.model.fusion.kwargs["weights"] == {key: cfg["model"]["fusion"]["kwargs"]["weights"][key]}
        assert (sc.seed, sc.train.epochs, sc.classes) == (0, 2, load_run_config(run).classes)
        z = np.load(sub / "eval_test_best" / "logits.npz")
        assert list(z["modalities"]) == [key]
        assert got[key]["retrained_top1"] == pytest.approx(tie_aware_accuracy(z[key], z["labels"]))
        assert got[key]["missing_modality_top1"] == pytest.approx(res.result.top1[res.result.keys.index(key)])
    report = json.loads((run / "ablation_test" / "ablation.json").read_text())
    rt = report["retrained"]
    assert [r["subset"] for r in rt["subsets"]] == ["joint", "bone", "joint+bone"]
    assert sum(rt["shapley"].values()) == pytest.approx(got["joint+bone"]["retrained_top1"] - rt["empty"])
    assert len(rows(run / "ablation_test" / "retrained.csv")) == 3
    assert (run / "ablation_test" / "retrained.png").read_bytes()[:8] == PNG
    # a second ablation reuses the retrained runs
    stamp = (run / "retrain" / "joint" / "last.pt").stat().st_mtime_ns
    run_ablation(run, retrain=True, robustness=False, n_resamples=0, quiet=True)
    assert (run / "retrain" / "joint" / "last.pt").stat().st_mtime_ns == stamp


def test_known_shapley_values_through_the_run(run, tmp_path):
    """Crafted logits whose subset accuracies are a known game: v(S) = 1/4 + 0.3 [joint] +
    0.2 [bone] + 0.1 [motion] + 0.1 [joint and motion] (an additive game plus one synergy)."""
    known = tmp_path / "known"
    known.mkdir()
    shutil.copy(run / "config.yaml", known)
    shutil.copy(run / "best.pt", known)  # a fresh mtime, older than the logits below
    ck = load_checkpoint(known / "best.pt")
    mods, classes, N = ["joint", "bone", "motion"], list(ck["classes"]), 400
    labels = np.arange(N) % 4
    logits = {}
    for s in range(1, 8):
        has = [bool(s >> i & 1) for i in range(3)]
        v = 0.25 + 0.3 * has[0] + 0.2 * has[1] + 0.1 * has[2] + 0.1 * (has[0] and has[2])
        right = np.arange(N) < round(v * N)
        pred = np.where(right, labels, (labels + 1) % 4)
        logits["+".join(m for m, h in zip(mods, has) if h)] = np.eye(4, dtype=np.float32)[pred]
    ev = known / "eval_test_best"
    ev.mkdir()
    (ev / "metrics.json").write_text(json.dumps({"checkpoint": "best", "epoch": ck["epoch"], "modalities": mods}))
    np.savez(ev / "logits.npz", ids=np.array([f"s{i}" for i in range(N)]), labels=labels,
             classes=np.array(classes), modalities=np.array(mods), **logits)
    res = run_ablation(known, robustness=False, n_resamples=100, quiet=True)
    r = res.result
    np.testing.assert_allclose(r.shapley, [0.35, 0.2, 0.15], atol=1e-12)
    np.testing.assert_allclose(r.loo, [0.95 - 0.55, 0.95 - 0.75, 0.95 - 0.75], atol=1e-12)
    assert r.interactions[0, 2] == pytest.approx(0.1) and r.interactions[0, 1] == pytest.approx(0, abs=1e-12)
    assert r.n_samples == N  # the crafted logits were used, not re-evaluated
    phi = {row["modality"]: float(row["shapley"]) for row in rows(res.out_dir / "shapley.csv")}
    assert phi == pytest.approx({"joint": 0.35, "bone": 0.2, "motion": 0.15})


# ------------------------------------------------------------------------------- reliability of the subset paths
FIGURES = {"plot_shapley": "shapley", "plot_subset_lattice": "subset_lattice", "plot_per_class": "per_class",
           "plot_interactions": "interactions", "plot_robustness": "robustness", "plot_confusions": "confusion"}


def record_titles(monkeypatch) -> dict:
    """figure name -> the title (suptitle, unwrapped) of the figure its plot function returned."""
    titles = {}
    for fn, name in FIGURES.items():
        def wrapped(*args, _plot=getattr(ablation_plots, fn), _name=name, **kwargs):
            fig = _plot(*args, **kwargs)
            titles[_name] = fig.get_suptitle().replace("\n", " ")
            return fig

        monkeypatch.setattr(ablation_plots, fn, wrapped)
    return titles


def test_untrained_subset_paths_are_flagged(run, tmp_path, capsys, monkeypatch):
    """The module's run was trained with every modality always present (modality_dropout 0,
    cross-attention fusion): its subset paths were never trained. The report is written,
    flagged everywhere; --require-reliable refuses it."""
    titles = record_titles(monkeypatch)
    out = tmp_path / "abl"
    assert main(["ablate", str(run), "--no-robustness", "--resamples", "0", "--out", str(out), "--quiet"]) == 0
    io = capsys.readouterr()
    assert "WARNING" in io.err and "UNRELIABLE" in io.err and "train.modality_dropout = 0 " in io.err
    assert "how to fix" in io.err and "UNRELIABLE" in io.out  # the printed notes too
    report = json.loads((out / "ablation.json").read_text())
    rel = report["reliability"]
    assert rel["reliable"] is False and rel["subset_paths_trained"] is False and rel["rule"] == "untrained"
    assert "train.modality_dropout = 0 (every training sample had all 3 modalities" in rel["reason"]
    assert "fusion 'cross_attention'" in rel["reason"]
    assert "train.modality_dropout=0.3" in rel["how_to_fix"] and "--retrain" in rel["how_to_fix"]
    assert report["notes"][0].startswith("UNRELIABLE: ") and "How to fix" in report["notes"][0]
    text = (out / "RELIABILITY.txt").read_text()
    assert text.startswith("UNRELIABLE") and "shapley.csv" in text and "shapley.png" in text
    assert "RELIABILITY.txt" in report["files"]
    for name in FIGURES.values():  # still drawn, each with the red banner
        assert (out / f"{name}.png").read_bytes()[:8] == PNG, name
        assert titles[name] == UNRELIABLE_BANNER, name
    # --require-reliable: exit status 2, a clear message, nothing written
    refused = tmp_path / "refused"
    assert main(["ablate", str(run), "--out", str(refused), "--quiet", "--require-reliable"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not ablated (--require-reliable)" in err and "How to fix" in err
    assert not refused.exists() and not list(tmp_path.glob(".refused*"))
    bare = tmp_path / "bare"  # judged from the config alone, before anything else (no checkpoint here)
    bare.mkdir()
    shutil.copy(run / "config.yaml", bare)
    with pytest.raises(UnreliableAblationError, match="train.modality_dropout = 0"):
        run_ablation(bare, require_reliable=True, quiet=True)


def test_a_run_trained_with_modality_dropout_is_reliable(store, tmp_path, capsys, monkeypatch):
    run = tmp_path / "dropout"
    train(experiment_from_dict(tiny_config(store, run, streams=("joint", "bone"), epochs=1, modality_dropout=0.5)),
          quiet=True)
    titles = record_titles(monkeypatch)
    assert main(["ablate", str(run), "--no-robustness", "--resamples", "0", "--quiet", "--require-reliable"]) == 0
    io = capsys.readouterr()
    assert "UNRELIABLE" not in io.err + io.out and "WARNING" not in io.err
    out = run / "ablation_test"
    report = json.loads((out / "ablation.json").read_text())
    assert report["reliability"]["reliable"] is True and report["reliability"]["rule"] == "modality_dropout"
    assert "train.modality_dropout = 0.5" in report["reliability"]["reason"]
    assert report["reliability"]["how_to_fix"] == ""
    assert not (out / "RELIABILITY.txt").exists() and not any("UNRELIABLE" in n for n in report["notes"])
    assert set(titles) == set(FIGURES.values()) and set(titles.values()) == {""}


def config_of(streams=("joint", "bone"), fusion="concat", mode=None, **train_kw):
    cfg = tiny_config("store", "run", fusion=fusion, streams=streams, **{"modality_dropout": 0.0, **train_kw})
    if mode:
        cfg["model"]["fusion"]["kwargs"] = {"mode": mode}
    return experiment_from_dict(cfg)


@pytest.mark.parametrize("cfg, retrained, rule, reliable, words", [
    (dict(streams=("joint",)), False, "single_modality", True, ["one modality (joint)", "nothing to ablate"]),
    (dict(modality_dropout=0.3), False, "modality_dropout", True, ["train.modality_dropout = 0.3", "15.0%"]),
    (dict(fusion="late", mode="poe", aux_loss_weight=0.5), False, "late_aux_loss", True,
     ["fusion 'late' (mode 'poe') with train.aux_loss_weight = 0.5", "trained on its modality alone"]),
    (dict(streams=("joint", "bone", "motion"), fusion="late", mode="gate", aux_loss_weight=0.5), False,
     "late_aux_loss", True, ["mode 'gate'", "never saw that presence pattern"]),
    (dict(), False, "untrained", False, ["train.modality_dropout = 0 (every training sample had all 2 modalities",
                                         "fusion 'concat'", "never saw one missing"]),
    (dict(fusion="late"), False, "untrained", False,
     ["fusion 'late' (mode 'mean') with train.aux_loss_weight = 0", "only through the fused prediction"]),
    (dict(fusion="late", pretrain_epochs=3, freeze_encoders=True), False, "untrained", False,
     ["train.pretrain_epochs = 3 with frozen encoders does not change that", "trained the late heads jointly"]),
    (dict(aux_loss_weight=0.5), False, "untrained", False,
     ["train.aux_loss_weight = 0.5 trained auxiliary heads that no subset path uses"]),
    (dict(), True, "retrained", True, ["--retrain ran: the retrained game", "are not: the subset logits come from"]),
    (dict(modality_dropout=0.3), True, "modality_dropout", True, ["--retrain ran too"]),
])
def test_subset_path_reliability_rules(cfg, retrained, rule, reliable, words):
    rel = subset_path_reliability(config_of(**cfg), retrained)
    assert set(rel) == {"reliable", "reason", "how_to_fix", "rule", "subset_paths_trained"}
    assert (rel["rule"], rel["reliable"]) == (rule, reliable)
    assert rel["subset_paths_trained"] == (rule not in ("untrained", "retrained"))
    for w in words:
        assert w in rel["reason"], w
    if rel["subset_paths_trained"]:
        assert rel["how_to_fix"] == "" and reliability_banner(rel) is None
    else:
        fix = ("read the retrained values",) if retrained else ("--retrain",)
        assert all(w in rel["how_to_fix"] for w in ("train.modality_dropout=0.3", "aux_loss_weight", *fix))
        assert reliability_banner(rel) == (RETRAINED_BANNER if retrained else UNRELIABLE_BANNER)


def test_subset_path_reliability_of_a_config_without_aux_loss_weight():
    """Run configs written before ``train.aux_loss_weight`` existed read it as 0."""
    cfg = config_of(fusion="late")
    train_cfg = SimpleNamespace(modality_dropout=0.0, pretrain_epochs=0, freeze_encoders=False)
    rel = subset_path_reliability(SimpleNamespace(model=cfg.model, train=train_cfg), False)
    assert rel["rule"] == "untrained" and "train.aux_loss_weight = 0" in rel["reason"]


# ------------------------------------------------------------------------------- attention, corruptions
class TinyVideo(nn.Module):
    """``feature_map``: ``(B, 3, T, H, W) -> (B, 8, T/2, H/2, W/2)``."""

    feature_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (1, 3, 3), stride=2, padding=(0, 1, 1))

    def feature_map(self, x):
        return torch.relu(self.conv(x))


def test_attention_maps_of_a_pose_driven_encoder(tmp_path):
    from multimodal_har.fusion import build_fusion
    from multimodal_har.encoders import build_encoder
    from multimodal_har.encoders.pose_attention import PoseDrivenAttention
    from multimodal_har.encoders.pose_lstm import PoseLSTM
    from multimodal_har.model import MultimodalClassifier

    torch.manual_seed(0)
    pose = PoseLSTM(layout="kinect_v1_20", hidden=8, layers=1)
    encoders = {"video": PoseDrivenAttention(video=TinyVideo(), pose=pose, feature_size=(4, 4, 4), attention_hidden=8),
                "joint": build_encoder("skeleton_gcn", layout="kinect_v1_20", channels=[[8, 1]])}
    dims = {m: e.out_dim for m, e in encoders.items()}
    fusion = build_fusion("cross_attention", dims=dims, width=16, heads=2)
    model = MultimodalClassifier(encoders=encoders, fusion=fusion, num_classes=3).eval()
    vmask = torch.tensor([[True] * 6 + [False] * 2, [True] * 8])
    batch = {"ids": ["a", "b"], "present": torch.ones(2, 2, dtype=torch.bool),
             "inputs": {"video": {"video": torch.rand(2, 3, 8, 8, 8), "pose": torch.randn(2, 10, 1, 20, 3),
                                  "video_mask": vmask},
                        "joint": {"x": torch.randn(2, 10, 1, 20, 3), "mask": torch.ones(2, 10, dtype=torch.bool)}}}
    files, info, notes = attention_figures(model, batch, tmp_path)
    assert set(files) == {"attention_temporal_video.png", "attention_spatial_video.png",
                          "attention_cross_video_joint.png", "attention_cross_joint_video.png"} and not notes
    for p in files.values():
        assert p.read_bytes()[:8] == PNG
    temporal = next(e for e in info["encoder"] if e["kind"] == "temporal")
    assert info["sample"] == "a" and len(temporal["weights"]) == 3  # 6 valid frames -> 3 feature steps
    assert sum(temporal["weights"]) == pytest.approx(1.0)
    late = MultimodalClassifier(encoders={"joint": encoders["joint"]},
                                fusion=build_fusion("late", dims={"joint": dims["joint"]}, num_classes=3),
                                num_classes=3)
    files, _, notes = attention_figures(late, {"ids": ["a", "b"], "present": torch.ones(2, 1, dtype=torch.bool),
                                               "inputs": {"joint": batch["inputs"]["joint"]}}, tmp_path)
    assert not files and "no cross-modal attention" in notes[0]


def test_display_frames_undo_the_normalisation():
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    img = torch.rand(4, 3, 5, 6)  # (K, 3, H, W) in [0, 1]
    norm = (img - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    f = _display_frames(norm, torch.tensor([True, True, True, False]), mean, std)
    np.testing.assert_allclose(f, img[:3].permute(0, 2, 3, 1).numpy(), atol=1e-6)
    clip = _display_frames(norm.permute(1, 0, 2, 3), None, mean, std)  # (3, T, H, W)
    assert clip.shape == (4, 5, 6, 3)
    assert _display_frames(torch.rand(4, 10, 5, 6), None, None, None) is None  # flow stacks: not drawn


def test_corrupt_one_kwarg_of_a_multi_input_encoder():
    rgb, flow = torch.rand(2, 4, 3, 5, 5), torch.rand(2, 4, 10, 5, 5)
    mask = torch.ones(2, 4, dtype=torch.bool)
    batch = {"inputs": {"two": {"rgb": rgb, "rgb_mask": mask, "flow": flow, "flow_mask": mask}}}
    out = corrupt_input(batch, "two", "rgb", "frozen_frames", 1.0)
    assert torch.equal(out["inputs"]["two"]["rgb"], rgb[:, :1].expand_as(rgb))
    assert out["inputs"]["two"]["flow"] is flow and batch["inputs"]["two"]["rgb"] is rgb
    with pytest.raises(ValueError, match="no input 'two' with kwarg 'audio'"):
        corrupt_input(batch, "two", "audio", "audio_silence", 0.5)
    stream = lambda name, kind, kwarg="x": SimpleNamespace(name=name, kind=kind, input=name,  # noqa: E731
                                                           cfg=SimpleNamespace(kwarg=kwarg))
    ds = SimpleNamespace(streams=[stream("rgb", "rgb"), stream("audio", "audio"), stream("imu", "signal")])
    assert corruption_targets(ds) == {"frozen_frames: rgb": [("frozen_frames", "rgb", "x")],
                                      "audio_silence: audio": [("audio_silence", "audio", "x")]}
