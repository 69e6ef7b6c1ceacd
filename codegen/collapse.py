"""Loop collapsing: adjacent loops of a kernel that every memory access
steps through as one loop become one loop.

Fusion names a kernel's loops after the value it computes, so a SGD update
of a [512, 512, 3, 3] weight loops 3 times innermost, and a BatchNorm's
per-channel sum over [N, H, W] runs an innermost reduction of W (8 at
ResNet-18's layer 2). A loop that short does not vectorize: the update ran
8% slower than over one flat axis, the sums at a few GB/s. Loops d and d+1
merge when every load and store index is affine with
coef(d) == coef(d+1) * extent(d+1) and neither loop variable is read
anywhere but in such an index (a guard or an iota reads the coordinate
itself); a loop of extent 1 always merges (its variable is 0). The first
outer loop is never merged: threads split it (codegen/llvm/module.py).

`collapse_loops(kernel)` returns an equivalent kernel with fewer loops, or
the kernel itself; the LLVM backend builds from it.
"""

from __future__ import annotations

from dataclasses import replace

from graphc.codegen.kernel import Expr, Kernel, KOp, Store, add, affine, const, mul, rebuild, var, walk


def collapse_loops(k: Kernel) -> Kernel:
    if k.kind == "elementwise":
        groups = [("i", list(k.shape), 1)]
    elif k.kind == "reduce":
        groups = [("o", list(k.shape), 1), ("r", list(k.red_shape), 0)]
    else:
        return k
    indices = _indices(k)
    forms = [affine(e) for e in indices]
    free = _index_only_vars(k, indices, forms)
    mapping: dict[str, Expr] = {}  # old variable -> new variable, or 0
    folded: set[str] = set()  # outer variables of a merged loop: in indices only, through its innermost
    shapes = []
    for prefix, extents, first in groups:
        merged = _merge(prefix, extents, first, forms, free)
        shapes.append(tuple(ext for _, ext in merged))
        for pos, (dims, _) in enumerate(merged):
            wide = [d for d in dims if extents[d] != 1] or dims[-1:]
            for d in dims:
                mapping[f"{prefix}{d}"] = var(f"{prefix}{pos}") if d == wide[-1] else const(0)
            folded |= {f"{prefix}{d}" for d in wide[:-1]}
    if all(len(s) == len(g[1]) for s, g in zip(shapes, groups)):
        return k
    return _rewrite(k, mapping, folded, shapes, indices, forms)


def _indices(k: Kernel) -> list[Expr]:
    """Every memory index of the kernel: loads' and stores'."""
    out = [x.args[0] for x in walk(*k._exprs()) if x.op is KOp.LOAD]
    return out + [s.index for s in k.stores + k.row_stores]


def _index_only_vars(k: Kernel, indices: list[Expr], forms) -> set[str]:
    """Loop variables read only inside affine memory indices."""
    in_index = {id(e) for e, form in zip(indices, forms) if form is not None}
    seen, pending, outside = set(), list(k._exprs()), set()
    while pending:  # everything but the affine indices
        e = pending.pop()
        if id(e) in seen or id(e) in in_index:
            continue
        seen.add(id(e))
        if e.op is KOp.VAR:
            outside.add(e.arg)
        pending.extend(e.args)
    every = {x.arg for x in walk(*k._exprs()) if x.op is KOp.VAR}
    return every - outside


def _merge(prefix: str, extents: list[int], first: int, forms, free: set[str]) -> list[tuple[list[int], int]]:
    """Groups of consecutive dims (each a new loop) and their extents."""
    merged: list[tuple[list[int], int]] = []
    for d in reversed(range(len(extents))):
        if merged and d >= first and _joins(prefix, d, merged[-1][0], extents, forms, free):
            dims, ext = merged[-1]
            merged[-1] = ([d, *dims], ext * extents[d])
        else:
            merged.append(([d], extents[d]))
    return merged[::-1]


def _joins(prefix: str, d: int, group: list[int], extents: list[int], forms, free: set[str]) -> bool:
    """Whether loop d merges with the loops `group` just inside it: it has
    extent 1, or the group does, or every index steps d by the group's
    whole extent (it suffices to check against the group's outermost loop
    of extent > 1, which the group's own merges tie to the rest)."""
    wide = [g for g in group if extents[g] != 1]
    if extents[d] == 1 or not wide:
        return True
    outer, inner = f"{prefix}{d}", f"{prefix}{wide[0]}"
    if outer not in free or inner not in free:
        return False
    return all(f[0].get(outer, 0) == f[0].get(inner, 0) * extents[wide[0]] for f in forms if f is not None)


def _rewrite(k: Kernel, mapping: dict[str, Expr], folded: set[str], shapes, indices, forms) -> Kernel:
    """k over the new loops: affine indices rebuilt from their forms (a
    merged loop's coefficient is its innermost old loop's), everything
    else with its variables renamed."""
    form_of = {id(e): f for e, f in zip(indices, forms)}
    memo: dict[int, Expr] = {}

    def index(e: Expr) -> Expr:
        form = form_of.get(id(e))
        if form is None:
            return memo[id(e)]
        total = const(form[1])
        for v, c in sorted(form[0].items()):
            if v not in folded:
                total = add(total, mul(mapping.get(v, var(v)), const(c)))
        return total

    for x in walk(*k._exprs()):
        if x.op is KOp.VAR:
            memo[id(x)] = mapping.get(x.arg, x)
        elif x.op is KOp.LOAD:
            memo[id(x)] = Expr(KOp.LOAD, (index(x.args[0]),), x.dtype, x.arg)
        else:
            memo[id(x)] = rebuild(x, tuple(memo[id(a)] for a in x.args)) if x.args else x

    def store(s: Store) -> Store:
        return Store(s.buffer, index(s.index), memo[id(s.value)])

    return replace(
        k,
        shape=shapes[0],
        red_shape=shapes[1] if k.kind == "reduce" else k.red_shape,
        stores=tuple(store(s) for s in k.stores),
        row_stores=tuple(store(s) for s in k.row_stores),
        value=None if k.value is None else memo[id(k.value)],
    )
