import numpy as np
import pytest

from multimodal_har.flow.visualize import color_wheel, flow_to_color


def test_zero_flow_is_white_and_layouts_agree():
    f = np.zeros((2, 4, 5), np.float32)
    f[0, 0, 0] = 1.0  # one moving pixel sets the scale
    img = flow_to_color(f)
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8
    assert (img[1:, :] == 255).all()
    np.testing.assert_array_equal(img, flow_to_color(np.moveaxis(f, 0, -1)))


def test_directions_get_distinct_hues_and_magnitude_saturates():
    dirs = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
    cols = {}
    for k, (u, v) in dirs.items():
        f = np.zeros((2, 1, 2), np.float32)
        f[:, 0, 0] = (u, v)
        f[:, 0, 1] = (u * 0.5, v * 0.5)
        img = flow_to_color(f, max_norm=1.0)
        cols[k] = img[0, 0].astype(int)
        # half the magnitude: same hue, closer to white
        assert img[0, 1].sum() > img[0, 0].sum()
    assert len({tuple(c) for c in cols.values()}) == 4
    assert cols["left"][2] > cols["left"][0]  # the wheel puts cyan/blue opposite red
    assert cols["right"][0] == 255


def test_nan_is_black_and_bad_shapes_raise():
    f = np.zeros((2, 2, 2), np.float32)
    f[0, 0, 0] = np.nan
    f[0, 1, 1] = 2
    assert (flow_to_color(f)[0, 0] == 0).all()
    with pytest.raises(ValueError):
        flow_to_color(np.zeros((3, 4, 4)))
    assert color_wheel().shape == (55, 3)
