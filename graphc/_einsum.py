"""einsum: Einstein summation, lowered to diagonal, sum, permute, reshape,
expand and batched matrix products (DOT). No primitive of its own.

The steps, for an equation such as "bij,bjk->bik":
1. Parse: split the operands' subscripts and the output's ("->" omitted:
   the letters used once, in alphabetical order, after the ellipsis dims).
   "..." stands for the dims not named, and is given private labels.
2. Per operand: a label repeated in one operand takes the diagonal
   ("ii->i"); a label used by no other operand nor the output is summed
   away at once.
3. Operands are contracted left to right: the labels two operands share
   and that are still needed (by the output or a later operand) are batch
   dims, the shared labels no longer needed are summed by the matrix
   product, and each side's own labels are the rows and columns:
   [batch, M, K] @ [batch, K, N].
4. The result's labels are permuted into the output's order.
Size-1 dims broadcast against the same label's size elsewhere, as in torch.
"""

from __future__ import annotations

import string

from graphc import _elementwise as ew
from graphc import _reductions as red
from graphc import _shape
from graphc._tensor_core import Tensor
from graphc.errors import at_user_line

_LETTERS = set(string.ascii_letters)
# Private labels for the dims an ellipsis stands for (not letters, so they
# never clash with the user's; they sort before letters, as torch puts the
# ellipsis dims first in an implicit output).
_ELLIPSIS_LABELS = [chr(0x100 + i) for i in range(64)]


def _error(msg: str) -> RuntimeError:
    return RuntimeError(at_user_line(f"einsum(): {msg}"))


def _parse_term(term: str, where: str) -> list:
    """A term's labels, with "..." kept as one entry '...'."""
    labels: list = []
    i = 0
    while i < len(term):
        if term.startswith("...", i):
            if "..." in labels:
                raise _error(f"found more than one ellipsis ('...') in {where}")
            labels.append("...")
            i += 3
            continue
        ch = term[i]
        if ch not in _LETTERS:
            raise _error(f"invalid subscript given at index {i} in {where}, subscripts must be in [a-zA-Z]")
        labels.append(ch)
        i += 1
    return labels


def _expand_ellipsis(labels: list, ndim: int, k: int, ell_ndim: int) -> list:
    named = [lab for lab in labels if lab != "..."]
    if "..." not in labels:
        if len(named) != ndim:
            raise _error(
                f"the number of subscripts in the equation ({len(named)}) does not match the number of "
                f"dimensions ({ndim}) for operand {k} and no ellipsis was given"
            )
        return labels
    covered = ndim - len(named)
    if covered < 0:
        raise _error(
            f"the number of subscripts in the equation ({len(named)}) is more than the number of "
            f"dimensions ({ndim}) for operand {k}"
        )
    at = labels.index("...")
    ell = _ELLIPSIS_LABELS[ell_ndim - covered : ell_ndim]
    return labels[:at] + ell + labels[at + 1 :]


def _parse(equation: str, operands) -> tuple[list[list[str]], list[str]]:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(operands):
        raise _error("fewer operands were provided than specified in the equation")
    if len(terms) < len(operands):
        raise _error("more operands were provided than specified in the equation")
    parsed = [_parse_term(t, "the equation string") for t in terms]
    ell_ndim = 0
    for labels, x in zip(parsed, operands):
        if "..." in labels:
            ell_ndim = max(ell_ndim, x.ndim - (len(labels) - 1))
    inputs = [_expand_ellipsis(lab, x.ndim, k, ell_ndim) for k, (lab, x) in enumerate(zip(parsed, operands))]
    ell = _ELLIPSIS_LABELS[:ell_ndim]
    if arrow:
        out = _parse_term(rhs, "the output subscripts")
        if "..." in out:
            at = out.index("...")
            out = out[:at] + ell + out[at + 1 :]
        seen = set()
        used = {lab for labels in inputs for lab in labels}
        for lab in out:
            if lab in seen:
                raise _error(f"output subscript {lab} appears more than once in the output")
            if lab not in used:
                raise _error(f"output subscript {lab} does not appear in the equation for any input operand")
            seen.add(lab)
    else:
        counts: dict[str, int] = {}
        for labels in inputs:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        out = ell + sorted(lab for lab, c in counts.items() if c == 1 and lab not in ell)
    return inputs, out


def _diagonals(x: Tensor, labels: list, k: int) -> tuple[Tensor, list]:
    """Take the diagonal for every label repeated within one operand."""
    while len(set(labels)) != len(labels):
        lab = next(lab for lab in labels if labels.count(lab) > 1)
        i = labels.index(lab)
        j = labels.index(lab, i + 1)
        if x.shape[i] != x.shape[j]:
            raise _error(
                f"subscript {lab} is repeated for operand {k} but the sizes don't match, {x.shape[j]} != {x.shape[i]}"
            )
        x = _shape.diagonal(x, 0, i, j)  # the diagonal becomes the last dim
        labels = [lab2 for k, lab2 in enumerate(labels) if k not in (i, j)] + [lab]
    return x, labels


def _sum_labels(x: Tensor, labels: list, drop) -> tuple[Tensor, list]:
    axes = [i for i, lab in enumerate(labels) if lab in drop]
    if not axes:
        return x, labels
    return red.sum(x, tuple(axes)), [lab for lab in labels if lab not in drop]


def _permute(x: Tensor, labels: list, order: list) -> Tensor:
    perm = [labels.index(lab) for lab in order]
    return x if perm == list(range(len(perm))) else _shape.permute(x, perm)


def _contract(a: Tensor, la: list, b: Tensor, lb: list, needed: set) -> tuple[Tensor, list]:
    """a and b contracted over their shared labels that are not `needed`."""
    shared = [lab for lab in la if lab in lb]
    batch = [lab for lab in shared if lab in needed]
    summed = [lab for lab in shared if lab not in needed]
    rows = [lab for lab in la if lab not in shared]
    cols = [lab for lab in lb if lab not in shared]
    size = {lab: a.shape[la.index(lab)] for lab in la}
    size.update({lab: b.shape[lb.index(lab)] for lab in cols})
    bsize = [max(a.shape[la.index(lab)], b.shape[lb.index(lab)]) for lab in batch]
    ksize = [max(a.shape[la.index(lab)], b.shape[lb.index(lab)]) for lab in summed]
    a = _permute(a, la, batch + rows + summed)
    b = _permute(b, lb, batch + summed + cols)
    # Broadcast size-1 shared dims (the summed ones too: a size-1 dim
    # against n elements means each of them is multiplied by the one).
    a = ew.expand_to(a, tuple(bsize) + tuple(size[lab] for lab in rows) + tuple(ksize))
    b = ew.expand_to(b, tuple(bsize) + tuple(ksize) + tuple(size[lab] for lab in cols))
    m = _prod(size[lab] for lab in rows)
    n = _prod(size[lab] for lab in cols)
    k = _prod(ksize)
    bn = _prod(bsize)
    prod = red.matmul(_shape.reshape(a, (bn, m, k)), _shape.reshape(b, (bn, k, n)))
    out_shape = tuple(bsize) + tuple(size[lab] for lab in rows) + tuple(size[lab] for lab in cols)
    return _shape.reshape(prod, out_shape), batch + rows + cols


def _prod(xs) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


def _check_sizes(operands, inputs) -> None:
    seen: dict[str, int] = {}
    for k, (x, labels) in enumerate(zip(operands, inputs)):
        for d, lab in zip(x.shape, labels):
            if lab in seen and seen[lab] != d and 1 not in (seen[lab], d):
                name = "..." if lab in _ELLIPSIS_LABELS else lab
                raise _error(
                    f"subscript {name} has size {d} for operand {k} "
                    f"which does not broadcast with previously seen size {seen[lab]}"
                )
            seen[lab] = d if lab not in seen or seen[lab] == 1 else seen[lab]


def einsum(equation: str, *operands):
    """Sum of products of the operands' elements over the subscripts the
    equation does not keep, e.g. `einsum("ij,jk->ik", a, b)` is a @ b,
    `einsum("ii", a)` the trace, `einsum("...ij->...ji", x)` a transpose.

    >>> import graphc
    >>> a = graphc.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> graphc.einsum("ii", a)
    tensor(5.)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(at_user_line(f"einsum(): operand {k} must be a Tensor, not {type(x).__name__}"))
    if not operands:
        raise _error("must provide at least one operand")
    inputs, out = _parse(equation, operands)
    dtype = ew.result_type(*operands) if len(operands) > 1 else operands[0].dtype
    tensors = [ew.cast(x, dtype) for x in operands]
    diag = [_diagonals(x, labels, k) for k, (x, labels) in enumerate(zip(tensors, inputs))]
    tensors, inputs = [d[0] for d in diag], [d[1] for d in diag]
    _check_sizes(tensors, inputs)

    def needed_after(k: int) -> set:
        later = {lab for labels in inputs[k + 1 :] for lab in labels}
        return later | set(out)

    # Labels used by one operand only (and not the output) are summed first.
    for k in range(len(tensors)):
        others = {lab for j, labels in enumerate(inputs) if j != k for lab in labels} | set(out)
        tensors[k], inputs[k] = _sum_labels(tensors[k], inputs[k], set(inputs[k]) - others)
    acc, labels = tensors[0], inputs[0]
    for k in range(1, len(tensors)):
        acc, labels = _contract(acc, labels, tensors[k], inputs[k], needed_after(k))
    acc, labels = _sum_labels(acc, labels, set(labels) - set(out))
    return _permute(acc, labels, out)


__all__ = ["einsum"]
