"""Transforms, compared with torchvision's documented semantics."""

import numpy as np
import pytest
import torch

import graphc
from graphc.vision import transforms as T


def test_to_tensor_grayscale_and_color():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = T.ToTensor()(gray)
    assert out.shape == (1, 3, 4) and out.dtype == graphc.float32
    np.testing.assert_allclose(out.numpy()[0], gray / 255.0, rtol=1e-6)
    color = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    out = T.ToTensor()(color)
    assert out.shape == (3, 5, 6)
    np.testing.assert_allclose(out.numpy()[2], color[:, :, 2] / 255.0, rtol=1e-6)
    floats = np.full((2, 2), 3.0, np.float32)
    assert T.ToTensor()(floats).numpy().max() == 3.0, "non-uint8 arrays are not rescaled"
    with pytest.raises(TypeError, match="already a tensor"):
        T.ToTensor()(graphc.zeros(1, 2, 2))


def test_normalize_matches_torch_formula():
    rng = np.random.default_rng(1)
    x = rng.random((3, 4, 4)).astype(np.float32)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ours = T.Normalize(mean, std)(graphc.tensor(x)).numpy()
    theirs = ((torch.tensor(x) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        T.Normalize((0.1, 0.2), (1, 1))(graphc.tensor(x))
    with pytest.raises(TypeError, match="ToTensor"):
        T.Normalize((0.1,), (1,))(x)


def test_compose_and_lambda():
    pipeline = T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 2)])
    out = pipeline(np.full((2, 2), 255, np.uint8))
    np.testing.assert_allclose(out.numpy(), 2.0)
    assert "ToTensor" in repr(pipeline)


def test_random_crop_with_padding_is_a_shifted_window():
    image = np.arange(1, 26, dtype=np.uint8).reshape(5, 5)
    graphc.manual_seed(0)
    seen = set()
    for _ in range(30):
        out = T.RandomCrop(5, padding=2)(image)
        assert out.shape == (5, 5)
        padded = np.pad(image, 2)
        matches = [(i, j) for i in range(5) for j in range(5) if np.array_equal(padded[i : i + 5, j : j + 5], out)]
        assert matches, "the crop must be a window of the padded image"
        seen.add(matches[0])
    assert len(seen) > 5, "crops must vary"
    tensor_out = T.RandomCrop((2, 3))(graphc.from_numpy(np.zeros((1, 5, 5), np.float32)))
    assert tensor_out.shape == (1, 2, 3)
    with pytest.raises(ValueError, match="larger"):
        T.RandomCrop(6)(image)


def test_random_crop_is_reproducible_with_manual_seed():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    graphc.manual_seed(42)
    a = [T.RandomCrop(4)(image) for _ in range(5)]
    graphc.manual_seed(42)
    b = [T.RandomCrop(4)(image) for _ in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_random_horizontal_flip():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(image), image[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(image), image)
    flipped = T.RandomHorizontalFlip(p=1.0)(graphc.from_numpy(image[None].astype(np.float32)))
    np.testing.assert_array_equal(flipped.numpy()[0], image[:, ::-1])
    graphc.manual_seed(0)
    flips = sum(T.RandomHorizontalFlip()(image)[0, 0] == 2 for _ in range(200))
    assert 60 < flips < 140


def test_center_crop_and_resize():
    image = np.arange(36, dtype=np.uint8).reshape(6, 6)
    np.testing.assert_array_equal(T.CenterCrop(2)(image), image[2:4, 2:4])
    assert T.CenterCrop(8)(image).shape == (8, 8)
    up = T.Resize((12, 12))(image)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(image, 2, 0), 2, 1))
    assert T.Resize(3)(np.zeros((6, 12), np.uint8)).shape == (3, 6)
    ref = torch.nn.functional.interpolate(
        torch.tensor(image, dtype=torch.float32)[None, None], size=(4, 4), mode="nearest"
    )[0, 0].numpy()
    np.testing.assert_array_equal(T.Resize((4, 4))(image), ref)
