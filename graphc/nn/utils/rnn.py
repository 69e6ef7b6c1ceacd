"""Variable-length sequences: padding and packing (torch.nn.utils.rnn).

A PackedSequence stores a batch of sequences time step by time step: `data`
holds, for t = 0, 1, ..., the rows of the sequences still running at step t
(longest first), and `batch_sizes[t]` says how many there are. Packing and
unpacking are one `index_select` each with an index computed from the
lengths, so both differentiate and trace like any other op.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import graphc
import graphc.nn.functional as F
from graphc._checks import require_tensor


class PackedSequence(NamedTuple):
    """A packed batch of variable-length sequences (see the module docstring).

    `sorted_indices[i]` is the original batch position of the i-th longest
    sequence; `unsorted_indices` is its inverse. Both are None when the
    sequences were packed already sorted (enforce_sorted=True).
    """

    # Passed to a compiled function, these stay concrete and their values
    # are part of the compile cache key (a new length pattern re-traces).
    _graphc_static_fields = ("batch_sizes", "sorted_indices", "unsorted_indices")

    data: graphc.Tensor
    batch_sizes: graphc.Tensor
    sorted_indices: graphc.Tensor | None = None
    unsorted_indices: graphc.Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        """Move or cast `data` (the index tensors stay int64, as in PyTorch)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        device = data.device

        def move(t):
            return None if t is None else t.to(device)

        return PackedSequence(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def float(self) -> PackedSequence:
        return self.to(dtype=graphc.float32)

    def double(self) -> PackedSequence:
        return self.to(dtype=graphc.float64)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _int_list(values, what: str) -> list[int]:
    if isinstance(values, graphc.Tensor):
        if values.is_floating_point():
            raise TypeError(f"{what} must be integers, got a tensor of dtype {values.dtype}")
        values = values.tolist()
    return [int(v) for v in values]


def _host_tensor(values) -> graphc.Tensor:
    """A concrete int64 CPU tensor, even inside a compiled function: lengths
    and orders are Python data the packing code reads, not graph values."""
    return graphc.Tensor._wrap(np.asarray(values, dtype=np.int64), False)


def _index(values, device) -> graphc.Tensor:
    """An index for index_select (a constant of the graph when tracing)."""
    if isinstance(values, graphc.Tensor):
        values = values.tolist()
    return graphc.tensor(np.asarray(values, dtype=np.int64), device=device)


def _invert(order: np.ndarray) -> np.ndarray:
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return inverse


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Stack tensors of shape [L_i, *] into [L_max, B, *] ([B, L_max, *] with
    batch_first), padding each with `padding_value` on `padding_side`."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    for i, seq in enumerate(sequences):
        require_tensor("pad_sequence", f"sequences[{i}]", 1, seq)
        if seq.dim() == 0 or tuple(seq.shape[1:]) != tuple(sequences[0].shape[1:]):
            raise RuntimeError(
                "pad_sequence: all sequences must have the same trailing shape and at least one dim, got "
                f"shapes {[tuple(s.shape) for s in sequences]}"
            )
    longest = max(seq.shape[0] for seq in sequences)
    padded = []
    for seq in sequences:
        missing = longest - seq.shape[0]
        # F.pad lists the last dim first; only dim 0 grows.
        amounts = [0, 0] * (seq.dim() - 1) + ([0, missing] if padding_side == "right" else [missing, 0])
        padded.append(F.pad(seq, amounts, value=padding_value) if missing else seq)
    return graphc.stack(padded, 0 if batch_first else 1)


def _batch_sizes(lengths: list[int]) -> list[int]:
    """Sequences running at each step, for lengths sorted longest first."""
    return [sum(1 for n in lengths if n > t) for t in range(lengths[0])]


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch [T, B, *] ([B, T, *] with batch_first) whose
    sequence b has length lengths[b]. With enforce_sorted, lengths must be
    in decreasing order; otherwise they are sorted here and the order kept
    in sorted_indices."""
    require_tensor("pack_padded_sequence", "input", 1, input)
    lengths = _int_list(lengths, "pack_padded_sequence: lengths")
    batch_dim = 0 if batch_first else 1
    if input.dim() < 2 or len(lengths) != input.shape[batch_dim]:
        raise ValueError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {len(lengths)} "
            f"(batch_size={input.shape[batch_dim] if input.dim() > batch_dim else None})"
        )
    if min(lengths) <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    steps = input.shape[1 - batch_dim]
    if max(lengths) > steps:
        raise RuntimeError(f"pack_padded_sequence: a length of {max(lengths)} exceeds the {steps} padded steps")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
                "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement "
                "if you do not need ONNX exportability."
            )
        sorted_indices = unsorted_indices = None
    else:
        sorted_indices = _host_tensor(order)
        unsorted_indices = _host_tensor(_invert(order))
    sorted_lengths = [lengths[i] for i in order]
    sizes = _batch_sizes(sorted_lengths)
    batch = len(lengths)
    # Packed row i of step t is padded position (t, order[i]); flatten the
    # padded batch so that position is one row.
    rows = []
    for t, n in enumerate(sizes):
        for b in order[:n]:
            rows.append(int(b) * steps + t if batch_first else t * batch + int(b))
    flat = input.reshape(steps * batch, *input.shape[2:])
    data = flat.index_select(0, _index(rows, input.device))
    batch_sizes = _host_tensor(sizes)
    return PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)


def pad_packed_sequence(
    sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0, total_length=None
):
    """Inverse of pack_padded_sequence: (padded [T, B, *] or [B, T, *],
    int64 lengths), in the batch order the sequences were packed from."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    sizes = _int_list(sequence.batch_sizes, "batch_sizes")
    batch, steps = sizes[0], len(sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {steps}"
            )
        steps = total_length
    sorted_lengths = [sum(1 for n in sizes if n > b) for b in range(batch)]
    order = (
        np.arange(batch)
        if sequence.sorted_indices is None
        else np.asarray(_int_list(sequence.sorted_indices, "sorted_indices"))
    )
    data = sequence.data
    total = data.shape[0]
    # Every padded slot reads either its packed row or the extra fill row `total`.
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    where = np.full((steps, batch), total, dtype=np.int64)
    for t, n in enumerate(sizes):
        where[t, order[:n]] = offsets[t] + np.arange(n)
    if batch_first:
        where = where.T
    fill = graphc.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    rows = graphc.cat([data, fill], 0).index_select(0, _index(where.reshape(-1), data.device))
    padded = rows.reshape(*where.shape, *data.shape[1:])
    lengths = np.empty(batch, dtype=np.int64)
    lengths[order] = sorted_lengths
    return padded, _host_tensor(lengths)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors [L_i, *] (longest first unless enforce_sorted
    is False)."""
    lengths = [seq.shape[0] for seq in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """Split a padded batch back into a list of tensors of the given lengths."""
    lengths = _int_list(lengths, "unpad_sequence: lengths")
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :n] for i, n in enumerate(lengths)]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of tensors a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
