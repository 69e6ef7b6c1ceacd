"""MNIST and FashionMNIST: the real test set in ../shared/data/mnist,
torchvision's folder layouts, error messages, download (offline)."""

import gzip
import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.utils.data import DataLoader
from graphc.vision import datasets, transforms
from graphc.vision.idx import IDXError, write_idx


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return datasets.MNIST(mnist_dir, train=False)


def test_real_mnist_test_set(mnist_test):
    assert len(mnist_test) == 10000
    assert mnist_test.data.shape == (10000, 28, 28) and mnist_test.data.dtype == graphc.uint8
    assert mnist_test.targets.dtype == graphc.int64
    assert mnist_test.targets.numpy()[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(mnist_test.targets.numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    image, label = mnist_test[0]
    assert label == 7 and isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (28, 28)


def test_normalized_like_torchvision(mnist_test):
    mnist_test.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    try:
        x, y = mnist_test[0]
        assert x.shape == (1, 28, 28) and x.dtype == graphc.float32 and y == 7
        expected = (mnist_test.data.numpy()[0].astype(np.float32) / 255 - np.float32(0.1307)) / np.float32(0.3081)
        np.testing.assert_allclose(x.numpy()[0], expected, rtol=1e-6)
        total, total_sq, count = 0.0, 0.0, 0
        for images, _labels in DataLoader(mnist_test, batch_size=1000):
            arr = images.numpy().astype(np.float64)
            total, total_sq, count = total + arr.sum(), total_sq + (arr**2).sum(), count + arr.size
        mean = total / count
        std = np.sqrt(total_sq / count - mean**2)
        # 0.1307/0.3081 are the training-set statistics; the test set is close.
        assert abs(mean) < 0.02 and abs(std - 1) < 0.03
    finally:
        mnist_test.transform = None


def test_train_split_missing_is_explained(mnist_dir):
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.MNIST(mnist_dir, train=True)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "Only the test split" in message
    assert str(Path(mnist_dir) / "MNIST" / "raw") in message


def _write_split(folder: Path, prefix: str, n: int, compress: bool):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    ext = ".gz" if compress else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return images, labels


@pytest.mark.parametrize("layout", ["MNIST/raw", "raw", "."])
@pytest.mark.parametrize("compress", [True, False])
def test_folder_layouts(tmp_path, layout, compress):
    images, labels = _write_split(tmp_path / layout, "train", 12, compress)
    ds = datasets.MNIST(tmp_path, train=True)
    assert len(ds) == 12
    np.testing.assert_array_equal(ds.data.numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    assert [ds[i][1] for i in range(3)] == [0, 1, 2]


def test_fashion_mnist_layout_and_target_transform(tmp_path):
    _write_split(tmp_path / "FashionMNIST" / "raw", "t10k", 5, True)
    ds = datasets.FashionMNIST(tmp_path, train=False, target_transform=lambda t: datasets.FashionMNIST.classes[t])
    assert [ds[i][1] for i in range(3)] == ["T-shirt/top", "Trouser", "Pullover"]
    with pytest.raises(datasets.DatasetNotFoundError):
        datasets.MNIST(tmp_path, train=False)  # FashionMNIST's folder is not MNIST's


def test_mismatched_counts_and_corrupt_files(tmp_path):
    _write_split(tmp_path, "t10k", 5, False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match="5 images but .* 4 labels"):
        datasets.MNIST(tmp_path, train=False)
    data = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[:1000])
    with pytest.raises(IDXError, match="truncated"):
        datasets.MNIST(tmp_path, train=False)


def test_download_failure_names_paths_and_urls(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.MNIST, "mirrors", [f"file://{tmp_path}/nowhere/", "file:///also/missing/"])
    with pytest.raises(datasets.DatasetNotFoundError) as info:
        datasets.MNIST(tmp_path / "root", train=False, download=True)
    message = str(info.value)
    assert f"file://{tmp_path}/nowhere/t10k-images-idx3-ubyte.gz" in message
    assert "file:///also/missing/t10k-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "root" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz") in message
    assert not any(p.name.endswith(".part") for p in (tmp_path / "root" / "MNIST" / "raw").iterdir())


def test_download_from_mirror_checks_md5(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _write_split(mirror, "t10k", 6, True)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    resources = [(name, md5.get(name, "0" * 32)) for name, _ in datasets.MNIST.resources]
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["file:///missing/mirror/", f"file://{mirror}/"])
    old_umask = os.umask(0o022)
    try:
        ds = datasets.MNIST(tmp_path / "root", train=False, download=True)
    finally:
        os.umask(old_umask)
    assert len(ds) == 6
    raw = tmp_path / "root" / "MNIST" / "raw"
    # Downloaded files honour the umask (0644 here), like any file the user creates.
    assert stat.S_IMODE((raw / "t10k-images-idx3-ubyte.gz").stat().st_mode) == 0o644
    assert not [p.name for p in raw.iterdir() if p.name.startswith(".")]

    bad = [(name, "f" * 32) for name, _ in datasets.MNIST.resources]
    monkeypatch.setattr(datasets.MNIST, "resources", bad)
    with pytest.raises(datasets.DatasetNotFoundError, match="md5 mismatch"):
        datasets.MNIST(tmp_path / "root2", train=False, download=True)
    assert not (tmp_path / "root2" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists()


def test_real_files_md5_match_the_resource_table(tmp_path, mnist_dir):
    table = dict(datasets.MNIST.resources)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert hashlib.md5((mnist_dir / name).read_bytes()).hexdigest() == table[name]


def test_unzipped_real_file_layout(tmp_path, mnist_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(
        gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    )
    shutil.copy(mnist_dir / "t10k-images-idx3-ubyte.gz", raw)
    ds = datasets.MNIST(tmp_path, train=False)
    assert len(ds) == 10000 and ds[0][1] == 7
