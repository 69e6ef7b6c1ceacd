"""graphc.vision.utils (make_grid, save_image) and the FakeData,
DatasetFolder and ImageFolder datasets."""

import math
import os
import sys

import numpy as np
import pytest

import graphc
from graphc.vision import datasets, transforms
from graphc.vision.utils import make_grid, save_image

Image = pytest.importorskip("PIL.Image")


def _reference_grid(batch, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """torchvision.utils.make_grid's documented behaviour, restated with
    numpy for a 4-D batch of more than one image."""
    batch = np.array(batch, dtype=np.float32)
    if batch.shape[1] == 1:
        batch = np.repeat(batch, 3, 1)

    def rescale(x):
        low, high = value_range or (x.min(), x.max())
        return (np.clip(x, low, high) - low) / max(high - low, 1e-5)

    if normalize:
        batch = np.stack([rescale(x) for x in batch]) if scale_each else rescale(batch)
    n, c, h, w = batch.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, np.float32)
    for k in range(n):
        y, x = divmod(k, cols)
        top, left = y * (h + padding) + padding, x * (w + padding) + padding
        grid[:, top : top + h, left : left + w] = batch[k]
    return grid


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"nrow": 3, "padding": 1, "pad_value": 0.5},
        {"nrow": 2, "normalize": True},
        {"normalize": True, "value_range": (-1.0, 1.0), "padding": 0},
        {"nrow": 4, "normalize": True, "scale_each": True, "pad_value": 1.0},
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_make_grid_layout_and_normalization(kwargs, channels):
    batch = np.random.default_rng(0).standard_normal((5, channels, 4, 6)).astype(np.float32)
    grid = make_grid(graphc.tensor(batch), **kwargs)
    np.testing.assert_allclose(grid.numpy(), _reference_grid(batch, **kwargs), rtol=1e-6, atol=1e-7)


def test_make_grid_known_values():
    ones = graphc.ones(3, 1, 2, 2)
    grid = make_grid(ones, nrow=2, padding=1, pad_value=0.25)
    assert tuple(grid.shape) == (3, 7, 7)  # 2 rows x 2 columns of 2x2 cells, 1-pixel gaps
    assert grid[0].tolist()[0] == [0.25] * 7
    assert grid[0, 1].tolist() == [0.25, 1.0, 1.0, 0.25, 1.0, 1.0, 0.25]
    assert grid[0, 4].tolist() == [0.25, 1.0, 1.0, 0.25, 0.25, 0.25, 0.25]  # the missing 4th image
    single = make_grid(graphc.full((1, 3, 2, 2), 0.5))  # one image: returned as it is, unpadded
    assert tuple(single.shape) == (3, 2, 2)
    listed = make_grid([graphc.zeros(3, 2, 2), graphc.ones(3, 2, 2)], padding=0)
    assert listed[0].tolist() == [[0.0, 0.0, 1.0, 1.0]] * 2
    with pytest.raises(TypeError, match="value_range has to be a tuple"):
        make_grid(ones, normalize=True, value_range=[0, 1])
    with pytest.raises(TypeError, match="tensor or list of tensors expected"):
        make_grid(np.zeros((2, 3, 4, 4)))


def test_save_image_png_roundtrip(tmp_path):
    batch = np.random.default_rng(1).random((4, 3, 5, 5)).astype(np.float32)
    path = tmp_path / "grid.png"
    save_image(graphc.tensor(batch), str(path), nrow=2, padding=1)
    read = np.asarray(Image.open(path))
    grid = _reference_grid(batch, nrow=2, padding=1)
    expected = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(read, expected)
    save_image(graphc.tensor(batch[0]), tmp_path / "one", format="png")
    assert np.asarray(Image.open(tmp_path / "one")).shape == (5, 5, 3)


def test_missing_pillow_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="needs Pillow.*pip install pillow"):
        save_image(graphc.zeros(3, 2, 2), str(tmp_path / "x.png"))


def test_fake_data_is_deterministic_per_index():
    data = datasets.FakeData(size=6, image_size=(3, 8, 5), num_classes=4, transform=transforms.ToTensor())
    assert len(data) == 6
    image, target = data[2]
    assert tuple(image.shape) == (3, 8, 5) and image.dtype == graphc.float32
    assert 0 <= target < 4 and isinstance(target, int)
    again, same_target = data[2]
    np.testing.assert_array_equal(image.numpy(), again.numpy())
    assert target == same_target
    assert not np.array_equal(data[3][0].numpy(), image.numpy())
    shifted = datasets.FakeData(size=6, image_size=(3, 8, 5), num_classes=4, random_offset=1)
    np.testing.assert_array_equal(transforms.ToTensor()(shifted[2][0]).numpy(), data[3][0].numpy())
    gray = datasets.FakeData(size=2, image_size=(1, 4, 4), target_transform=lambda t: t + 100)
    assert gray[0][0].shape == (4, 4) and gray[0][1] >= 100
    with pytest.raises(IndexError):
        data[6]
    targets = [data[i][1] for i in range(6)]
    assert len(set(targets)) > 1


def _write_images(root, layout):
    for path, color in layout.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        Image.new("RGB", (4, 3), color).save(full)


def test_image_folder(tmp_path):
    _write_images(
        tmp_path,
        {
            "dog/b.png": (255, 0, 0),
            "dog/a.PNG": (0, 255, 0),
            "cat/nested/c.bmp": (0, 0, 255),
            "cat/d.jpg": (10, 20, 30),
        },
    )
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    data = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor(), target_transform=lambda t: -t)
    assert data.classes == ["cat", "dog"] and data.class_to_idx == {"cat": 0, "dog": 1}
    names = [os.path.relpath(p, tmp_path) for p, _ in data.samples]
    assert names == ["cat/d.jpg", "cat/nested/c.bmp", "dog/a.PNG", "dog/b.png"]
    assert data.targets == [0, 0, 1, 1] and data.imgs == data.samples and len(data) == 4
    image, target = data[3]
    assert tuple(image.shape) == (3, 3, 4) and target == -1
    np.testing.assert_allclose(image[:, 0, 0].numpy(), [1.0, 0.0, 0.0])
    raw = datasets.ImageFolder(str(tmp_path))
    assert isinstance(raw[2][0], Image.Image) and raw[2][0].mode == "RGB"


def test_dataset_folder_with_custom_loader_and_errors(tmp_path):
    for name in ("a/1.npy", "a/2.npy", "b/3.npy"):
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        np.save(tmp_path / name, np.array([int(name[2])]))
    (tmp_path / "b" / "skip.txt").write_text("left out: wrong extension")
    data = datasets.DatasetFolder(str(tmp_path), loader=lambda p: int(np.load(p)[0]), extensions=(".npy",))
    assert [data[i] for i in range(len(data))] == [(1, 0), (2, 0), (3, 1)]
    picky = datasets.DatasetFolder(
        str(tmp_path), loader=np.load, is_valid_file=lambda p: p.endswith("1.npy"), allow_empty=True
    )
    assert len(picky) == 1
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes b"):
        datasets.DatasetFolder(str(tmp_path), loader=np.load, is_valid_file=lambda p: p.endswith("1.npy"))
    with pytest.raises(ValueError, match="Both extensions and is_valid_file cannot be None"):
        datasets.DatasetFolder(str(tmp_path), loader=np.load)
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder"):
        datasets.ImageFolder(str(tmp_path / "a"))


def test_transforms_take_pil_images():
    pixels = np.random.default_rng(2).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    pipeline = transforms.Compose(
        [transforms.Resize((4, 4)), transforms.Pad(1), transforms.CenterCrop(5), transforms.ToTensor()]
    )
    from_pil = pipeline(image)
    from_array = pipeline(pixels)
    assert tuple(from_pil.shape) == (3, 5, 5)
    np.testing.assert_array_equal(from_pil.numpy(), from_array.numpy())
    graphc.manual_seed(0)
    flipped = transforms.RandomHorizontalFlip(p=1.0)(image)
    np.testing.assert_array_equal(flipped, pixels[:, ::-1])
    assert tuple(transforms.RandomCrop(3)(image).shape) == (3, 3, 3)
    gray = transforms.ToTensor()(Image.fromarray(pixels[:, :, 0]))
    np.testing.assert_allclose(gray.numpy()[0], pixels[:, :, 0] / 255.0, rtol=1e-6)
