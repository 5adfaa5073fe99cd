"""Modality ablation: exact Shapley values on games with known answers, the interaction index,
bootstrap intervals, per-class identity, the logits loader and the report files."""

import itertools
import json
import math

import numpy as np
import pytest

from multimodal_har.ablation import (EMPTY_KEY, SubsetLogits, analyze, bootstrap_game_values, correctness,
                                     corruption_curve, dropout_curve, game_values, game_vector, interaction_index,
                                     leave_one_out, load_subset_logits, sample_values, shapley_values, subset_key,
                                     true_log_prob, write_report)


def brute_force_shapley(v, M):
    """Reference: average marginal contribution over all M! orders."""
    phi = np.zeros(M)
    for order in itertools.permutations(range(M)):
        s = 0
        for i in order:
            phi[i] += v[s | 1 << i] - v[s]
            s |= 1 << i
    return phi / math.factorial(M)


def brute_force_interaction(v, M, i, j):
    """Reference: Grabisch & Roubens' formula summed over the subsets without i and j."""
    total = 0.0
    rest = [k for k in range(M) if k not in (i, j)]
    for r in range(len(rest) + 1):
        for S in itertools.combinations(rest, r):
            s = sum(1 << k for k in S)
            w = math.factorial(r) * math.factorial(M - r - 2) / math.factorial(M - 1)
            total += w * (v[s | 1 << i | 1 << j] - v[s | 1 << i] - v[s | 1 << j] + v[s])
    return total


def make_data(fn, modalities, labels, C, seed=0):
    """SubsetLogits whose logits for subset bitmask s are fn(s, labels, rng) (N, C)."""
    rng = np.random.default_rng(seed)
    M = len(modalities)
    logits = {subset_key(modalities, s): fn(s, labels, rng) for s in range(1, 1 << M)}
    return SubsetLogits(np.array([f"v{i}" for i in range(len(labels))]), labels, [f"c{k}" for k in range(C)],
                        list(modalities), logits)


def noisy_data(N, C=5, M=3, seed=0):
    """Each modality adds signal toward the true class; logits = sum over the subset + noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    strength = [1.5, 0.8, 0.3][:M] + [0.5] * max(0, M - 3)
    parts = [s * np.eye(C)[labels] + rng.normal(size=(N, C)) for s in strength]
    return make_data(lambda s, y, r: sum(parts[i] for i in range(M) if s >> i & 1), ["rgb", "flow", "audio"][:M],
                     labels, C, seed)


# ----------------------------------------------------------------------------- known games
def test_additive_game_gives_its_values_and_no_interaction():
    a = np.array([0.1, -0.05, 0.3, 0.2])
    v = np.array([0.25 + sum(a[i] for i in range(4) if s >> i & 1) for s in range(16)])
    np.testing.assert_allclose(shapley_values(v), a, atol=1e-12)
    np.testing.assert_allclose(leave_one_out(v), a, atol=1e-12)
    inter = interaction_index(v)
    np.testing.assert_allclose(inter[~np.eye(4, dtype=bool)], 0, atol=1e-12)
    np.testing.assert_allclose(np.diag(inter), a, atol=1e-12)


def test_useless_modality_from_logits():
    """rgb alone is perfect, audio and pose carry nothing (uniform logits): Shapley of rgb is
    v(all) - v(empty) = 1 - 1/C, of the others exactly 0, with zero-width intervals."""
    C, labels = 4, np.random.default_rng(1).integers(0, 4, 300)
    data = make_data(lambda s, y, r: 5.0 * np.eye(C)[y] if s & 1 else np.zeros((len(y), C)),
                     ["rgb", "audio", "pose"], labels, C)
    res = analyze(data, n_resamples=200, seed=0)
    assert res.value[0] == pytest.approx(1 / C) and res.value[-1] == 1.0
    np.testing.assert_allclose(res.shapley, [1 - 1 / C, 0, 0], atol=1e-12)
    np.testing.assert_allclose(res.shapley_ci[1:], 0, atol=1e-12)
    np.testing.assert_allclose(res.loo, [1 - 1 / C, 0, 0], atol=1e-12)
    np.testing.assert_allclose(res.per_class, np.tile([1 - 1 / C, 0, 0], (C, 1)), atol=1e-12)
    np.testing.assert_allclose(res.interactions[1, 2], 0, atol=1e-12)


def test_symmetric_pure_interaction_splits_equally():
    for M in (2, 3, 4):
        v = np.zeros(1 << M)
        v[-1] = 1.0
        np.testing.assert_allclose(shapley_values(v), np.full(M, 1 / M))
        # unanimity game of the full set: the pair index is 1 / (M - 1) (Grabisch & Roubens)
        inter = interaction_index(v)
        np.testing.assert_allclose(inter[~np.eye(M, dtype=bool)], 1 / (M - 1))
    # the same from logits: only the full set is right, every other subset predicts a wrong class
    C, labels = 3, np.arange(30) % 3
    data = make_data(lambda s, y, r: np.eye(C)[y if s == 7 else (y + 1) % C], ["a", "b", "c"], labels, C)
    res = analyze(data, baseline=0.0, n_resamples=0)
    np.testing.assert_allclose(res.shapley, [1 / 3] * 3)
    assert np.isnan(res.shapley_ci).all()


@pytest.mark.parametrize("M", [1, 2, 3, 4, 5])
def test_efficiency_and_brute_force_on_random_games(M):
    rng = np.random.default_rng(M)
    for _ in range(5):
        v = rng.normal(size=1 << M)
        phi = shapley_values(v)
        assert phi.sum() == pytest.approx(v[-1] - v[0], abs=1e-12)
        np.testing.assert_allclose(phi, brute_force_shapley(v, M), atol=1e-12)
        inter = interaction_index(v)
        np.testing.assert_allclose(inter, inter.T)
        for i, j in itertools.combinations(range(M), 2):
            assert inter[i, j] == pytest.approx(brute_force_interaction(v, M, i, j), abs=1e-12)


def test_textbook_three_player_games():
    # glove game (one left glove, two right gloves; a pair is worth 1): Shapley (2/3, 1/6, 1/6)
    v = np.array([1.0 if (s & 1) and (s & 6) else 0.0 for s in range(8)])
    np.testing.assert_allclose(shapley_values(v), [2 / 3, 1 / 6, 1 / 6])
    inter = interaction_index(v)
    # by hand: I_01 = 1/2 [v(01) - v(0) - v(1) + v()] + 1/2 [v(012) - v(02) - v(12) + v(2)] = 1/2 (1) + 1/2 (0)
    # I_12 = 1/2 [v(12) - v(1) - v(2)] + 1/2 [v(012) - v(01) - v(02) + v(0)] = 0 + 1/2 (1 - 1 - 1) : substitutes
    assert inter[0, 1] == pytest.approx(0.5) and inter[0, 2] == pytest.approx(0.5)
    assert inter[1, 2] == pytest.approx(-0.5)
    np.testing.assert_allclose(leave_one_out(v), [1, 0, 0])
    # v(12)=90, v(13)=80, v(23)=70, v(123)=120, singletons 0; by hand over the 6 orders: 45, 40, 35
    v = game_vector({"x": 0, "y": 0, "z": 0, "x+y": 90, "x+z": 80, "y+z": 70, "x+y+z": 120}, ["x", "y", "z"], 0.0)
    np.testing.assert_allclose(shapley_values(v), [45, 40, 35])
    np.testing.assert_allclose(dropout_curve(v), [120, 80, 0, 0])


def test_game_vector_and_bad_games():
    with pytest.raises(ValueError, match="lack 1 subset"):
        game_vector({"a": 1, "b": 1}, ["a", "b"], 0.0)
    with pytest.raises(ValueError, match="2\\*\\*M values"):
        shapley_values(np.zeros(6))


# ----------------------------------------------------------------------------- metrics
def test_tie_aware_accuracy_and_log_prob():
    labels = np.array([0, 1, 2, 0])
    logits = np.array([[2.0, 1, 0], [0, 0, 0], [1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(correctness(logits, labels), [1, 1 / 3, 0, 0.5])
    lp = true_log_prob(logits, labels)
    expect = np.log(np.exp(logits)[np.arange(4), labels] / np.exp(logits).sum(1))
    np.testing.assert_allclose(lp, expect)


def test_log_prob_metric_prior_baseline_and_class_average():
    data = noisy_data(400, C=4, M=2)
    y = data.labels
    res = analyze(data, metric="log_prob", n_resamples=0)
    assert res.value[0] == pytest.approx(math.log(1 / 4))
    assert res.value[3] == pytest.approx(true_log_prob(data.logits["rgb+flow"], y).mean())
    assert res.shapley.sum() == pytest.approx(res.value[-1] - res.value[0])
    custom = analyze(data, metric=lambda logits, labels: true_log_prob(logits, labels), n_resamples=0)
    np.testing.assert_allclose(custom.shapley, res.shapley)
    prior = analyze(data, baseline="prior", n_resamples=0)
    assert prior.value[0] == pytest.approx(np.bincount(y).max() / len(y))
    bal = analyze(data, average="class", n_resamples=0)
    assert bal.value[3] == pytest.approx(bal.mean_class_accuracy[3])
    recall = [correctness(data.logits["rgb+flow"], y)[y == c].mean() for c in range(4)]
    assert bal.value[3] == pytest.approx(np.mean(recall))
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        analyze(data, metric="f1")
    with pytest.raises(ValueError, match="baseline must be"):
        analyze(data, baseline="majority")


def test_per_class_rows_combine_to_the_overall_values():
    """Shapley is linear in the game and v = sum_c (n_c/N) v_c (sample average) or mean_c v_c
    (class average), so the same combination of the per-class rows gives the overall values."""
    data = noisy_data(500, C=5, M=3, seed=3)
    keep = data.labels != 4  # class 4 absent: a NaN row, left out of both identities
    data = SubsetLogits(data.ids[keep], data.labels[keep], data.classes, data.modalities,
                        {k: a[keep] for k, a in data.logits.items()})
    for average in ("sample", "class"):
        res = analyze(data, average=average, n_resamples=0)
        assert np.isnan(res.per_class[4]).all() and res.class_support[4] == 0
        rows, n = res.per_class[:4], res.class_support[:4]
        w = n / n.sum() if average == "sample" else np.full(4, 0.25)
        np.testing.assert_allclose(w @ rows, res.shapley, atol=1e-12)


def test_dropout_curve_is_the_mean_over_subsets_of_each_size():
    rng = np.random.default_rng(0)
    v = rng.random(8)
    np.testing.assert_allclose(dropout_curve(v), [v[7], v[[3, 5, 6]].mean(), v[[1, 2, 4]].mean(), v[0]])


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_samples():
    widths = []
    for N in (200, 3200):
        res = analyze(noisy_data(N), n_resamples=400, seed=0)
        for point, ci in ((res.shapley, res.shapley_ci), (res.loo, res.loo_ci), (res.value, res.value_ci),
                          (res.dropout, res.dropout_ci)):
            assert ((ci[:, 0] <= point + 1e-12) & (point <= ci[:, 1] + 1e-12)).all()
        off = ~np.eye(3, dtype=bool)
        assert ((res.interactions_ci[..., 0][off] <= res.interactions[off] + 1e-12)
                & (res.interactions[off] <= res.interactions_ci[..., 1][off] + 1e-12)).all()
        widths.append(res.shapley_ci[:, 1] - res.shapley_ci[:, 0])
    assert (widths[1] < widths[0] / 2).all()  # ~1/sqrt(16) = 1/4 of the width


def test_bootstrap_is_seeded_and_matches_direct_resampling():
    data = noisy_data(60, C=3, M=2)
    vals = sample_values(data)
    a = bootstrap_game_values(vals, data.labels, num_classes=3, n_resamples=50, seed=7)
    b = bootstrap_game_values(vals, data.labels, num_classes=3, n_resamples=50, seed=7)
    np.testing.assert_array_equal(a, b)
    # the same counts drawn again give the class-average game of the explicitly resampled rows
    rng = np.random.default_rng(7)
    counts = rng.multinomial(60, np.full(60, 1 / 60), size=50)
    c = bootstrap_game_values(vals, data.labels, num_classes=3, average="class", n_resamples=50, seed=7)
    for r in (0, 17, 49):
        idx = np.repeat(np.arange(60), counts[r])
        np.testing.assert_allclose(c[r], game_values(vals[idx], data.labels[idx], num_classes=3, average="class"))
        np.testing.assert_allclose(a[r], vals[idx].mean(0))


# ----------------------------------------------------------------------------- io
def test_load_subset_logits_round_trip_and_errors(tmp_path):
    data = noisy_data(20, C=3, M=3)
    labels = data.labels.copy()
    labels[0] = -1  # unlabelled: kept by the loader, dropped by analyze
    path = tmp_path / "logits.npz"
    np.savez(path, ids=data.ids, labels=labels, classes=np.asarray(data.classes),
             modalities=np.asarray(data.modalities), **data.logits)
    got = load_subset_logits(path)
    assert got.modalities == ["rgb", "flow", "audio"] and got.classes == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(got.of(0b101), data.logits["rgb+audio"])
    assert analyze(got, n_resamples=0).n_samples == 19
    with pytest.raises(ValueError, match="unlabelled"):
        sample_values(got)

    bad = dict(data.logits)
    del bad["flow+audio"]
    np.savez(path, ids=data.ids, labels=data.labels, classes=np.asarray(data.classes),
             modalities=np.asarray(data.modalities), **bad)
    with pytest.raises(ValueError, match="no logits for 1 of the 7 subsets.*flow\\+audio"):
        load_subset_logits(path)
    bad = dict(data.logits, rgb=np.full((20, 3), np.nan))
    with pytest.raises(ValueError, match="logits\\['rgb'\\] has 60 NaN"):
        SubsetLogits(data.ids, data.labels, data.classes, data.modalities, bad)
    with pytest.raises(ValueError, match="must be \\(N, C\\) = \\(20, 3\\)"):
        SubsetLogits(data.ids, data.labels, data.classes, data.modalities, dict(data.logits, rgb=np.zeros((20, 4))))
    with pytest.raises(ValueError, match="labels must be in \\[-1, 3\\)"):
        SubsetLogits(data.ids, data.labels + 1, data.classes, data.modalities, data.logits)
    with pytest.raises(FileNotFoundError, match="mhar evaluate"):
        load_subset_logits(tmp_path / "none.npz")


def test_write_report(tmp_path):
    res = analyze(noisy_data(100), n_resamples=50)
    res.corruption = corruption_curve(lambda c, s: 0.9 - 0.5 * s, ["pose_noise"], [0, 0.5, 1])
    paths = write_report(res, tmp_path / "report")
    assert set(paths) == {"subsets", "shapley", "interactions", "per_class", "dropout", "corruption", "json"}
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]  # no temp file left
    doc = json.loads(paths["json"].read_text())
    assert [r["modality"] for r in doc["modality"]] == ["rgb", "flow", "audio"]
    assert doc["subsets"][0]["subset"] == EMPTY_KEY and len(doc["subsets"]) == 8
    assert doc["modality"][0]["shapley"] == pytest.approx(res.shapley[0])
    lines = paths["subsets"].read_text().splitlines()
    assert lines[0].startswith("subset,size,value,value_lo,value_hi,top1") and len(lines) == 9
    assert len(paths["interactions"].read_text().splitlines()) == 1 + 3


def test_corruption_curve_evaluates_clean_once():
    calls = []

    def evaluate(c, s):
        calls.append((c, s))
        return 0.8 * (1 - s) if c == "audio_silence" else 0.8

    rows = corruption_curve(evaluate, ["audio_silence", "frozen_frames"], [0.0, 0.5, 1.0])
    assert len(rows) == 6 and calls.count(("audio_silence", 0.0)) == 1 and ("frozen_frames", 0.0) not in calls
    assert [r["accuracy"] for r in rows[:3]] == [0.8, 0.4, 0.0]
    with pytest.raises(ValueError, match="strengths in \\[0, 1\\]"):
        corruption_curve(evaluate, ["audio_silence"], [1.5])
