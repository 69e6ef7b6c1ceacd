"""The error for a PyTorch name graphc does not provide.

A tutorial that reaches a name graphc lacks should stop with a message that
says so (not a bare "has no attribute") and, where graphc offers another way,
names it. The error stays an AttributeError, so `hasattr` and `getattr(...,
default)` behave as for any missing attribute. docs/coverage.md lists, per
namespace, what graphc provides.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

_NO_COMPLEX = "graphc has no complex dtypes"
_NO_SPARSE = "graphc tensors are dense; build the dense tensor (graphc.zeros + index_put) instead"
_NO_QUANT = "graphc has no quantized tensors; keep float32"
_DECOMP = "graphc.linalg has no matrix decompositions yet; call numpy.linalg on t.numpy() eagerly"

# (namespace, name) -> what to use instead. Namespaces: torch, nn, F, Tensor.
ALTERNATIVES: dict[tuple[str, str], str] = {
    ("torch", "jit"): "use graphc.compile(model), which traces and compiles a model or a whole training step",
    ("torch", "complex"): _NO_COMPLEX,
    ("torch", "view_as_complex"): _NO_COMPLEX,
    ("torch", "view_as_real"): _NO_COMPLEX,
    ("torch", "polar"): _NO_COMPLEX,
    ("torch", "stft"): _NO_COMPLEX,
    ("torch", "istft"): _NO_COMPLEX,
    ("torch", "sparse_coo_tensor"): _NO_SPARSE,
    ("torch", "sparse_csr_tensor"): _NO_SPARSE,
    ("torch", "quantize_per_tensor"): _NO_QUANT,
    ("torch", "quantize_per_channel"): _NO_QUANT,
    ("torch", "svd"): _DECOMP,
    ("torch", "qr"): _DECOMP,
    ("torch", "det"): _DECOMP,
    ("torch", "inverse"): _DECOMP,
    ("torch", "cholesky"): _DECOMP,
    ("torch", "pinverse"): _DECOMP,
    ("torch", "lu"): _DECOMP,
    ("torch", "Stream"): "graphc runs CUDA work on one stream; graphc.cuda.synchronize() waits for it",
    ("torch", "Event"): "time with time.perf_counter() after graphc.cuda.synchronize()",
    ("nn", "SyncBatchNorm"): "use nn.BatchNorm2d (graphc.distributed averages gradients, not batch statistics)",
    ("nn", "CTCLoss"): "no CTC loss yet; nn.CrossEntropyLoss per frame for aligned targets",
    ("F", "ctc_loss"): "no CTC loss yet; F.cross_entropy per frame for aligned targets",
    ("F", "grid_sample"): "no grid_sample yet; F.interpolate covers regular resampling",
    ("Tensor", "storage"): "graphc tensors have no separate storage object; t.numpy() shares the CPU memory",
    ("Tensor", "untyped_storage"): "graphc tensors have no separate storage object; t.numpy() shares the CPU memory",
    ("Tensor", "to_sparse"): _NO_SPARSE,
}

_SPELLING = {"torch": "graphc", "nn": "graphc.nn", "F": "graphc.nn.functional", "Tensor": "graphc.Tensor"}
_TORCH_SPELLING = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "Tensor": "torch.Tensor"}


def missing(namespace: str, name: str, available: Iterable[str]) -> AttributeError:
    """The AttributeError for `name` looked up in one of graphc's torch-like
    namespaces: says graphc does not provide it, and names the alternative
    (or the closest name graphc has, for a typo)."""
    msg = f"{_SPELLING[namespace]} has no attribute {name!r}"
    if name.startswith("_"):
        return AttributeError(msg)
    hint = ALTERNATIVES.get((namespace, name))
    if hint is not None:
        msg += f"; graphc does not provide {_TORCH_SPELLING[namespace]}.{name}: {hint}"
    else:
        close = difflib.get_close_matches(name, [n for n in available if not n.startswith("_")], n=1, cutoff=0.8)
        if close:
            msg += f"; did you mean {close[0]!r}?"
    return AttributeError(msg + " (docs/coverage.md lists the PyTorch names graphc provides)")
