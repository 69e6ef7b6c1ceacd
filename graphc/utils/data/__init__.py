"""`graphc.utils.data`: datasets, samplers and the DataLoader with
PyTorch's API (`torch.utils.data`)."""

from graphc.utils.data.collate import default_collate, default_convert
from graphc.utils.data.dataloader import DataLoader
from graphc.utils.data.dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from graphc.utils.data.distributed import DistributedSampler
from graphc.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
)
from graphc.utils.data.worker import get_worker_info

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "Subset",
    "ConcatDataset",
    "random_split",
    "DataLoader",
    "default_collate",
    "default_convert",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "BatchSampler",
    "get_worker_info",
    "DistributedSampler",
]
