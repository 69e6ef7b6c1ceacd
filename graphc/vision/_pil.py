"""Pillow, imported when an image file is read or written."""

from __future__ import annotations


def require_pil():
    """The PIL.Image module, or an ImportError that says how to get it."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            "reading and writing image files needs Pillow, which is not installed: pip install pillow"
        ) from error
    return Image


def is_pil_image(obj) -> bool:
    """True for a PIL image (without importing Pillow when it is absent)."""
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(obj, Image.Image)
