"""Fusion: Graph -> codegen.kernel.Program.

What it does, in order:

0. Expands the primitives that have no kernel of their own (ARGSORT, and
   ATTENTION for a backend without an attention kernel) into ones that do
   (passes/lower.py).
1. Chooses which nodes get a buffer ("materialized"): graph inputs and
   outputs, array constants, reductions, DOT, ATTENTION, FOLD, SCATTER_ADD, and any
   elementwise node used more than once whose inlined expression is not
   cheap (recomputing `exp(x - m)` in two consumers is cheaper than a round
   trip through memory; recomputing a long chain is not), and a costly
   value that an EXPAND broadcasts at least 8x (computed once per row, not
   once per element), a non-trivial value an UNFOLD reads (each element
   is read by up to kh*kw windows), and a concat of many parts. A GATHER
   counts as several ops (index load, check, load): a max-pool's output is
   gathered once, not in each of its readers.
2. Builds one kernel per materialized node. Elementwise, movement, IOTA,
   RANDOM, GATHER and UNFOLD nodes are inlined into the expressions of their
   consumers; movement ops become index arithmetic (no copies); a RESHAPE
   of a stored value reads it at the same flat index. A DOT operand that is
   not an affine view of a buffer is read through another dot operand's
   copy it is a reshape/permute of (a convolution's weight gradient reads
   the forward's im2col transposed), or gets a copy kernel first: of the
   computed value under its reshapes and permutes, in that value's own
   layout, when the dot can read the operand as a strided view of it (a
   weight gradient's transposed activation: no transposing copy); else of
   the operand itself (one per node, shared by the dots reading it). Where a
   kernel reads an UNFOLD through reshapes/permutes (a copy of a
   convolution's im2col, a max-pool
   window), its loops run over the finer axes the movement ops merged
   ([C*kh*kw] as [C, kh, kw], [L] as [oh, ow]) so the index math has no
   per-element div/mod; small leading loops are merged so the outer loop,
   the one threads split, stays long.
   A concat of many parts (an RNN's timesteps) is written by one kernel
   per part, each storing its slice (`_concat_kernels`).
   An output that is a RESHAPE of a computed value (a convolution weight's
   gradient) shares that value's buffer: the value's kernel writes the
   output, with no copy.
   A PERMUTE swapping the last two axes of a DOT read only by it is that
   dot with swapped operands ((A B)^T = B^T A^T): weight gradients are
   written in the parameter's layout with no transposing copy. A FOLD whose
   windows do not overlap (max-pool backward) is an elementwise gather; a
   strided FOLD runs over the stride's phases, summing only the window
   taps that can land on each output (`_fold_strided`); a FOLD of a value
   laid out channels first (a data gradient's dot) loops over channels
   outermost, so each tap's rows stream.
3. Merges an elementwise kernel into the reduce, dot or elementwise kernel
   it reads when it reads that kernel's results at the same element (an
   epilogue: bias + relu after a matmul, `sum * (1/n)` after a sum, an
   optimizer's whole per-parameter update after the gradient's dot: one
   loop writing several outputs) or, for a reduce, at every element of the
   reduced row (a row epilogue: softmax's `exp(x - m) / s` runs in the
   kernel that computes `s`, so softmax is two kernels).

It does not reorder the graph, choose loop orders or plan memory
(codegen/memory.py does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from graphc.codegen import kernel as K
from graphc.codegen.kernel import Buffer, Expr, Kernel, KOp, Program, Store
from graphc.ir import dtypes
from graphc.ir.graph import ConstArray, Graph, Node
from graphc.ir.ops import ELEMENTWISE, MOVEMENT, Op
from graphc.ir.rules import _pair, window_out_size
from graphc.passes.lower import lower

_REDUCERS = {Op.SUM: "sum", Op.REDUCE_MAX: "max", Op.PROD: "prod", Op.ARGMAX: "argmax"}
# A node used by several consumers is recomputed in each while its inlined
# expression costs at most this many scalar ops.
_DUPLICATE_COST = 3
# Inlined cost of primitives that are more than one scalar op.
_OWN_COST = {Op.RANDOM: 10, Op.GATHER: 4}
# Refined loop nests keep at least this many iterations in the outer loop.
_MIN_OUTER = 16
_PREFIX = {"input": "in", "output": "out", "temp": "t", "const": "c"}


def strides(shape) -> list[int]:
    """Row-major strides. A zero-size dim counts as 1: no element of such a
    value is ever read, and its index arithmetic must not divide by 0."""
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= max(d, 1)
    return out[::-1]


def flat(idx, shape) -> Expr:
    return K._sum(i * s for i, s in zip(idx, strides(shape)))


def _ranges(names_extents) -> dict:
    return {n: e for n, e in names_extents}


class _Fuser:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.users = graph.users()
        self.buffers: dict[str, Buffer] = {}
        self.buf_of: dict[Node, str] = {}
        self.kernels: list[Kernel] = []
        self.constants: dict = {}
        self.material = self._choose_material()
        self.red_axes: dict[str, tuple] = {}  # reduce kernel name -> (input shape, axes)
        self.transposed_dots = self._transposed_dots()
        self.operand_copies: dict[Node, str] = {}  # dot operand -> its copy
        # source of a permuted dot operand -> its row-major copy (_operand)
        self.source_copies: dict[Node, str] = {}
        self._stored_as: dict[Node, str] = {}  # nodes read from these buffers for now

    # -- step 1 ---------------------------------------------------------
    def _choose_material(self) -> set[Node]:
        g = self.graph
        material = set(g.outputs) | set(g.inputs)
        cost: dict[Node, int] = {}
        for n in g.nodes:
            # A concat of many parts is written part by part (_concat_kernels):
            # a reader that inlined it would test every part at every element.
            if n.op in _MATERIAL or (n.op is Op.CONST and n.shape != ()) or _split_concat(n):
                material.add(n)
                continue
            # IOTA is a cast of a loop variable: free, like a movement op.
            # A gather loads an index, checks it and loads: several ops.
            own = 0 if n.op in MOVEMENT or n.op in (Op.CONST, Op.IOTA) else _OWN_COST.get(n.op, 1)
            if n.op is Op.EXPAND:
                self._broadcast_source(n, material, cost)
            if n.op is Op.UNFOLD:
                # Every source element is read by up to kh*kw windows:
                # compute a non-trivial source once (conv after pool+relu).
                src = n.srcs[0]
                if src not in material and cost.get(src, 0) > _DUPLICATE_COST:
                    material.add(src)
            cost[n] = own + sum(cost.get(s, 0) for s in n.srcs if s not in material)
            if len(self.users[n]) > 1 and cost[n] > _DUPLICATE_COST:
                material.add(n)
        return material

    @staticmethod
    def _broadcast_source(n: Node, material: set[Node], cost: dict[Node, int]) -> None:
        """Compute a costly value once where an EXPAND broadcasts it at least
        8x (a per-row scale read by every element of its row, such as the
        masked 1/N of a cross entropy's gradient): materialize it, so that
        its consumers read one number instead of recomputing the chain per
        element, and their own chains stay cheap enough to inline."""
        chain, base = [n.srcs[0]], n.srcs[0]
        while base.op in (Op.RESHAPE, Op.EXPAND) and base not in material:
            base = base.srcs[0]
            chain.append(base)
        if base in material or cost.get(base, 0) <= _DUPLICATE_COST or base.type.numel * 8 > n.type.numel:
            return
        material.add(base)
        for m in chain:
            cost[m] = 0

    def _transposed_dots(self) -> set[Node]:
        """Materialized PERMUTEs that swap the last two axes of a DOT read by
        nothing else (weight gradients come out of autodiff as (x^T g)^T).
        Their kernel is the dot itself with swapped operands,
        (A B)^T = B^T A^T, writing the needed layout directly instead of a
        dot into a temp plus a transposing copy."""
        found = set()
        for n in self.graph.nodes:
            if n.op is not Op.PERMUTE or n not in self.material:
                continue
            d = n.srcs[0]
            perm = tuple(n.attrs["perm"])
            r = n.ndim
            if (
                d.op is Op.DOT
                and r >= 2
                and perm == tuple(range(r - 2)) + (r - 1, r - 2)
                and len(self.users[d]) == 1
                and d not in self.graph.outputs
            ):
                found.add(n)
                self.material.discard(d)
        return found

    def _buffer(self, n: Node, kind: str = "temp") -> str:
        if n in self.buf_of:
            return self.buf_of[n]
        name = f"{_PREFIX[kind]}{len(self.buffers)}"
        self.buffers[name] = Buffer(name, n.dtype, n.shape, kind)
        self.buf_of[n] = name
        return name

    def _temp(self, dtype, shape) -> str:
        name = f"t{len(self.buffers)}"
        self.buffers[name] = Buffer(name, dtype, tuple(shape), "temp")
        return name

    # -- expressions ----------------------------------------------------
    def read(self, n: Node, idx: list[Expr]) -> Expr:
        """The value of node n at multi-index idx, as an expression."""
        stored = n.op is not Op.CONST or n.shape != ()
        if n in self._stored_as:
            return K.load(self._stored_as[n], flat(idx, n.shape), n.dtype)
        if n in self.material and stored:
            buf = self.buf_of[n]
            if n.type.numel == 0:
                return K.const(0, n.dtype)
            return K.load(buf, flat(idx, n.shape), n.dtype)
        return self.inline(n, idx)

    def inline(self, n: Node, idx: list[Expr]) -> Expr:
        """The value of node n at multi-index idx, computed from its sources
        (an elementwise op's scalar expression, or n's entry in INLINED)."""
        if n.op in ELEMENTWISE:
            args = [self.read(s, idx) for s in n.srcs]
            return K.scalar(n.op, *args, dtype=n.dtype)
        inliner = INLINED.get(n.op)
        if inliner is None:
            raise NotImplementedError(f"fusion cannot inline {n.op.value}")
        return inliner(self, n, idx)

    def _inline_const(self, n, idx):
        return K.const(n.attrs["value"], n.dtype)

    def _inline_iota(self, n, idx):
        return K.scalar(Op.CAST, idx[n.attrs["axis"]], dtype=n.dtype)

    def _inline_random(self, n, idx):
        key = self.read(n.srcs[0], [])
        return Expr(KOp.RANDOM, (key, flat(idx, n.shape)), dtypes.float32)

    def _inline_gather(self, n, idx):
        x, index = n.srcs
        ax = n.attrs["axis"]
        src_idx = list(idx)
        src_idx[ax] = K.check(self.read(index, idx), x.shape[ax])
        return self.read(x, src_idx)

    def _mv_reshape(self, n, idx):
        src = n.srcs[0]
        f = flat(idx, n.shape)
        if src in self.material and (src.op is not Op.CONST or src.shape != ()) and src.type.numel:
            # A reshape keeps row-major order: a stored source is read at the
            # same flat index, with no div/mod to split it (so dot operands
            # and epilogues through a reshape stay affine).
            return K.load(self.buf_of[src], f, src.dtype)
        src_idx = [(f // s) % d if d > 1 else K.const(0) for s, d in zip(strides(src.shape), src.shape)]
        return self.read(src, src_idx)

    def _mv_permute(self, n, idx):
        perm = n.attrs["perm"]
        src_idx = [None] * len(perm)
        for d, p in enumerate(perm):
            src_idx[p] = idx[d]
        return self.read(n.srcs[0], src_idx)

    def _mv_expand(self, n, idx):
        src = n.srcs[0]
        lead = n.ndim - src.ndim
        src_idx = [K.const(0) if d == 1 else idx[lead + j] for j, d in enumerate(src.shape)]
        return self.read(src, src_idx)

    def _mv_slice(self, n, idx):
        a = n.attrs
        return self.read(n.srcs[0], [i * st + b for i, b, st in zip(idx, a["starts"], a["steps"])])

    def _guarded(self, src: Node, src_idx: list[Expr], ranges: list[tuple[int, int]], fill) -> Expr:
        """src at src_idx where every src_idx[d] lies in ranges[d], else fill."""
        if src.type.numel == 0:
            return K.const(fill, src.dtype)
        guard = _in_ranges(src_idx, ranges)
        if guard is None:
            return self.read(src, src_idx)
        safe = [i if r is None else K.clamp(i, r[0], r[1] - 1) for i, r in zip(src_idx, ranges)]
        return K.where(guard, self.read(src, safe), K.const(fill, src.dtype))

    def _mv_pad(self, n, idx):
        src = n.srcs[0]
        src_idx = [i + (-lo) for i, (lo, _) in zip(idx, n.attrs["pads"])]
        return self._guarded(src, src_idx, [(0, d) for d in src.shape], n.attrs["value"])

    def _mv_concat(self, n, idx):
        ax = n.attrs["axis"]
        result, offset = None, 0
        parts = []
        for s in n.srcs:
            parts.append((s, offset))
            offset += s.shape[ax]
        for s, off in reversed(parts):
            if s.shape[ax] == 0:
                continue
            src_idx = list(idx)
            src_idx[ax] = idx[ax] + (-off)
            ranges = [(0, s.shape[ax]) if d == ax else (0, n.shape[d]) for d in range(n.ndim)]
            value = self._guarded(s, src_idx, ranges, 0)
            if result is None:
                result = value
            else:
                cond = _in_ranges([idx[ax]], [(off, off + s.shape[ax])])
                # None: the bounds prove idx[ax] lies in this part (a slice
                # of the concat, as in its backward, reads only this part).
                result = value if cond is None else K.where(cond, value, result)
        return result if result is not None else K.const(0, n.dtype)

    def _mv_unfold(self, n, idx):
        src = n.srcs[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(n.attrs)
        _, c, h, w = src.shape
        ow = window_out_size(w, kw, sw, pw, dw)
        _, ck, pos = idx  # pos: output position, row-major over (oh, ow)
        ch, ki, kj = ck // (kh * kw), (ck // kw) % kh, ck % kw
        y = (pos // ow) * sh + ki * dh + (-ph)
        x = (pos % ow) * sw + kj * dw + (-pw)
        ranges = [(0, d) for d in src.shape]
        return self._guarded(src, [idx[0], ch, y, x], ranges, 0)

    # -- step 2: kernels --------------------------------------------------
    def build(self) -> None:
        g = self.graph
        for n in g.inputs:
            self._buffer(n, "input")
        for n in g.nodes:
            if n.op is Op.CONST and n.shape != ():
                name = self._buffer(n, "const")
                self.constants[name] = n.attrs["value"].array if isinstance(n.attrs["value"], ConstArray) else None
        outs = set(g.outputs)
        writes_output = self._share_reshaped_outputs(outs)
        for n in g.nodes:
            if n not in self.material or n.op is Op.INPUT or (n in self.buf_of and n not in writes_output):
                continue
            self._buffer(n, "output" if n in outs else "temp")
            self._kernel_for(n)

    def _share_reshaped_outputs(self, outs: set[Node]) -> set[Node]:
        """An output that is a RESHAPE of a computed value (a convolution
        weight's gradient: the [C_out, C_in*kh*kw] dot seen as [C_out, C_in,
        kh, kw]) has the value's elements in the same row-major order: the
        value's kernel writes the output buffer itself, and its readers
        read it there, instead of a copy into the output (9.4 MB per
        ResNet-18 layer-4 weight). Returns those values."""
        claimed: set[Node] = set()
        for o in self.graph.outputs:
            if o.op is not Op.RESHAPE or o in self.buf_of or o.srcs[0].dtype != o.dtype:
                continue
            x = o.srcs[0]
            if x not in self.material or x in outs or x.op in (Op.INPUT, Op.CONST) or x in claimed:
                continue
            claimed.add(x)
            self.buf_of[x] = self._buffer(o, "output")
        return claimed

    def _emit(self, kern: Kernel) -> None:
        self.kernels.append(replace(kern, name=f"k{len(self.kernels)}_{kern.kind}"))

    def _kernel_for(self, n: Node) -> None:
        buf = self.buf_of[n]
        if n in self.transposed_dots:
            return self._dot(n.srcs[0], buf, transposed=True)
        own = OWN_KERNEL.get(n.op)
        if own is not None:
            return own.build(self, n, buf)
        if _split_concat(n):
            return self._concat_kernels(n, buf)
        groups = self._refine(n, root=True)
        if any(len(g) > 1 for g in groups):
            return self._refined_elementwise(n, buf, groups, _prims(n, self.material))
        idx = [K.var(f"i{d}") for d in range(n.ndim)]
        with K.loop_ranges({f"i{d}": s for d, s in enumerate(n.shape)}):
            value = self.inline(n, idx)
            store = Store(buf, flat(idx, n.shape), value)
        self._emit(Kernel("", "elementwise", n.shape, (store,), primitives=_prims(n, self.material)))

    def _reduce(self, n: Node, buf: str) -> None:
        src = n.srcs[0]
        axes = (n.attrs["axis"],) if n.op is Op.ARGMAX else tuple(n.attrs["axes"])
        kept = [d for d in range(src.ndim) if d not in axes]
        red = [d for d in range(src.ndim) if d in axes]
        # Kept axes loop over their factors (see _refine): the output is
        # row-major either way, so only the loop nest changes.
        groups = self._refine(src)
        refined = any(len(groups[d]) > 1 for d in kept)
        kept_groups = [groups[d] if refined else [src.shape[d]] for d in kept]
        kept_shape = list(_loop_shape(kept_groups)) if refined else [src.shape[d] for d in kept]
        idx: list[Expr] = [K.const(0)] * src.ndim  # every entry is set below
        ranges = {f"o{j}": e for j, e in enumerate(kept_shape)}
        ranges.update({f"r{j}": src.shape[d] for j, d in enumerate(red)})
        with K.loop_ranges(ranges):
            kept_idx = _group_indices(kept_groups, "o") if refined else [K.var(f"o{j}") for j in range(len(kept))]
            for d, e in zip(kept, kept_idx):
                idx[d] = e
            for j, d in enumerate(red):
                idx[d] = K.var(f"r{j}")
            value = self.read(src, idx)
            store = Store(buf, flat([idx[d] for d in kept], n.shape), K.acc(n.dtype))
        kern = Kernel(
            "",
            "reduce",
            tuple(kept_shape),
            (store,),
            red_shape=tuple(src.shape[d] for d in red),
            reducer=_REDUCERS[n.op],
            value=value,
            primitives=_prims(n, self.material),
            acc_dtype=src.dtype if n.op is Op.ARGMAX else n.dtype,
        )
        self._emit(kern)
        if not refined:  # row epilogues index the reduce's input by its axes
            self.red_axes[self.kernels[-1].name] = (src.shape, axes)

    def _operand(self, n: Node, names: list[str], extents, transposed: bool = False) -> K.Operand:
        """n (rank >= 2) as an affine view over loop variables `names`
        (with `transposed`, n's last two axes are read swapped: the view is
        n^T, and `extents` are those of the view). An operand that is not
        an affine view of a buffer is read through another operand's copy
        it is a reshape/permute of (packing transposes in registers), or
        through a copy of the value under its movement ops, or else is
        copied once into a row-major temp (shared by every dot reading
        the same node)."""
        idx = [K.var(v) for v in names]
        if transposed:
            idx[-2], idx[-1] = idx[-1], idx[-2]
        copied = self.operand_copies.get(n)
        if copied is None:
            with K.loop_ranges(dict(zip(names, extents))):
                e = self.read(n, idx)
            form = K.affine(e.args[0]) if e.op is KOp.LOAD else None
        else:
            form = None
        if form is None and copied is None:
            ranges = dict(zip(names, extents))
            e = self._view_of_operand_copy(n, idx, ranges)
            if e is None:
                e = self._view_of_source_copy(n, idx, ranges)
            form = None if e is None else K.affine(e.args[0])
        if form is None:
            if copied is None:
                copied = self.operand_copies[n] = self._temp(n.dtype, n.shape)
                self._copy_kernel(n, copied)
            with K.loop_ranges(dict(zip(names, extents))):
                e = K.load(copied, flat(idx, n.shape), n.dtype)
            form = K.affine(e.args[0])
        assert form is not None  # the copy's load is affine by construction
        coefs, offset = form
        s = [coefs.get(v, 0) for v in names]
        return K.Operand(e.arg, offset, tuple(s[:-2]), s[-2], s[-1])

    def _view_through(self, n: Node, idx: list[Expr], ranges: dict, base: Node, buf: str) -> Expr:
        """n at idx, read with `base`'s value taken from buf (row-major)."""
        self._stored_as[base] = buf
        try:
            with K.loop_ranges(ranges):
                return self.read(n, idx)
        finally:
            del self._stored_as[base]

    def _view_of_operand_copy(self, n: Node, idx: list[Expr], ranges: dict) -> Expr | None:
        """n at idx as an affine load from another dot operand's copy that n
        is a reshape or permute of: a weight gradient's im2col^T read
        through the forward convolution's im2col (packing transposes it in
        registers), instead of a second im2col in the transposed layout
        (0.12 ms per MNIST CNN convolution)."""
        m = n
        while m.op in (Op.RESHAPE, Op.PERMUTE) and m not in self.material:
            m = m.srcs[0]
            if m in self.operand_copies:
                e = self._view_through(n, idx, ranges, m, self.operand_copies[m])
                if K.affine(e.args[0]) is not None:
                    return e
        return None

    def _view_of_source_copy(self, n: Node, idx: list[Expr], ranges: dict) -> Expr | None:
        """n at idx as an affine load from a row-major copy of the computed
        value under its reshapes and permutes (the transposed activation a
        weight gradient's dot reads), or None where there is no such value
        or the view would not be affine. The copy is a contiguous loop in
        the value's own layout and the GEMM reads the view through strides,
        instead of a transposing copy of n whose strided stores ran at ~22%
        of memory bandwidth (the GPT step's MLP)."""
        base = n
        while base.op in (Op.RESHAPE, Op.PERMUTE) and base not in self.material:
            base = base.srcs[0]
        if base is n or base in self.material:
            return None

        probe = self._view_through(n, idx, ranges, base, "probe")  # affine only if the movement ops compose to strides
        if K.affine(probe.args[0]) is None:
            return None
        if base not in self.source_copies:
            self.source_copies[base] = self._temp(base.dtype, base.shape)
            self._copy_kernel(base, self.source_copies[base])
        return self._view_through(n, idx, ranges, base, self.source_copies[base])

    def _refine(self, n: Node, root: bool = False) -> list[list[int]]:
        """Per axis of n, factors whose product is its extent, splitting an
        axis where n reads a finer-grained value through movement ops (a
        reshaped, permuted im2col: [C*kh*kw] is [C, kh, kw]). Loops over
        the factors index that value with no div/mod per element. `root`:
        n is the value a kernel computes (not a buffer it reads)."""
        plain = [[d] for d in n.shape]
        if n in self.material and not root:
            return plain
        if n.op is Op.UNFOLD:
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(n.attrs)
            nb, c, h, w = n.srcs[0].shape
            oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
            return [[nb], [c, kh, kw], [oh, ow]]
        if n.op is Op.PERMUTE:
            inner = self._refine(n.srcs[0])
            return [inner[p] for p in n.attrs["perm"]]
        if n.op is Op.RESHAPE:
            factors = [f for g in self._refine(n.srcs[0]) for f in g if f != 1]
            groups, pos = [], 0
            for d in n.shape:
                group, prod = [], 1
                while prod < d and pos < len(factors):
                    prod *= factors[pos]
                    group.append(factors[pos])
                    pos += 1
                if prod != d:
                    return plain
                groups.append(group or [1])
            return groups
        return plain

    def _copy_kernel(self, n: Node, buf: str) -> None:
        """An elementwise kernel writing n into buf (row-major), looping
        over the factors of `_refine(n)`. (A concat of many parts never
        gets here: it is materialized and written by `_concat_kernels`.)"""
        self._refined_elementwise(n, buf, self._refine(n), ("copy",), self.read)

    def _concat_kernels(self, n: Node, buf: str) -> None:
        """A concat of more than SPLIT_CONCAT_PARTS parts as one elementwise
        kernel per part, each writing its slice of buf. One kernel over the
        whole concat evaluates a where-chain that reads every part at every
        element (the 35 timesteps of an LSTM's hidden states stacked for
        one weight-gradient GEMM: 35 loads per element)."""
        ax, off = n.attrs["axis"], 0
        for part in n.srcs:
            if part.type.numel:
                names = {f"i{d}": e for d, e in enumerate(part.shape)}
                with K.loop_ranges(names):
                    idx = [K.var(v) for v in names]
                    at = list(idx)
                    at[ax] = idx[ax] + off
                    store = Store(buf, flat(at, n.shape), self.read(part, idx))
                self._emit(Kernel("", "elementwise", part.shape, (store,), primitives=("concat",)))
            off += part.shape[ax]

    def _refined_elementwise(self, n: Node, buf: str, groups, prims, value=None) -> None:
        """n's elementwise kernel over the loops of `groups`; `value`:
        how to compute n at an index (default: inline its expression)."""
        shape = _loop_shape(groups)
        with K.loop_ranges({f"i{d}": e for d, e in enumerate(shape)}):
            idx = _group_indices(groups, "i")
            store = Store(buf, flat(idx, n.shape), (value or self.inline)(n, idx))
        self._emit(Kernel("", "elementwise", shape, (store,), primitives=prims))

    def _dot(self, n: Node, buf: str, transposed: bool = False) -> None:
        """The dot kernel of n; `transposed`: of n^T (last two axes swapped),
        computed as B^T A^T from transposed views of the operands."""
        a, b = n.srcs
        nb = n.ndim - 2
        bnames = [f"b{d}" for d in range(nb)]
        m, kk, nn = a.shape[-2], a.shape[-1], b.shape[-1]
        batch = list(n.shape[:nb])
        prims: tuple[str, ...]
        if transposed:
            op_a = self._operand(b, bnames + ["m", "k"], batch + [nn, kk], transposed=True)
            op_b = self._operand(a, bnames + ["k", "n"], batch + [kk, m], transposed=True)
            shape, prims = tuple(batch) + (nn, m), ("dot", "permute")
        else:
            op_a = self._operand(a, bnames + ["m", "k"], batch + [m, kk])
            op_b = self._operand(b, bnames + ["k", "n"], batch + [kk, nn])
            shape, prims = n.shape, ("dot",)
        idx = [K.var(v) for v in bnames + ["m", "n"]]
        store = Store(buf, flat(idx, shape), K.acc(n.dtype))
        self._emit(Kernel("", "dot", shape, (store,), a=op_a, b=op_b, k=kk, primitives=prims, acc_dtype=n.dtype))

    def _attention(self, n: Node, buf: str) -> None:
        """The attention kernel of n: q, k, v and the mask read as views
        (an EXPAND over batch dims is a zero stride, not a copy)."""
        q, k, v = n.srcs[:3]
        mask = n.srcs[3] if len(n.srcs) == 4 else None
        nb = n.ndim - 2
        bnames = [f"b{d}" for d in range(nb)]
        batch = list(n.shape[:nb])
        n_l, n_s, e, ev = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        at = K.Attention(
            q=self._operand(q, bnames + ["m", "k"], batch + [n_l, e]),
            k=self._operand(k, bnames + ["n", "k"], batch + [n_s, e]),
            v=self._operand(v, bnames + ["n", "k"], batch + [n_s, ev]),
            mask=None if mask is None else self._operand(mask, bnames + ["m", "n"], batch + [n_l, n_s]),
            mask_kind="" if mask is None else ("bool" if mask.dtype.is_bool else "float"),
            L=n_l,
            S=n_s,
            E=e,
            Ev=ev,
            scale=float(n.attrs["scale"]),
            causal=bool(n.attrs["causal"]),
        )
        idx = [K.var(x) for x in bnames + ["m", "n"]]
        store = Store(buf, flat(idx, n.shape), K.acc(n.dtype))
        self._emit(
            Kernel("", "attention", n.shape, (store,), attention=at, primitives=("attention",), acc_dtype=n.dtype)
        )

    def _fold(self, n: Node, buf: str) -> None:
        cols = n.srcs[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(n.attrs)
        _, _, h, w = n.shape
        oh, ow = window_out_size(h, kh, sh, ph, dh), window_out_size(w, kw, sw, pw, dw)
        if (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and ph >= 0 and pw >= 0:
            return self._fold_disjoint(n, buf)
        if (sh, sw) != (1, 1) and (dh, dw) == (1, 1) and h % sh == 0 and w % sw == 0:
            return self._fold_strided(n, buf)
        # Loops over channels, then images, when the window columns of one
        # channel lie together (a data gradient's dot writes [C*kh*kw, N*L]):
        # each tap's rows are then read as one stream across the images.
        o = [K.var(f"o{d}") for d in range(4)]
        shape = list(n.shape)
        if self._channel_major(cols):
            o[0], o[1] = o[1], o[0]
            shape[0], shape[1] = shape[1], shape[0]
        r0, r1 = K.var("r0"), K.var("r1")
        ranges = {f"o{d}": s for d, s in enumerate(shape)}
        ranges.update(r0=kh, r1=kw)
        with K.loop_ranges(ranges):
            y = o[2] + ph + r0 * (-dh)
            x = o[3] + pw + r1 * (-dw)
            oy, ox = y // sh, x // sw
            conds = [_in_ranges([oy, ox], [(0, oh), (0, ow)])]
            if sh > 1:
                conds.append(K.scalar(Op.CMPEQ, y % sh, K.const(0)))
            if sw > 1:
                conds.append(K.scalar(Op.CMPEQ, x % sw, K.const(0)))
            guard = _and([c for c in conds if c is not None])
            oy, ox = K.clamp(oy, 0, oh - 1), K.clamp(ox, 0, ow - 1)
            value = self.read(cols, [o[0], o[1] * (kh * kw) + r0 * kw + r1, oy * ow + ox])
            if guard is not None:
                value = K.where(guard, value, K.const(0, n.dtype))
            store = Store(buf, flat(o, n.shape), K.acc(n.dtype))
        self._emit_fold_sum(n, shape, store, (kh, kw), value)

    def _channel_major(self, cols: Node) -> bool:
        """Whether a fold's [N, C*kh*kw, L] input is a view of a value laid
        out channels first ([C*kh*kw, N, L], as a data gradient's dot
        writes it)."""
        return cols not in self.material and cols.op is Op.PERMUTE and list(cols.attrs["perm"][:2]) == [1, 0]

    def _emit_fold_sum(self, n: Node, shape, store: Store, red_shape, value: Expr) -> None:
        """A fold's reduce kernel: loops `shape`, summing `value` over the
        window taps `red_shape`."""
        self._emit(
            Kernel(
                "",
                "reduce",
                tuple(shape),
                (store,),
                red_shape=tuple(red_shape),
                reducer="sum",
                value=value,
                primitives=("fold",),
                acc_dtype=n.dtype,
            )
        )

    def _fold_strided(self, n: Node, buf: str) -> None:
        """FOLD with stride > 1 and no dilation (a strided convolution's data
        gradient, a 3x3 stride-2 max-pool's backward), output rows and
        columns a multiple of the stride: output row y = q*sh + p (the
        loops run over q and the phase p) takes only the window rows r
        with r = (p + ph) % sh (mod sh), r = (p + ph) % sh + t*sh, from
        window row oy = q + (p + ph) // sh - t. The reduce runs over the
        ceil(kh/sh) x ceil(kw/sw) taps t that can hit, with no per-tap
        divisibility test or floor division (the general fold's 3x3 taps
        for a stride-2 pool: 5% of memory bandwidth)."""
        cols = n.srcs[0]
        (kh, kw), (sh, sw), (ph, pw), _ = _window(n.attrs)
        nb, c, h, w = n.shape
        oh, ow = window_out_size(h, kh, sh, ph, 1), window_out_size(w, kw, sw, pw, 1)
        th, tw = -(-kh // sh), -(-kw // sw)
        # Loops: image, channel, row phase, row, column phase, column: the
        # innermost steps through window columns contiguously.
        names = tuple(f"o{d}" for d in range(6))
        shape = (nb, c, sh, h // sh, sw, w // sw)
        o0, o1, p2, q2, p3, q3 = (K.var(v) for v in names)
        t0, t1 = K.var("r0"), K.var("r1")
        ranges = dict(zip(names, shape))
        ranges.update(r0=th, r1=tw)
        with K.loop_ranges(ranges):
            r0 = (p2 + ph) % sh + t0 * sh
            r1 = (p3 + pw) % sw + t1 * sw
            oy = q2 + (p2 + ph) // sh + t0 * (-1)
            ox = q3 + (p3 + pw) // sw + t1 * (-1)
            conds = [_in_ranges([r0, r1], [(0, kh), (0, kw)]), _in_ranges([oy, ox], [(0, oh), (0, ow)])]
            guard = _and([x for x in conds if x is not None])
            ry, rx = K.clamp(r0, 0, kh - 1), K.clamp(r1, 0, kw - 1)
            oy, ox = K.clamp(oy, 0, oh - 1), K.clamp(ox, 0, ow - 1)
            value = self.read(cols, [o0, o1 * (kh * kw) + ry * kw + rx, oy * ow + ox])
            if guard is not None:
                value = K.where(guard, value, K.const(0, n.dtype))
            store = Store(buf, flat([o0, o1, q2 * sh + p2, q3 * sw + p3], n.shape), K.acc(n.dtype))
        self._emit_fold_sum(n, shape, store, (th, tw), value)

    def _fold_disjoint(self, n: Node, buf: str) -> None:
        """FOLD whose windows tile the image without overlap (stride ==
        kernel, no dilation: max-pool backward): every output pixel gets at
        most one window element, so it is an elementwise gather of that
        element rather than a reduce over the window with divisibility
        tests."""
        cols = n.srcs[0]
        (kh, kw), _, (ph, pw), _ = _window(n.attrs)
        _, _, h, w = n.shape
        oh, ow = window_out_size(h, kh, kh, ph, 1), window_out_size(w, kw, kw, pw, 1)
        i = [K.var(f"i{d}") for d in range(4)]
        with K.loop_ranges({f"i{d}": s for d, s in enumerate(n.shape)}):
            y, x = i[2] + ph, i[3] + pw
            oy, ox = y // kh, x // kw
            guard = _in_ranges([oy, ox], [(0, oh), (0, ow)])
            oy, ox = K.clamp(oy, 0, oh - 1), K.clamp(ox, 0, ow - 1)
            value = self.read(cols, [i[0], i[1] * (kh * kw) + (y % kh) * kw + x % kw, oy * ow + ox])
            if guard is not None:
                value = K.where(guard, value, K.const(0, n.dtype))
            store = Store(buf, flat(i, n.shape), value)
        self._emit(Kernel("", "elementwise", n.shape, (store,), primitives=("fold",)))

    def _scatter(self, n: Node, buf: str) -> None:
        src, index = n.srcs
        ax = n.attrs["axis"]
        groups = self._refine(src)
        if len(groups[ax]) > 1:
            groups = [[d] for d in src.shape]
        shape = _loop_shape(groups)
        with K.loop_ranges({f"i{d}": s for d, s in enumerate(shape)}):
            idx = _group_indices(groups, "i")
            value = self.read(src, idx)
            tgt = list(idx)
            tgt[ax] = K.check(self.read(index, idx), n.shape[ax])
            target = flat(tgt, n.shape)
        self._emit(Kernel("", "scatter", shape, (), value=value, target=target, out=buf, primitives=("scatter_add",)))


class OwnKernel(NamedTuple):
    """How fusion computes a primitive with a kernel of its own: the kinds
    of the kernels it emits (operand copies included) and the builder."""

    kinds: frozenset[str]
    build: Callable[[_Fuser, Node, str], None]


# How fusion computes each primitive that is not elementwise (elementwise
# ops become scalar expressions of codegen/kernel.py). A primitive in
# INLINED becomes part of the expression of every kernel reading it (index
# arithmetic, a leaf) or, when stored, an elementwise kernel of its own; one
# in OWN_KERNEL always gets its own kernels. passes/lower.py expands ARGSORT
# (and ATTENTION for a backend without an attention kernel) before fusion.
INLINED: dict[Op, Callable[[_Fuser, Node, list[Expr]], Expr]] = {
    Op.CONST: _Fuser._inline_const,
    Op.IOTA: _Fuser._inline_iota,
    Op.RANDOM: _Fuser._inline_random,
    Op.GATHER: _Fuser._inline_gather,
    Op.RESHAPE: _Fuser._mv_reshape,
    Op.PERMUTE: _Fuser._mv_permute,
    Op.EXPAND: _Fuser._mv_expand,
    Op.SLICE: _Fuser._mv_slice,
    Op.PAD: _Fuser._mv_pad,
    Op.CONCAT: _Fuser._mv_concat,
    Op.UNFOLD: _Fuser._mv_unfold,
}
_REDUCE_KERNEL = OwnKernel(frozenset({"reduce"}), _Fuser._reduce)
OWN_KERNEL: dict[Op, OwnKernel] = {
    Op.SUM: _REDUCE_KERNEL,
    Op.REDUCE_MAX: _REDUCE_KERNEL,
    Op.PROD: _REDUCE_KERNEL,
    Op.ARGMAX: _REDUCE_KERNEL,
    Op.DOT: OwnKernel(frozenset({"dot", "elementwise"}), _Fuser._dot),
    # A reduce over the window, or elementwise when windows do not overlap.
    Op.FOLD: OwnKernel(frozenset({"reduce", "elementwise"}), _Fuser._fold),
    Op.SCATTER_ADD: OwnKernel(frozenset({"scatter"}), _Fuser._scatter),
    Op.ATTENTION: OwnKernel(frozenset({"attention", "elementwise"}), _Fuser._attention),
}
# Ops that always get their own kernel (or are leaves with their own storage).
_MATERIAL = {Op.INPUT} | set(OWN_KERNEL)


def _window(attrs):
    return (_pair(attrs["kernel"]), _pair(attrs["stride"]), _pair(attrs["padding"]), _pair(attrs["dilation"]))


def _loop_shape(groups) -> tuple[int, ...]:
    """Loop extents over the factors of `groups` (see _Fuser._refine), the
    leading factors merged until the outermost loop, the one threads
    split, has at least _MIN_OUTER iterations."""
    factors = [f for g in groups for f in g]
    lead = 1
    while lead < len(factors) and 0 < math.prod(factors[:lead]) < _MIN_OUTER and 0 not in factors:
        lead += 1
    return (math.prod(factors[:lead]),) + tuple(factors[lead:])


def _group_indices(groups, prefix: str) -> list[Expr]:
    """Per group, its index over the loops of `_loop_shape(groups)` (loop
    variables `prefix`0, 1, ...; call inside their loop_ranges)."""
    factors = [f for g in groups for f in g]
    shape = _loop_shape(groups)
    lead = len(factors) - len(shape) + 1
    outer = K.var(f"{prefix}0")
    if lead == 1:
        parts = [outer]
    else:
        parts = [(outer // math.prod(factors[j + 1 : lead])) % factors[j] for j in range(lead)]
    parts += [K.var(f"{prefix}{d}") for d in range(1, len(shape))]
    out, pos = [], 0
    for g in groups:
        e = K.const(0)
        for f in g:
            e = e * f + parts[pos]
            pos += 1
        out.append(e)
    return out


def _and(conds):
    result = None
    for c in conds:
        result = c if result is None else K.scalar(Op.AND, result, c)
    return result


def _in_ranges(idx: list[Expr], ranges) -> Expr | None:
    """lo <= idx[d] < hi for all d, skipping checks the bounds prove."""
    conds = []
    for i, r in zip(idx, ranges):
        if r is None:
            continue
        lo, hi = r
        b = K.bounds(i)
        if b is None or b[0] < lo:
            conds.append(K.scalar(Op.NOT, K.scalar(Op.CMPLT, i, K.const(lo))))
        if b is None or b[1] >= hi:
            conds.append(K.scalar(Op.CMPLT, i, K.const(hi)))
    return _and(conds)


# A concat of more parts than this is written by one kernel per part.
SPLIT_CONCAT_PARTS = 8


def _split_concat(n: Node) -> bool:
    """Whether a concat's buffer is written by a kernel per part: one
    kernel's where-chain costs a load per part at every element, the split
    a kernel (a call, a barrier) per part."""
    return n.op is Op.CONCAT and len(n.srcs) > SPLIT_CONCAT_PARTS


def _prims(n: Node, material: set) -> tuple[str, ...]:
    """Names of the primitives fused into the kernel rooted at n."""
    names, stack, seen = [], [n], set()
    while stack:
        x = stack.pop()
        if x in seen:
            continue
        seen.add(x)
        names.append(x.op.value)
        stack += [s for s in x.srcs if s not in material]
    return tuple(reversed(names))


# ---------------------------------------------------------------------------
# step 3: epilogue merging


def _readers(kernels: list[Kernel], name: str) -> list[int]:
    return [i for i, k in enumerate(kernels) if name in k.inputs]


def _replace_loads(e: Expr, buf: str, index: Expr, value: Expr) -> Expr | None:
    """e with every load of buf at `index` replaced by value; None if buf is
    read at any other index. Each distinct node is rebuilt once (bodies are
    DAGs: merged epilogues share the producer's values)."""
    memo: dict[int, Expr] = {}
    for x in K.walk(e):
        if x.op is KOp.LOAD and x.arg == buf:
            if x.args[0] != index:
                return None
            memo[id(x)] = value
        elif not x.args:
            memo[id(x)] = x
        else:
            memo[id(x)] = K.rebuild(x, tuple(memo[id(a)] for a in x.args))
    return memo[id(e)]


def _try_merge(prod: Kernel, cons: Kernel, red_info, keep: set[str]) -> Kernel | None:
    """prod with cons's stores fused in (an epilogue of a reduce or dot, or
    more stores of an elementwise loop), or None. cons's loads of prod's
    stored buffers become the stored values; prod's stores to buffers not
    in `keep` are dropped."""
    if prod.kind == "dot" or prod.shape == cons.shape:
        if cons.shape != prod.shape:
            return None
        mapping = {f"i{d}": K.var(v) for d, (v, _) in enumerate(prod.loop_vars())}
        field_name = "stores"
    elif prod.kind == "reduce" and red_info is not None and cons.shape == red_info[0]:
        in_shape, axes = red_info
        kept = [d for d in range(len(in_shape)) if d not in axes]
        red = [d for d in range(len(in_shape)) if d in axes]
        mapping = {f"i{d}": K.var(f"o{j}") for j, d in enumerate(kept)}
        mapping.update({f"i{d}": K.var(f"r{j}") for j, d in enumerate(red)})
        field_name = "row_stores"
    else:
        return None
    ranges = _ranges(prod.loop_vars() + prod.red_vars())
    new = []
    with K.loop_ranges(ranges):
        for s in cons.stores:
            index = K.substitute(s.index, mapping)
            value = K.substitute(s.value, mapping)
            for ps in prod.stores:
                replaced = _replace_loads(value, ps.buffer, ps.index, ps.value)
                if replaced is None:
                    return None
                value = replaced
            new.append(Store(s.buffer, index, value))
    stores = tuple(ps for ps in prod.stores if ps.buffer in keep)
    if field_name == "stores":
        stores += tuple(new)
        return replace(prod, primitives=prod.primitives + cons.primitives, stores=stores)
    return replace(
        prod, primitives=prod.primitives + cons.primitives, stores=stores, row_stores=prod.row_stores + tuple(new)
    )


def merge_epilogues(prog: Program, red_axes: dict) -> None:
    """Fuse each elementwise kernel into the reduce, dot or elementwise
    kernel producing a buffer it reads (at the same element), so chains of
    per-element updates over one iteration space (Adam's moments and
    parameter update after the gradient's dot or reduce) run as one loop
    writing several outputs instead of one pass over memory each."""
    kernels = prog.kernels
    i = 0
    while i < len(kernels):
        cons = kernels[i]
        if cons.kind != "elementwise":
            i += 1
            continue
        merged = False
        for j in range(i - 1, -1, -1):
            prod = kernels[j]
            if prod.kind not in ("reduce", "dot", "elementwise") or prod.row_stores:
                continue
            produced = {ps.buffer for ps in prod.stores}
            if not produced & set(cons.inputs):
                continue
            if prod.kind == "elementwise" and prod.shape != cons.shape:
                break
            # Everything else cons reads must exist before prod runs.
            written_after = {o for k in kernels[j:i] for o in k.outputs}
            if any(b in written_after for b in cons.inputs if b not in produced):
                break
            keep = {
                b
                for b in produced
                if b not in cons.inputs or prog.buffers[b].kind == "output" or len(_readers(kernels, b)) > 1
            }
            new = _try_merge(prod, cons, red_axes.get(prod.name), keep)
            if new is not None:
                kernels[j] = new
                del kernels[i]
                for b in produced - keep:
                    del prog.buffers[b]
                merged = True
            break
        if not merged:
            i += 1


def fuse(graph: Graph, keep: frozenset = frozenset()) -> Program:
    """Group the graph's primitives into kernels (see the module docstring).
    `keep`: primitives the backend has a kernel kind for beyond the common
    ones (passes/lower.py expands the others: the CPU backend keeps
    ATTENTION)."""
    graph = lower(graph, keep)
    f = _Fuser(graph)
    f.build()
    prog = Program(
        name=graph.name,
        buffers=f.buffers,
        kernels=f.kernels,
        inputs=[f.buf_of[n] for n in graph.inputs],
        outputs=[f.buf_of[n] for n in graph.outputs],
        constants={k: v for k, v in f.constants.items() if v is not None},
    )
    merge_epilogues(prog, f.red_axes)
    return prog
