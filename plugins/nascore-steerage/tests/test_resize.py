"""The six Pillow image filters as exact linear maps (section 4.2.2)."""

import numpy as np
import pytest
import torch

from nascore.errors import ConfigError
from nascore_steerage.resize import FILTERS, ImageResize, pillow_resize, resize_matrix


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("size", [(14, 14), (21, 21), (7, 12)])
def test_matches_pillow_through_torchvision(name, size):
    rng = np.random.default_rng(0)
    img = rng.normal(size=(28, 28)).astype(np.float32)
    ours = ImageResize((28, 28), size, name)(torch.tensor(img)[None, None])[0, 0].numpy()
    ref = pillow_resize(img, size, name)
    assert ours.shape == size
    assert np.abs(ours - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("name", FILTERS)
def test_rows_are_normalized_so_constants_and_normalization_commute(name):
    """Every filter's weights sum to 1: a constant image stays constant, so resizing
    commutes with the per-channel normalization the tasks apply."""
    R = resize_matrix(28, 14, name)
    assert np.allclose(R.sum(axis=1), 1.0, atol=1e-6)


def test_batches_channels_and_identity():
    x = torch.randn(5, 3, 32, 32)
    y = ImageResize((32, 32), (24, 24), "bilinear")(x)
    assert y.shape == (5, 3, 24, 24)
    assert torch.equal(ImageResize((32, 32), (32, 32), "box")(x), x)


def test_sizes_larger_than_the_input_are_refused():
    with pytest.raises(ConfigError, match="larger than the input"):
        ImageResize((28, 28), (32, 32), "lanczos")
    with pytest.raises(ConfigError, match="unknown image filter"):
        resize_matrix(28, 14, "gaussian")
