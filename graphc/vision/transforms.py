"""Image transforms with torchvision's names and semantics.

Images are numpy arrays, uint8 HxW (grayscale) or HxWxC,
which is what graphc.vision datasets hand to their `transform` (ImageFolder
hands PIL images, as torchvision's does; the geometric transforms turn
those into arrays). `ToTensor` turns either into float32 CxHxW tensors in
[0, 1]; the geometric transforms
accept either form (arrays HxW[xC] or tensors [..., H, W]). Random
transforms draw from graphc's global generator, so `graphc.manual_seed`
makes augmentation reproducible (DataLoader workers are seeded separately).
"""

from __future__ import annotations

import numbers

import numpy as np

import graphc
from graphc.vision._pil import is_pil_image

__all__ = [
    "Compose",
    "ToTensor",
    "Normalize",
    "Lambda",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "CenterCrop",
    "Pad",
]


def _uniform() -> float:
    """One uniform float in [0, 1) from graphc's global generator."""
    return float(graphc.rand(1).numpy()[0])


def _randint(high: int) -> int:
    """One integer in [0, high) from graphc's global generator."""
    return int(graphc.randint(0, high, (1,)).numpy()[0])


def _is_tensor(img) -> bool:
    return isinstance(img, graphc.Tensor)


def _as_array(img) -> np.ndarray:
    if is_pil_image(img):
        return _pil_to_array(img)
    return img.numpy() if _is_tensor(img) else np.asarray(img)


def _like(result: np.ndarray, original):
    # Geometric transforms return the kind of image they were given.
    return graphc.from_numpy(np.ascontiguousarray(result)) if _is_tensor(original) else result


def _image_size(img) -> tuple[int, int]:
    """(height, width): tensors are [..., H, W], arrays H x W [x C]; PIL
    images give their size (the geometric transforms return them as arrays)."""
    if is_pil_image(img):
        width, height = img.size
        return height, width
    shape = tuple(img.shape)
    if len(shape) < 2:
        raise ValueError(f"expected an image with at least 2 dimensions, got shape {shape}")
    return (shape[-2], shape[-1]) if _is_tensor(img) else (shape[0], shape[1])


def _crop(img, top: int, left: int, height: int, width: int):
    array = _as_array(img)
    if _is_tensor(img):
        return _like(array[..., top : top + height, left : left + width], img)
    return array[top : top + height, left : left + width]


def _pad(img, padding, fill=0, padding_mode: str = "constant"):
    left, top, right, bottom = _padding_ltrb(padding)
    array = _as_array(img)
    spatial = [(top, bottom), (left, right)]
    pads = [(0, 0)] * (array.ndim - 2) + spatial if _is_tensor(img) else spatial + [(0, 0)] * (array.ndim - 2)
    modes = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}
    if padding_mode not in modes:
        raise ValueError(f"padding_mode must be one of {sorted(modes)}, got {padding_mode!r}")
    kwargs = {"constant_values": fill} if padding_mode == "constant" else {}
    return _like(np.pad(array, pads, mode=modes[padding_mode], **kwargs), img)


def _padding_ltrb(padding) -> tuple[int, int, int, int]:
    if isinstance(padding, numbers.Integral):
        return (padding,) * 4
    padding = tuple(padding)
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding
    raise ValueError(f"padding must be an int or a 2- or 4-element sequence, got {padding}")


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    size = tuple(size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"{name} should be an int or a sequence of 1 or 2 ints, got {size}")
    return size


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for transform in self.transforms:
            img = transform(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class ToTensor:
    """numpy image HxW or HxWxC, or PIL image -> tensor CxHxW. uint8 images
    are scaled to float32 in [0, 1]; other dtypes are kept as they are (as
    torchvision does for ndarrays)."""

    def __call__(self, pic):
        if is_pil_image(pic):
            pic = _pil_to_array(pic)
        if _is_tensor(pic):
            raise TypeError("ToTensor: input is already a tensor; ToTensor takes a numpy image (HxW or HxWxC)")
        if not isinstance(pic, np.ndarray):
            raise TypeError(f"ToTensor: expected a numpy array image, got {type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: expected an HxW or HxWxC image, got shape {pic.shape}")
        array = pic[:, :, None] if pic.ndim == 2 else pic
        array = np.ascontiguousarray(array.transpose(2, 0, 1))
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / np.float32(255)
        return graphc.from_numpy(array)

    def __repr__(self) -> str:
        return "ToTensor()"


def _pil_to_array(pic) -> np.ndarray:
    """A PIL image's pixels: uint8 HxW or HxWxC; 1-bit images become 0/255,
    as torchvision reads them."""
    array = np.array(pic)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    return array


class Normalize:
    """(tensor - mean) / std per channel, on a float tensor [..., C, H, W]."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if any(s == 0 for s in self.std):
            raise ValueError(
                f"std evaluated to zero after conversion to float, leading to division by zero: {self.std}"
            )
        self.inplace = inplace

    def __call__(self, tensor):
        if not _is_tensor(tensor):
            raise TypeError(f"Normalize: expected a tensor, got {type(tensor).__name__}; apply ToTensor first")
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"Normalize: input tensor should be a float tensor, got {tensor.dtype}")
        array = tensor.numpy()
        channels = array.shape[-3] if array.ndim >= 3 else 1
        if len(self.mean) not in (1, channels) or len(self.std) not in (1, channels):
            raise ValueError(f"Normalize: {len(self.mean)} means / {len(self.std)} stds for {channels} channels")
        mean = np.asarray(self.mean, dtype=array.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=array.dtype).reshape(-1, 1, 1)
        result = (array - mean) / std
        if self.inplace:
            array[...] = result
            return tensor
        return graphc.from_numpy(result.astype(array.dtype, copy=False))

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a user function."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return "Lambda()"


class Pad:
    """Pad the image border (`padding`: int, (lr, tb) or (l, t, r, b))."""

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img):
        return _pad(img, self.padding, self.fill, self.padding_mode)


class RandomCrop:
    """Crop a random `size` window, after optional `padding`;
    `pad_if_needed` pads images smaller than the crop."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _pair(size, "size")
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    def __call__(self, img):
        if self.padding is not None:
            img = _pad(img, self.padding, self.fill, self.padding_mode)
        height, width = _image_size(img)
        crop_h, crop_w = self.size
        if self.pad_if_needed and (height < crop_h or width < crop_w):
            extra_w, extra_h = max(crop_w - width, 0), max(crop_h - height, 0)
            img = _pad(img, (extra_w, extra_h), self.fill, self.padding_mode)
            height, width = _image_size(img)
        if height < crop_h or width < crop_w:
            raise ValueError(f"Required crop size {self.size} is larger than input image size {(height, width)}")
        top = _randint(height - crop_h + 1)
        left = _randint(width - crop_w + 1)
        return _crop(img, top, left, crop_h, crop_w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability `p`."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        if _uniform() < self.p:
            array = _as_array(img)
            return _like(array[..., ::-1] if _is_tensor(img) else array[:, ::-1], img)
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class CenterCrop:
    """Crop the central `size` window (zero-padding images that are smaller)."""

    def __init__(self, size):
        self.size = _pair(size, "size")

    def __call__(self, img):
        height, width = _image_size(img)
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            pad_w, pad_h = max(crop_w - width, 0), max(crop_h - height, 0)
            img = _pad(img, (pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2))
            height, width = _image_size(img)
        top = int(round((height - crop_h) / 2.0))
        left = int(round((width - crop_w) / 2.0))
        return _crop(img, top, left, crop_h, crop_w)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class Resize:
    """Resize with nearest-neighbour sampling. An int `size` sets the
    shorter side (keeping the aspect ratio); (h, w) sets both."""

    def __init__(self, size, interpolation="nearest"):
        if str(interpolation).lower().split(".")[-1] != "nearest":
            raise NotImplementedError(f"Resize: only nearest interpolation is implemented, got {interpolation}")
        self.size = size

    def _target(self, height: int, width: int) -> tuple[int, int]:
        if isinstance(self.size, numbers.Integral):
            short, long = (height, width) if height <= width else (width, height)
            new_long = int(self.size * long / short)
            return (self.size, new_long) if height <= width else (new_long, self.size)
        return _pair(self.size, "size")

    def __call__(self, img):
        height, width = _image_size(img)
        new_h, new_w = self._target(height, width)
        # Nearest source pixel of each target pixel, as floor(dst * scale).
        rows = np.minimum((np.arange(new_h) * (height / new_h)).astype(np.int64), height - 1)
        cols = np.minimum((np.arange(new_w) * (width / new_w)).astype(np.int64), width - 1)
        array = _as_array(img)
        if _is_tensor(img):
            return _like(array[..., rows[:, None], cols[None, :]], img)
        return array[rows[:, None], cols[None, :]]

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, interpolation=nearest)"
