"""The base class of graphc.vision's datasets (torchvision.datasets.VisionDataset)."""

from __future__ import annotations

import os

from graphc.utils.data import Dataset


class VisionDataset(Dataset):
    """Base of the image datasets: holds `root`, `transform` and
    `target_transform`, and `.data` / `.targets` tensors."""

    def __init__(self, root, transform=None, target_transform=None):
        self.root = os.fspath(os.path.expanduser(root)) if root is not None else None
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        """(transform(image), target_transform(label)); the image is a uint8
        HxW numpy array, the label a Python int."""
        image = self.data.numpy()[index]
        target = int(self.targets.numpy()[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform}")
        return "\n".join(lines)
