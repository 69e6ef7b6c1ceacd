"""make_grid and save_image with torchvision.utils' arguments and results."""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc.vision._pil import require_pil

__all__ = ["make_grid", "save_image"]


def _as_batch(tensor) -> np.ndarray:
    """A float array [B, C, H, W] from a tensor [B, C, H, W], [C, H, W] or
    [H, W], or a list of [C, H, W] tensors; one channel becomes three."""
    if isinstance(tensor, (list, tuple)):
        if not all(isinstance(t, graphc.Tensor) for t in tensor):
            raise TypeError(f"tensor or list of tensors expected, got a list of {[type(t).__name__ for t in tensor]}")
        tensor = graphc.stack(list(tensor), 0)
    if not isinstance(tensor, graphc.Tensor):
        raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
    array = tensor.detach().cpu().numpy()
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        if array.shape[0] == 1:
            array = np.concatenate([array] * 3, 0)
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"make_grid: expected a tensor of 2, 3 or 4 dims, got shape {tuple(tensor.shape)}")
    if array.shape[1] == 1:
        array = np.concatenate([array] * 3, 1)
    return array


def _rescale(array: np.ndarray, value_range) -> np.ndarray:
    """Clamp to value_range (default: the array's min and max) and map it to [0, 1]."""
    low, high = value_range if value_range is not None else (float(array.min()), float(array.max()))
    return (np.clip(array, low, high) - low) / max(high - low, 1e-5)


def make_grid(
    tensor,
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range=None,
    scale_each: bool = False,
    pad_value: float = 0.0,
):
    """Tile a batch of images [B, C, H, W] into one image [C, H', W'],
    `nrow` images per row, `padding` pixels of `pad_value` around each.

    normalize maps value_range (default: the batch's min and max, or each
    image's with scale_each) to [0, 1]. One channel is repeated to three;
    a batch of one image is returned as that image, unpadded.
    """
    if value_range is not None and not isinstance(value_range, tuple):
        raise TypeError("value_range has to be a tuple (min, max) if specified. min and max are numbers")
    array = _as_batch(tensor)
    if normalize:
        if scale_each:
            array = np.stack([_rescale(image, value_range) for image in array])
        else:
            array = _rescale(array, value_range)
    batch, channels, height, width = array.shape
    if batch == 1:
        return graphc.from_numpy(np.ascontiguousarray(array[0]))
    columns = min(nrow, batch)
    rows = int(math.ceil(batch / columns))
    cell_h, cell_w = height + padding, width + padding
    grid = np.full((channels, cell_h * rows + padding, cell_w * columns + padding), pad_value, dtype=array.dtype)
    for k in range(batch):
        top = (k // columns) * cell_h + padding
        left = (k % columns) * cell_w + padding
        grid[:, top : top + height, left : left + width] = array[k]
    return graphc.from_numpy(grid)


def save_image(tensor, fp, format=None, **kwargs) -> None:
    """Save a tensor (or a batch, tiled by make_grid with **kwargs) as an
    image file; values in [0, 1] map to 0..255 (rounded, clamped). `format`
    overrides the one the file name implies. Needs Pillow."""
    image_module = require_pil()
    grid = make_grid(tensor, **kwargs).numpy()
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    image_module.fromarray(np.ascontiguousarray(pixels)).save(fp, format=format)
