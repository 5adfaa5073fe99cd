"""Ablation figures and attention maps render headless (Agg) to non-empty PNG files."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.pyplot as plt  # noqa: E402

from multimodal_har import ablation_plots as P  # noqa: E402
from multimodal_har.ablation import analyze, corruption_curve  # noqa: E402
from tests.multimodal_har.test_ablation import noisy_data  # noqa: E402


@pytest.fixture(scope="module")
def study():
    data = noisy_data(120, C=4, M=3)
    res = analyze(data, n_resamples=50)
    res.corruption = corruption_curve(lambda c, s: 0.9 - (0.4 if c == "pose_noise" else 0.2) * s,
                                      ["pose_noise", "audio_silence"], [0, 0.5, 1])
    return data, res


def check(fig, path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    plt.close(fig)


def test_ablation_figures(study, tmp_path):
    data, res = study
    check(P.plot_shapley(res, tmp_path / "shapley.png"), tmp_path / "shapley.png")
    check(P.plot_subset_lattice(res, tmp_path / "lattice.png"), tmp_path / "lattice.png")
    check(P.plot_per_class(res, tmp_path / "per_class.png"), tmp_path / "per_class.png")
    check(P.plot_interactions(res, tmp_path / "interactions.png"), tmp_path / "interactions.png")
    check(P.plot_robustness(res, path=tmp_path / "robustness.png"), tmp_path / "robustness.png")
    fig = P.plot_confusions(data, ["rgb", "flow+audio", "rgb+flow+audio"], tmp_path / "confusion.png")
    assert len([a for a in fig.axes if a.images]) == 3
    check(fig, tmp_path / "confusion.png")
    with pytest.raises(ValueError, match="unknown subsets \\['audio\\+rgb'\\]"):
        P.plot_confusions(data, ["audio+rgb"])
    fig = P.plot_shapley(res)  # no path: returned only
    assert fig.axes and not list(tmp_path.glob("*.tmp*"))
    plt.close(fig)


def test_attention_figures(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 32, 40, 3), dtype=np.uint8)
    beta = rng.random(3)
    check(P.plot_temporal_attention(frames, beta / beta.sum(), tmp_path / "t.png"), tmp_path / "t.png")
    check(P.plot_spatial_attention(frames[0], rng.random((7, 7)), tmp_path / "s.png"), tmp_path / "s.png")
    a = rng.random((5, 8))
    check(P.plot_cross_attention(a / a.sum(1, keepdims=True), tmp_path / "x.png", query="pose", key="audio",
                                 query_times=np.linspace(0, 2, 5), key_times=np.linspace(0, 2, 8)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="frames must be \\(T, H, W, 3\\)"):
        P.plot_temporal_attention(frames[..., :2], beta)
    with pytest.raises(ValueError, match="attention must be \\(Tq, Tk\\)"):
        P.plot_cross_attention(a[0])


def test_banner_of_unreliable_values(study, tmp_path):
    """``banner``: the figure's title, white on red, wrapped to the figure's width; none without."""
    from matplotlib.colors import to_rgba

    data, res = study
    banner = "UNRELIABLE: subset paths never trained (see ablation.json)"
    draw = {"shapley": lambda **k: P.plot_shapley(res, **k), "lattice": lambda **k: P.plot_subset_lattice(res, **k),
            "per_class": lambda **k: P.plot_per_class(res, **k),
            "interactions": lambda **k: P.plot_interactions(res, **k),
            "robustness": lambda **k: P.plot_robustness(res, **k),
            "confusion": lambda **k: P.plot_confusions(data, **k)}
    for name, plot in draw.items():
        fig = plot(path=tmp_path / f"{name}.png", banner=banner)
        assert fig.get_suptitle().replace("\n", " ") == banner, name
        assert fig._suptitle.get_bbox_patch().get_facecolor() == to_rgba("red"), name
        check(fig, tmp_path / f"{name}.png")
        fig = plot()
        assert fig.get_suptitle() == "", name
        plt.close(fig)
