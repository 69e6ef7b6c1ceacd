"""Image datasets with torchvision's API: MNIST, FashionMNIST, and
SyntheticDigits (procedurally drawn digits for use without data or network).

Where MNIST looks for its files, for `root`: `root/MNIST/raw/` (torchvision's
layout), `root/raw/` and `root/` itself, each file either gzipped (`.gz`) or
unpacked. So `MNIST('../shared/data/mnist', train=False)` reads a folder that
holds the four (or, for the test split, two) IDX files directly.
"""

from __future__ import annotations

import hashlib
import math
import os
import urllib.error
import urllib.request

import numpy as np

import graphc
from graphc.errors import GraphcError
from graphc.runtime.cache import atomic_write
from graphc.vision._base import VisionDataset

# Datasets of image files and generated images live in folder.py.
from graphc.vision.folder import DatasetFolder, FakeData, ImageFolder
from graphc.vision.idx import IDXError, read_idx

__all__ = ["VisionDataset", "MNIST", "FashionMNIST", "SyntheticDigits", "DatasetNotFoundError"]


class DatasetNotFoundError(GraphcError, FileNotFoundError):
    """The files of a dataset are not where it looked, and downloading was
    not requested or failed. The message lists every path tried and every
    URL attempted. Fix: put the files in one of the listed folders, pass
    `download=True` on a machine with network access, or use
    `SyntheticDigits` for offline experiments."""


class MNIST(VisionDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images
    (uint8 28x28) with labels 0-9.

    `.data` is a uint8 tensor (N, 28, 28), `.targets` an int64 tensor (N,).
    `download=True` fetches missing files from `mirrors` into
    `root/MNIST/raw/` and checks their md5; without network it raises
    `DatasetNotFoundError` naming the paths looked at and the URLs tried.

    >>> test = MNIST('../shared/data/mnist', train=False)   # doctest: +SKIP
    >>> len(test), test[0][1]                                # doctest: +SKIP
    (10000, 7)
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]
    download_timeout = 30.0

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        paths = [self._find(name) for name in names]
        if None in paths and download:
            self.download()
            paths = [self._find(name) for name in names]
        if None in paths:
            raise DatasetNotFoundError(self._missing_message(names, download))
        images = read_idx(paths[0], expected_ndim=3)
        labels = read_idx(paths[1], expected_ndim=1)
        if len(images) != len(labels):
            raise IDXError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
        self.data = graphc.from_numpy(np.ascontiguousarray(images.astype(np.uint8)))
        self.targets = graphc.from_numpy(labels.astype(np.int64))

    @property
    def raw_folder(self) -> str:
        """torchvision's download folder: root/<ClassName>/raw."""
        return os.path.join(self.root, type(self).__name__, "raw")

    def _search_dirs(self) -> list[str]:
        return [self.raw_folder, os.path.join(self.root, "raw"), self.root]

    def _find(self, name: str):
        for folder in self._search_dirs():
            for candidate in (os.path.join(folder, name + ".gz"), os.path.join(folder, name)):
                if os.path.isfile(candidate):
                    return candidate
        return None

    def _missing_message(self, names, download: bool) -> str:
        split = "train" if self.train else "test"
        looked = [
            os.path.join(folder, name + ext) for name in names for folder in self._search_dirs() for ext in (".gz", "")
        ]
        lines = [f"{type(self).__name__} {split} files not found. Looked for:"] + [f"    {p}" for p in looked]
        if self.train and self._find("t10k-images-idx3-ubyte") is not None:
            lines.append(
                "Only the test split (t10k-*) is present here: use train=False, or split the test set "
                "with graphc.utils.data.random_split."
            )
        if not download:
            lines.append("Pass download=True to fetch them, or use graphc.vision.datasets.SyntheticDigits offline.")
        return "\n".join(lines)

    def download(self) -> None:
        """Fetch the files of the requested split that are missing into
        `raw_folder`, trying each mirror, verifying md5 sums; each file is
        written atomically. Raises DatasetNotFoundError listing the URLs
        tried and why each failed."""
        os.makedirs(self.raw_folder, exist_ok=True)
        prefix = "train" if self.train else "t10k"
        for filename, md5 in self.resources:
            if not filename.startswith(prefix) or self._find(filename[:-3]) is not None:
                continue
            self._download_file(filename, md5)

    def _download_file(self, filename: str, md5: str) -> None:
        target = os.path.join(self.raw_folder, filename)
        failures = []
        for mirror in self.mirrors:
            url = mirror + filename
            try:
                _fetch_url(url, target, md5, self.download_timeout)
                return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                failures.append(f"    {url}: {exc}")
        raise DatasetNotFoundError(
            f"{type(self).__name__}: could not download {filename} to {target}. Tried:\n"
            + "\n".join(failures)
            + "\n"
            + self._missing_message([filename[:-3]], download=True)
        )


def _fetch_url(url: str, target: str, md5: str, timeout: float) -> None:
    """Download `url` and write it to `target` atomically (mode 0666 less the
    umask, like any file the user creates); the file appears only if its md5
    matches. The files are tens of megabytes, so they are held in memory."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read()
    actual = hashlib.md5(data).hexdigest()
    if actual != md5:
        raise ValueError(f"md5 mismatch (expected {md5}, got {actual})")
    atomic_write(target, data)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28x28 grayscale clothing images in 10
    classes, in MNIST's file format and layout (root/FashionMNIST/raw)."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# Digit skeletons in a unit box (x right, y down), as polylines. Curves are
# sampled arcs: (cx, cy, rx, ry, start_deg, end_deg).
def _arc(cx, cy, rx, ry, start, end, points=10):
    angles = np.radians(np.linspace(start, end, points))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


_DIGIT_STROKES = {
    0: [_arc(0.5, 0.5, 0.28, 0.4, 0, 360, 20)],
    1: [[(0.35, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [_arc(0.5, 0.32, 0.26, 0.22, 180, 360 + 30) + [(0.22, 0.9), (0.8, 0.9)]],
    3: [_arc(0.48, 0.3, 0.25, 0.2, 200, 450), _arc(0.48, 0.7, 0.28, 0.2, 270, 520)],
    4: [[(0.65, 0.9), (0.65, 0.1), (0.2, 0.65), (0.82, 0.65)]],
    5: [[(0.75, 0.1), (0.3, 0.1), (0.27, 0.45)] + _arc(0.48, 0.65, 0.27, 0.25, 220, 500)[1:]],
    6: [_arc(0.5, 0.68, 0.25, 0.22, 0, 360, 16), [(0.27, 0.65), (0.4, 0.3), (0.62, 0.08)]],
    7: [[(0.2, 0.1), (0.8, 0.1), (0.42, 0.9)], [(0.35, 0.5), (0.7, 0.5)]],
    8: [_arc(0.5, 0.3, 0.21, 0.19, 0, 360, 16), _arc(0.5, 0.7, 0.26, 0.21, 0, 360, 16)],
    9: [_arc(0.5, 0.32, 0.25, 0.22, 0, 360, 16), [(0.74, 0.35), (0.62, 0.7), (0.45, 0.92)]],
}


def _segments(digit: int) -> np.ndarray:
    """All stroke segments of a digit as an (S, 2, 2) array of endpoints."""
    segs = []
    for stroke in _DIGIT_STROKES[digit]:
        pts = np.asarray(stroke, dtype=np.float64)
        segs.append(np.stack([pts[:-1], pts[1:]], axis=1))
    return np.concatenate(segs)


def _render(segments: np.ndarray, thickness: float, size: int = 28) -> np.ndarray:
    """Anti-aliased strokes: intensity falls off with the distance of each
    pixel centre to the nearest segment."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :]  # (P, 1, 2)
    a, b = segments[None, :, 0, :], segments[None, :, 1, :]  # (1, S, 2)
    ab = b - a
    t = np.clip(((pixels - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    nearest = a + t[..., None] * ab
    dist = np.sqrt(((pixels - nearest) ** 2).sum(-1)).min(axis=1)
    intensity = np.clip(thickness / 2 + 0.5 - dist, 0.0, 1.0)
    return intensity.reshape(size, size)


class SyntheticDigits(VisionDataset):
    """`n` procedurally drawn 28x28 digits (uint8, white on black like
    MNIST) with labels 0-9, for demos and tests without data or network.

    Each image draws its digit's strokes after a random affine jitter
    (rotation, scale, shear, shift), with random stroke width and Gaussian
    noise. The same `(n, seed)` always gives the same images.

    >>> ds = SyntheticDigits(100, seed=0)
    >>> ds.data.shape, ds.targets.dtype
    (graphc.Size([100, 28, 28]), graphc.int64)
    """

    classes = MNIST.classes

    def __init__(self, n: int = 10000, seed: int = 0, transform=None, target_transform=None, noise: float = 0.08):
        super().__init__(None, transform=transform, target_transform=target_transform)
        if n <= 0:
            raise ValueError(f"SyntheticDigits: n must be positive, got {n}")
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.empty((n, 28, 28), dtype=np.uint8)
        skeletons = {d: _segments(d) for d in range(10)}
        for i, digit in enumerate(labels):
            images[i] = self._draw(skeletons[int(digit)], rng, noise)
        self.data = graphc.from_numpy(images)
        self.targets = graphc.from_numpy(labels.astype(np.int64))

    @staticmethod
    def _draw(skeleton: np.ndarray, rng, noise: float) -> np.ndarray:
        angle = math.radians(rng.uniform(-15, 15))
        scale = rng.uniform(0.8, 1.1)
        shear = rng.uniform(-0.25, 0.25)
        aspect = rng.uniform(0.8, 1.15)
        linear = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        linear = linear @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale * aspect, scale])
        shift = rng.uniform(-2.0, 2.0, size=2)
        # Map the unit box to a 20x20 area centred in the 28x28 image, as in MNIST.
        points = (skeleton - 0.5) @ linear.T * 20.0 + 14.0 + shift
        image = _render(points, thickness=rng.uniform(1.6, 2.8))
        image = image + rng.normal(0.0, noise, size=image.shape)
        return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


__all__ += ["DatasetFolder", "FakeData", "ImageFolder"]
