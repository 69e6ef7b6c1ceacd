"""SyntheticDigits: deterministic, balanced, and actually digit-like."""

import numpy as np

import graphc
from graphc.vision import datasets, transforms


def test_shape_dtype_determinism():
    a = datasets.SyntheticDigits(200, seed=3)
    b = datasets.SyntheticDigits(200, seed=3)
    c = datasets.SyntheticDigits(200, seed=4)
    assert a.data.shape == (200, 28, 28) and a.data.dtype == graphc.uint8
    assert a.targets.dtype == graphc.int64
    np.testing.assert_array_equal(a.data.numpy(), b.data.numpy())
    assert not np.array_equal(a.data.numpy(), c.data.numpy())
    assert np.bincount(a.targets.numpy()).tolist() == [20] * 10


def test_images_look_like_mnist_and_classes_are_separable():
    ds = datasets.SyntheticDigits(600, seed=0)
    images = ds.data.numpy().astype(np.float32) / 255
    labels = ds.targets.numpy()
    ink = (images > 0.5).mean(axis=(1, 2))
    assert 0.04 < ink.mean() < 0.35, "strokes cover a digit-like fraction of the image"
    assert images[:, :2, :].mean() < 0.1, "the border stays mostly dark"
    # Nearest class mean on held-out images beats chance (10%) by far.
    train, test = slice(0, 400), slice(400, 600)
    means = np.stack([images[train][labels[train] == d].mean(0) for d in range(10)])
    dists = ((images[test][:, None] - means[None]) ** 2).sum(axis=(2, 3))
    accuracy = (dists.argmin(1) == labels[test]).mean()
    assert accuracy > 0.6


def test_getitem_with_transform():
    ds = datasets.SyntheticDigits(10, seed=1, transform=transforms.ToTensor())
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == graphc.float32 and y == int(ds.targets.numpy()[3])
