"""`repr(tensor)` in PyTorch's format: `tensor([[1, 2],\n        [3, 4]])`,
`tensor(4.)`, `tensor([0.1000, 2.0000], dtype=graphc.float64)`, with the
same rules for integer-valued floats, scientific notation, alignment,
line wrapping and summarization of large tensors."""

from __future__ import annotations

import numpy as np

from graphc.ir import dtypes

LINEWIDTH = 80
THRESHOLD = 1000
EDGEITEMS = 3
PRECISION = 4
# None: scientific notation when the values need it; True/False force it
# (graphc.set_printoptions(sci_mode=...)).
SCI_MODE = None


class _Formatter:
    """Chooses one format for all elements so columns line up."""

    def __init__(self, arr: np.ndarray):
        self.kind = arr.dtype.kind
        self.int_mode = True
        self.sci = False
        if self.kind == "f":
            finite = arr[np.isfinite(arr)].astype(np.float64)
            nonzero = np.abs(finite[finite != 0])
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            if nonzero.size:
                big, small = nonzero.max(), nonzero.min()
                self.sci = big / small > 1000.0 or big > 1e8 or (not self.int_mode and small < 1e-4)
            if SCI_MODE is not None:
                self.sci = bool(SCI_MODE)
        self.width = max((len(self.raw(v)) for v in arr.reshape(-1)), default=1)

    def raw(self, v) -> str:
        if self.kind == "b":
            return "True" if v else "False"
        if self.kind != "f":
            return str(int(v))
        if not np.isfinite(v):
            return str(float(v)).replace("inf", "inf").replace("nan", "nan")
        if self.sci:
            return f"{float(v):.{PRECISION}e}"
        if self.int_mode:
            return f"{float(v):.0f}."
        return f"{float(v):.{PRECISION}f}"

    def __call__(self, v) -> str:
        return self.raw(v).rjust(self.width)


def _summarize(arr: np.ndarray) -> np.ndarray:
    """The elements that are shown (edges of each long dim) for the formatter."""
    if arr.ndim == 0:
        return arr
    if arr.shape[0] > 2 * EDGEITEMS:
        arr = np.concatenate([arr[:EDGEITEMS], arr[-EDGEITEMS:]])
    return np.stack([_summarize(a) for a in arr]) if arr.ndim > 1 else arr


def _format(arr: np.ndarray, fmt: _Formatter, indent: int, summarize: bool) -> str:
    if arr.ndim == 0:
        return fmt(arr.item())
    n = arr.shape[0]
    cut = summarize and n > 2 * EDGEITEMS
    idx = list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n)) if cut else list(range(n))
    if arr.ndim == 1:
        items = [" ..." if i is None else fmt(arr[i]) for i in idx]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[k : k + per_line]) for k in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    sep = "," + "\n" * (arr.ndim - 1) + " " * (indent + 1)
    parts = ["..." if i is None else _format(arr[i], fmt, indent + 1, summarize) for i in idx]
    return "[" + sep.join(parts) + "]"


def format_array(arr: np.ndarray, indent: int = 7) -> str:
    """The body of a tensor repr (what goes between `tensor(` and `)`)."""
    summarize = arr.size > THRESHOLD
    shown = _summarize(arr) if summarize else arr
    return _format(arr, _Formatter(shown), indent, summarize)


def format_tensor(t) -> str:
    from graphc._tensor_core import get_default_dtype

    suffix = []
    if t.is_symbolic:
        body = f"<symbolic {t._value.type}>"
    elif t.numel() == 0:
        body = "[]" if t.ndim == 1 else f"[], size=({', '.join(str(d) for d in t.shape)}{',' if t.ndim == 1 else ''})"
    else:
        body = format_array(t._concrete("repr", "Print the tensor outside the compiled function."))
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    dtype = t.dtype
    if not (dtype is get_default_dtype() or dtype is dtypes.int64 or dtype is dtypes.bool_):
        suffix.append(f"dtype={dtype!r}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    prefix = "Parameter containing:\n" if type(t).__name__ == "Parameter" else ""
    return prefix + "tensor(" + body + "".join(", " + s for s in suffix) + ")"
