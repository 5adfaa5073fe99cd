"""Stage-2 recipes: per-modality auxiliary losses, per-group learning rates, OGM-GE, late heads
started from the stage-1 heads (real MSR Action3D skeleton streams, tiny models, CPU)."""

import math

import pytest
import torch
from torch import nn

from multimodal_har.experiment import experiment_from_dict
from multimodal_har.recipes import (encoder_param_groups, init_late_heads, modality_loss, modulate_gradients,
                                    ogm_coefficients)
from multimodal_har.engine import load_checkpoint
from multimodal_har.train import Trainer, train
from tests.multimodal_har.training_data import make_msr_store, tiny_config


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"))


def test_ogm_coefficients_slow_down_the_dominant_modality_only():
    labels = torch.tensor([0, 1])
    strong = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # true-class confidence ~0.993 each
    weak = torch.zeros(2, 2)  # 0.5 each
    present = torch.ones(2, 2, dtype=torch.bool)
    k = ogm_coefficients({"a": strong, "b": weak}, present, labels, ("a", "b"), alpha=0.5)
    rho = 2 * torch.softmax(strong, 1)[0, 0].item() / 1.0  # s_a / s_b = (2 * 0.993) / (2 * 0.5)
    assert k["b"] == 1.0 and k["a"] == pytest.approx(1 - math.tanh(0.5 * (rho - 1)))
    assert ogm_coefficients({"a": strong, "b": weak}, present, labels, ("a", "b"), alpha=0.0) == {"a": 1.0, "b": 1.0}
    # samples missing a modality do not count; none left: no modulation
    k = ogm_coefficients({"a": strong, "b": weak}, torch.tensor([[True, False], [True, False]]), labels, ("a", "b"), 1.0)
    assert k == {"a": 1.0, "b": 1.0}


def test_modulate_gradients_scales_and_adds_noise_of_the_gradients_scale():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleDict({"a": nn.Linear(50, 50), "b": nn.Linear(50, 50)})

    m = M()
    for p in m.parameters():
        p.grad = torch.ones_like(p) * 2.0
    modulate_gradients(m, {"a": 0.25, "b": 1.0}, noise=False)
    assert torch.all(m.encoders["a"].weight.grad == 0.5) and torch.all(m.encoders["b"].weight.grad == 2.0)
    g = torch.randn(50, 50)
    m.encoders["b"].weight.grad = g.clone()
    modulate_gradients(m, {"b": 1.0}, generator=torch.Generator().manual_seed(0))
    noise = m.encoders["b"].weight.grad - g
    assert noise.std().item() == pytest.approx(g.std().item(), rel=0.1)  # GE: N(0, std(grad))
    assert torch.equal(m.encoders["b"].bias.grad, torch.full((50,), 2.0))  # biases: no noise


def test_modality_loss_counts_present_pairs_only():
    logits = {"a": torch.tensor([[2.0, 0.0], [0.0, 2.0]]), "b": torch.tensor([[0.0, 0.0], [float("nan"), 0.0]])}
    present = torch.tensor([[True, True], [True, False]])
    loss = modality_loss(logits, present, torch.tensor([0, 1]), ("a", "b"), 0.0)
    ce_a = -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    assert loss.item() == pytest.approx(((2 * ce_a + math.log(2)) / 3).item())


def test_param_groups_put_the_encoders_at_a_scaled_learning_rate(store, tmp_path):
    model = Trainer(experiment_from_dict(tiny_config(store, tmp_path / "r")), quiet=True).model
    groups = encoder_param_groups(model, list(model.parameters()), lr=0.01, scale=0.1, weight_decay=0.5)
    enc = {id(p) for p in model.encoders.parameters()}
    for g in groups:
        ids = {id(p) for p in g["params"]}
        assert ids <= enc if g["lr"] == pytest.approx(0.001) else not ids & enc
        assert g["weight_decay"] == (0.5 if all(p.ndim > 1 for p in g["params"]) else 0.0)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_late_poe_after_stage_one_starts_from_the_stage_one_heads(store, tmp_path):
    cfg = tiny_config(store, tmp_path / "run", epochs=2, pretrain_epochs=1, modality_dropout=0.0,
                      aux_loss_weight=1.0, encoder_lr_scale=0.1, ogm_alpha=0.5)
    cfg["model"]["fusion"] = {"name": "late", "kwargs": {"mode": "poe"}}
    train(experiment_from_dict(cfg), quiet=True, stop_after=1)
    heads = load_checkpoint(tmp_path / "run" / "last.pt")["pretrain_heads"]
    trainer = Trainer(experiment_from_dict(cfg), resume=True, quiet=True)
    trainer.restore()  # stage 1 finished: the late heads are the stage-1 heads now
    for m in ("joint", "bone", "motion"):
        torch.testing.assert_close(trainer.model.fusion.heads[m].weight, heads[f"{m}.weight"])
    assert sorted({round(g["initial_lr"], 6) for g in trainer.optimizer.param_groups}) == [0.001, 0.01]
    out = train(experiment_from_dict(cfg), resume=True, quiet=True)
    assert out["epochs_done"] == 3 and math.isfinite(out["best_val_top1"])
    init_late = init_late_heads(trainer.model, trainer.pretrain.heads)
    assert init_late


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_auxiliary_heads_train_with_feature_fusion(store, tmp_path, fusion):
    cfg = tiny_config(store, tmp_path / fusion, fusion=fusion, epochs=1, aux_loss_weight=0.5, ogm_alpha=0.3)
    out = train(experiment_from_dict(cfg), quiet=True)
    ck = load_checkpoint(tmp_path / fusion / "last.pt")
    assert out["status"] == "completed" and "pretrain_heads" in ck  # the auxiliary heads are saved
    fresh = Trainer(experiment_from_dict(tiny_config(store, tmp_path / "x", fusion=fusion)), quiet=True)
    fresh.build_stage(1)
    assert any(not torch.equal(v, fresh.pretrain.heads.state_dict()[k]) for k, v in ck["pretrain_heads"].items())


def test_recipe_settings_are_checked():
    from multimodal_har.experiment import TrainConfig

    with pytest.raises(ValueError, match="train.encoder_lr_scale must be > 0"):
        TrainConfig(encoder_lr_scale=0)
    with pytest.raises(ValueError, match="train.aux_loss_weight must be >= 0"):
        TrainConfig(aux_loss_weight=-1)
    with pytest.raises(ValueError, match="train.ogm_alpha must be >= 0"):
        TrainConfig(ogm_alpha=-0.1)


def test_validate_every_skips_validation_but_not_the_last_epoch(store, tmp_path):
    import json

    cfg = tiny_config(store, tmp_path / "v", epochs=3, validate_every=0)
    train(experiment_from_dict(cfg), quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert ["val_top1" in r for r in rows] == [False, False, True]
    assert load_checkpoint(tmp_path / "v" / "best.pt")["epoch"] == 3


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_ensemble_model_starts_as_the_product_of_its_modality_heads(store, tmp_path, fusion):
    from multimodal_har.data.dataset import StoreDataset
    from multimodal_har.engine import to_device

    cfg = tiny_config(store, tmp_path / "e", fusion=fusion, streams=("joint", "bone"))
    cfg["model"]["ensemble"] = True
    trainer = Trainer(experiment_from_dict(cfg), quiet=True)
    model = trainer.model.eval()
    ds = StoreDataset(trainer.config.data, "train", train=False, classes=trainer.classes)
    batch = to_device(ds.collate([ds[i] for i in range(4)]), torch.device("cpu"))
    with torch.no_grad():
        out = model(batch["inputs"], batch["present"])
        per = out.fusion.extras["modality_logits"]
        expected = sum(torch.log_softmax(per[m], -1) for m in ("joint", "bone"))
        torch.testing.assert_close(out.logits, expected)  # the fused head starts at zero
        # a hidden modality adds nothing: the subset path is the other head's own prediction
        alone = model.forward_subset(batch["inputs"], batch["present"], modalities=["joint"]).logits
        torch.testing.assert_close(alone, torch.log_softmax(per["joint"], -1))
    # trained with the auxiliary loss on its own heads, from separately trained runs
    single = tiny_config(store, tmp_path / "j", fusion="concat", streams=("joint",), epochs=1)
    train(experiment_from_dict(single), quiet=True)
    cfg["train"].update(epochs=1, aux_loss_weight=1.0, init_from={"joint": str(tmp_path / "j")})
    cfg["run_dir"] = str(tmp_path / "e2")
    t2 = Trainer(experiment_from_dict(cfg), quiet=True)
    t2.fit()
    log = (tmp_path / "e2" / "train.log").read_text()
    assert "init_from joint: encoder of" in log and "its classifier" in log
    assert "per-modality heads (late / ensemble) start from the stage-1 heads" in log
    got = load_checkpoint(tmp_path / "e2" / "last.pt")["model"]
    assert got["modality_heads.joint.weight"].abs().sum() > 0 and got["head.1.weight"].abs().sum() > 0


def test_init_from_names_what_does_not_fit(store, tmp_path):
    single = tiny_config(store, tmp_path / "j", fusion="concat", streams=("joint",), epochs=1)
    train(experiment_from_dict(single), quiet=True)
    cfg = tiny_config(store, tmp_path / "x", streams=("joint", "bone"), init_from={"bone": str(tmp_path / "j")})
    with pytest.raises(ValueError, match=r"init_from.bone: .* has no encoder 'bone' \(it has \['joint'\]\)"):
        Trainer(experiment_from_dict(cfg), quiet=True).fit()
    cfg = tiny_config(store, tmp_path / "y", streams=("joint", "bone"), init_from={"pose": str(tmp_path / "j")})
    with pytest.raises(ValueError, match="names 'pose', which is not a modality of this model"):
        Trainer(experiment_from_dict(cfg), quiet=True).fit()


def test_epochs_0_is_the_weighted_ensemble_of_separately_trained_stream_runs(store, tmp_path):
    from multimodal_har.data.dataset import StoreDataset
    from multimodal_har.engine import to_device

    def predict(cfg: dict, run: str):  # a run's predictions on 3 test samples, from its last.pt
        from multimodal_har.experiment import build_model

        ck = load_checkpoint(tmp_path / run / "last.pt")
        model = build_model(experiment_from_dict(cfg).model, len(ck["classes"])).eval()
        model.load_state_dict(ck["model"])
        ds = StoreDataset(experiment_from_dict(cfg).data, "test", train=False, classes=ck["classes"])
        batch = to_device(ds.collate([ds[i] for i in range(3)]), torch.device("cpu"))
        with torch.no_grad():
            return model(batch["inputs"], batch["present"]).logits.softmax(-1)

    runs, expected = {}, 0
    for s, w in (("joint", 0.6), ("bone_motion", 0.4)):  # one single-stream model each, as in the 4-stream recipe
        runs[s] = str(tmp_path / s)
        single = tiny_config(store, tmp_path / s, fusion="concat", streams=(s,), epochs=1)
        train(experiment_from_dict(single), quiet=True)
        expected = expected + w * predict(single, s)
    cfg = tiny_config(store, tmp_path / "ens", streams=("joint", "bone_motion"), epochs=0, init_from=runs)
    cfg["model"]["fusion"]["kwargs"] = {"mode": "fixed", "weights": {"joint": 0.6, "bone_motion": 0.4}}
    summary = train(experiment_from_dict(cfg), quiet=True)
    assert summary["status"].startswith("nothing to train") and summary["epochs_done"] == 0
    torch.testing.assert_close(predict(cfg, "ens"), expected, rtol=1e-4, atol=1e-5)
    # the same in one run: stage 1 trains each stream alone, no fusion epochs
    both = tiny_config(store, tmp_path / "one", streams=("joint", "bone_motion"), epochs=0, pretrain_epochs=1)
    both["model"]["fusion"]["kwargs"] = cfg["model"]["fusion"]["kwargs"]
    train(experiment_from_dict(both), quiet=True)
    log = (tmp_path / "one" / "train.log").read_text()
    assert "no fusion epochs: the model is the ensemble of the stage-1 models" in log
    assert "the ensemble: val_top1=" in log  # the fused model is validated, not reported as -1
    summary = train(experiment_from_dict(both), resume=True, quiet=True)  # nothing left: the same files
    assert 0.0 <= summary["best_val_top1"] <= 1.0 and summary["best_epoch"] == 1
    ck = load_checkpoint(tmp_path / "one" / "last.pt")
    assert ck["model"]["fusion.heads.joint.weight"].abs().sum() > 0  # the stage-1 head, not a fresh one
    torch.testing.assert_close(ck["model"]["fusion.heads.joint.weight"], ck["pretrain_heads"]["joint.weight"])
    with pytest.raises(ValueError, match="epochs must be >= 1 \\(0 only after pretrain_epochs or with init_from"):
        experiment_from_dict(tiny_config(store, tmp_path / "z", epochs=0))
