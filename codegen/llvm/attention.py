"""The attention kernel (kind `attention`, codegen/kernel.py): fused
softmax(q k^T * scale + mask) v with an online softmax, never storing the
[L, S] scores.

The kernel's parallel loop runs over tasks, one per (batch element, block
of BQ query rows). A task keeps per row a running maximum `m`, a running sum
`l` (float64) and an accumulator `acc[Ev]`, and walks the keys in blocks of
BK:

1. Pack the key block transposed (`kt[e][j]`, so one query element times a
   vector of keys is one FMA) and the value block row-major padded to a
   whole number of vectors (`vp[j][e]`), both through the operands'
   strides; they stay in L1 while every row of the task uses them.
2. Per query row: the BK scores as BK/W vector accumulators over the head
   dim, times scale, plus a float mask or -inf where a bool mask is false,
   the key is past S, or (causal) after the query. With a new maximum
   m' = max(m, max_j s_j): alpha = exp(m - m'), p_j = exp(s_j - m'),
   l = l * alpha + sum p_j, acc = acc * alpha + sum_j p_j v_j (vectors
   along the head dim). A row whose scores are all -inf so far gets
   alpha = 1 and p = 0. Rows go in pairs through the P.V loop, so each
   loaded vector of values feeds two FMAs (one per row).
3. out = acc / l, or 0 where l == 0 (every key masked: PyTorch's zeros).

Causal tasks stop at the key block holding their last query and skip, per
row, the blocks entirely after it. Blocking follows the host: W lanes from
the vector width (target.vector_bits), BK from the L1 size (the packed K
and V blocks fill half of it; at most 8 score vectors stay in registers),
BQ from the L2 size (rows of q and acc), so nothing is tuned to one machine.
float32 exponentials use a vectorized range reduction and polynomial
(within 1 ulp; float64 uses llvm.exp).
"""

from __future__ import annotations

import math

from llvmlite import ir

from graphc.codegen.kernel import Kernel
from graphc.codegen.llvm import target
from graphc.codegen.llvm.expr import F32, F64, I8, I32, I64, int_min, intrinsic, mem_type, reg_type, splat

# Score vectors kept in registers per row (x86 has 16 vector registers).
MAX_SCORE_VECTORS = 8
# Accumulator vectors updated per pass over a key block, over the rows of
# a pass (the rest of the head dim takes another pass).
ACC_CHUNK = 8
# Query rows per task at most (more rows amortize packing less and less).
MAX_BQ = 64
# float32 exp: ln 2 = LN2_HI + LN2_LO, and q(r) ~ (e^r - 1 - r) / r^2 on
# [-ln2/2, ln2/2] (highest power first): a degree-5 least-squares fit at
# Chebyshev nodes, rounded to float32; exp is then within 1 ulp (checked
# against numpy on 2M points of [-87, 0] in tests/compiler/test_attention_kernel.py).
LN2_HI = 355 / 512
LN2_LO = math.log(2) - LN2_HI
EXP_POLY = (1.9899275503e-4, 1.3933643932e-3, 8.3332983777e-3, 4.1666466743e-2, 1.6666667163e-1, 0.5)


class Blocking:
    """Block sizes of one attention kernel on this host."""

    def __init__(self, kern: Kernel):
        at = kern.attention
        itemsize = kern.acc_dtype.itemsize
        self.w = max(target.vector_bits() // (8 * itemsize), 1)
        w = self.w
        self.evp = -(-at.Ev // w) * w
        l1, l2, _ = target.cache_sizes()
        bk = (l1 // 2) // (itemsize * (at.E + self.evp)) // w * w
        bk = min(max(bk, w), MAX_SCORE_VECTORS * w, -(-max(at.S, 1) // w) * w)
        self.bk = bk
        bq = (l2 // 2) // (itemsize * (at.E + self.evp))
        self.bq = max(1, min(bq, MAX_BQ, at.L))
        self.nqb = -(-at.L // self.bq)
        self.nkb = -(-at.S // bk)


def tasks(kern: Kernel) -> int:
    """How many independent tasks (batch element, query block) the kernel
    splits into: the extent threads share."""
    nb = math.prod(kern.shape[:-2])
    return nb * Blocking(kern).nqb


def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _loop(b: ir.IRBuilder, lo, hi, name: str, inits, body):
    """for (i = lo; i < hi; i++) carrying the values `inits` (body(i, vals)
    returns the next vals); returns the values after the loop."""
    pre = b.block
    head = b.append_basic_block(f"{name}.head")
    body_bb = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(lo, pre)
    phis = []
    for v in inits:
        p = b.phi(v.type)
        p.add_incoming(v, pre)
        phis.append(p)
    b.cbranch(b.icmp_signed("<", i, hi), body_bb, done)
    b.position_at_end(body_bb)
    new = body(i, phis) or []
    latch = b.block
    i.add_incoming(b.add(i, _c(1), flags=("nsw",)), latch)
    for p, v in zip(phis, new):
        p.add_incoming(v, latch)
    b.branch(head)
    b.position_at_end(done)
    return phis


class _Builder:
    def __init__(self, b: ir.IRBuilder, kern: Kernel, buffers: dict, lo, hi):
        self.b, self.kern, self.at = b, kern, kern.attention
        self.buffers, self.lo, self.hi = buffers, lo, hi
        self.blk = Blocking(kern)
        self.t = reg_type(kern.acc_dtype)
        self.item = kern.acc_dtype.itemsize
        self.vt = ir.VectorType(self.t, self.blk.w)
        self.module = b.module
        sfx = f"v{self.blk.w}{'f32' if self.t == F32 else 'f64'}"
        self.fma = intrinsic(self.module, f"llvm.fma.{sfx}", self.vt, [self.vt] * 3)
        self.vmax = intrinsic(self.module, f"llvm.maxnum.{sfx}", self.vt, [self.vt] * 2)
        self.smax = intrinsic(self.module, f"llvm.maxnum.{'f32' if self.t == F32 else 'f64'}", self.t, [self.t] * 2)
        self.sexp = intrinsic(self.module, f"llvm.exp.{'f32' if self.t == F32 else 'f64'}", self.t, [self.t])
        self.vfloor = intrinsic(self.module, f"llvm.floor.{sfx}", self.vt, [self.vt])
        self.vexp_libm = intrinsic(self.module, f"llvm.exp.{sfx}", self.vt, [self.vt])

    # -- small helpers ------------------------------------------------------
    def fconst(self, x: float):
        return ir.Constant(self.t, x)

    def splat(self, x):
        return splat(self.b, x, self.blk.w)

    def vconst(self, x: float):
        return ir.Constant(self.vt, [x] * self.blk.w)

    def vptr(self, base, index):
        return self.b.bitcast(self.b.gep(base, [index], inbounds=True), self.vt.as_pointer())

    def vload(self, base, index):
        return self.b.load(self.vptr(base, index), align=self.item)

    def vstore(self, value, base, index):
        self.b.store(value, self.vptr(base, index), align=self.item)

    def hreduce(self, v, combine: str):
        """The lanes of v combined ("max" or "sum") to a scalar: halves
        added or maxed while wider than two lanes, then the last two."""
        b, n = self.b, self.blk.w
        sfx = "f32" if self.t == F32 else "f64"
        while n > 2:
            half = n // 2
            vt, idx = ir.VectorType(self.t, half), ir.VectorType(I32, half)
            lo = b.shuffle_vector(v, v, ir.Constant(idx, list(range(half))))
            hi = b.shuffle_vector(v, v, ir.Constant(idx, list(range(half, n))))
            if combine == "max":
                v = b.call(intrinsic(self.module, f"llvm.maxnum.v{half}{sfx}", vt, [vt, vt]), [lo, hi])
            else:
                v = b.fadd(lo, hi, flags=("reassoc", "nsz"))
            n = half
        x = b.extract_element(v, ir.Constant(I32, 0))
        if n == 1:
            return x
        y = b.extract_element(v, ir.Constant(I32, 1))
        return b.call(self.smax, [x, y]) if combine == "max" else b.fadd(x, y)

    def vexp(self, x):
        """exp of a vector whose lanes are <= 0 or -inf (scores minus their
        running maximum)."""
        if self.t != F32:
            return self.b.call(self.vexp_libm, [x])
        b = self.b
        # exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in
        # two parts, LN2_HI with 9 significant bits, so n * LN2_HI is exact),
        # exp(r) = 1 + r + r^2 q(r) with EXP_POLY (see there).
        lo = -87.0  # below this the result is under float32's normal range
        xc = b.call(self.vmax, [x, self.vconst(lo)])
        n = b.call(self.vfloor, [b.fadd(b.fmul(xc, self.vconst(1 / math.log(2))), self.vconst(0.5))])
        r = b.fsub(xc, b.fmul(n, self.vconst(LN2_HI)))
        r = b.fsub(r, b.fmul(n, self.vconst(LN2_LO)))
        p = self.vconst(EXP_POLY[0])
        for c in EXP_POLY[1:]:
            p = b.call(self.fma, [p, r, self.vconst(c)])
        y = b.fadd(b.call(self.fma, [p, b.fmul(r, r), r]), self.vconst(1.0))
        iv = ir.VectorType(I32, self.blk.w)
        bits = b.shl(b.add(b.fptosi(n, iv), ir.Constant(iv, [127] * self.blk.w)), ir.Constant(iv, [23] * self.blk.w))
        y = b.fmul(y, b.bitcast(bits, self.vt))
        y = b.select(b.fcmp_ordered("<", x, self.vconst(lo)), self.vconst(0.0), y)
        return b.select(b.fcmp_unordered("uno", x, x), x, y)

    def scratch(self, t: ir.Type, n: int, name: str):
        return self.b.alloca(t, size=_c(max(n, 1)), name=name)

    # -- the kernel ---------------------------------------------------------
    def build(self) -> None:
        b, at, blk = self.b, self.at, self.blk
        bk, bq, evp = blk.bk, blk.bq, blk.evp
        self.kt = self.scratch(self.t, at.E * bk, "kt")
        self.vp = self.scratch(self.t, bk * evp, "vp")
        self.p = self.scratch(self.t, bk, "p")
        self.p2 = self.scratch(self.t, bk, "p2")
        self.acc = self.scratch(self.t, bq * evp, "acc")
        self.m = self.scratch(self.t, bq, "m")
        self.l = self.scratch(F64, bq, "l")
        # Padding lanes of the packed blocks are read (their products are
        # masked or land in unused accumulator lanes): keep them finite.
        zero = self.fconst(0.0)
        for buf, n in ((self.kt, at.E * bk), (self.vp, bk * evp)):

            def clear(i, _v, buf=buf):
                b.store(zero, b.gep(buf, [i]))

            _loop(b, _c(0), _c(n), "zero", [], clear)
        _loop(b, self.lo, self.hi, "task", [], lambda task, _v: self.task(task))

    def offsets(self, bidx):
        """Flat offsets of batch element bidx in q, k, v, mask and out."""
        b, at = self.b, self.at
        batch = self.kern.shape[:-2]
        idx, rest = [], bidx
        for d in reversed(batch):
            idx.append(b.urem(rest, _c(d)))
            rest = b.udiv(rest, _c(d))
        idx.reverse()

        def off(op):
            total = _c(op.offset)
            for i, s in zip(idx, op.batch_strides):
                if s:
                    total = b.add(total, b.mul(i, _c(s)))
            return total

        ops = [at.q, at.k, at.v] + ([at.mask] if at.mask is not None else [])
        return [off(o) for o in ops] + [b.mul(bidx, _c(at.L * at.Ev))]

    def task(self, task) -> None:
        b, at, blk = self.b, self.at, self.blk
        bidx = b.udiv(task, _c(blk.nqb))
        i0 = b.mul(b.urem(task, _c(blk.nqb)), _c(blk.bq))
        i1 = int_min(b, b.add(i0, _c(blk.bq)), _c(at.L))
        nrows = b.sub(i1, i0)
        offs = self.offsets(bidx)
        self.q_off, self.k_off, self.v_off = offs[:3]
        self.m_off = offs[3] if at.mask is not None else None
        self.o_off = offs[-1]

        def init(r, _v):
            b.store(self.fconst(-math.inf), b.gep(self.m, [r]))
            b.store(ir.Constant(F64, 0.0), b.gep(self.l, [r]))
            for u in range(blk.evp // blk.w):
                self.vstore(self.vconst(0.0), self.acc, b.add(b.mul(r, _c(blk.evp)), _c(u * blk.w)))

        _loop(b, _c(0), nrows, "init", [], init)
        nkb = _c(blk.nkb)
        if at.causal:  # key blocks after the task's last query hold no key it sees
            nkb = int_min(b, nkb, b.udiv(b.add(i1, _c(blk.bk - 1)), _c(blk.bk)))
        _loop(b, _c(0), nkb, "kb", [], lambda kb, _v: self.key_block(kb, i0, nrows))
        _loop(b, _c(0), nrows, "fin", [], lambda r, _v: self.finish(r, b.add(i0, r)))

    def key_block(self, kb, i0, nrows) -> None:
        b, at, blk = self.b, self.at, self.blk
        j0 = b.mul(kb, _c(blk.bk))
        jn = int_min(b, _c(blk.bk), b.sub(_c(at.S), j0))
        self.pack(j0, jn)
        r_lo = _c(0)
        if at.causal:  # rows before the block's first key see none of it
            d = b.sub(j0, i0)
            r_lo = b.select(b.icmp_signed(">", d, _c(0)), d, _c(0))
        pairs = b.udiv(b.sub(nrows, r_lo), _c(2))

        def pair(k, _v):
            r = b.add(r_lo, b.mul(k, _c(2)))
            self.row_pair(b.add(i0, r), r, j0, jn)

        _loop(b, _c(0), pairs, "pair", [], pair)
        with b.if_then(b.icmp_signed("<", b.add(r_lo, b.mul(pairs, _c(2))), nrows)):
            last = b.sub(nrows, _c(1))
            self.row(b.add(i0, last), last, j0, jn)

    def pack(self, j0, jn) -> None:
        b, at, blk = self.b, self.at, self.blk
        kbuf, vbuf = self.buffers[at.k.buffer], self.buffers[at.v.buffer]

        def pack_row(j, _v):
            key = b.add(j0, j)
            kbase = b.add(self.k_off, b.mul(key, _c(at.k.row_stride)))
            vbase = b.add(self.v_off, b.mul(key, _c(at.v.row_stride)))

            def k_el(e, _v):
                x = b.load(b.gep(kbuf, [b.add(kbase, b.mul(e, _c(at.k.col_stride)))], inbounds=True))
                b.store(x, b.gep(self.kt, [b.add(b.mul(e, _c(blk.bk)), j)], inbounds=True))

            def v_el(e, _v):
                x = b.load(b.gep(vbuf, [b.add(vbase, b.mul(e, _c(at.v.col_stride)))], inbounds=True))
                b.store(x, b.gep(self.vp, [b.add(b.mul(j, _c(blk.evp)), e)], inbounds=True))

            _loop(b, _c(0), _c(at.E), "pk", [], k_el)
            _loop(b, _c(0), _c(at.Ev), "pv", [], v_el)

        _loop(b, _c(0), jn, "pack", [], pack_row)

    def scores(self, i, j0) -> list:
        """The row's BK scores (scaled, masked) as vectors."""
        b, at, blk = self.b, self.at, self.blk
        w, nv = blk.w, blk.bk // blk.w
        qbuf = self.buffers[at.q.buffer]
        qbase = b.add(self.q_off, b.mul(i, _c(at.q.row_stride)))

        def dot_step(e, accs):
            qe = b.load(b.gep(qbuf, [b.add(qbase, b.mul(e, _c(at.q.col_stride)))], inbounds=True))
            qv = self.splat(qe)
            row = b.mul(e, _c(blk.bk))
            return [b.call(self.fma, [qv, self.vload(self.kt, b.add(row, _c(t * w))), accs[t]]) for t in range(nv)]

        s = _loop(b, _c(0), _c(at.E), "e", [self.vconst(0.0)] * nv, dot_step)
        s = [b.fmul(x, self.vconst(at.scale)) for x in s]
        iv = ir.VectorType(I64, w)
        lanes = ir.Constant(iv, list(range(w)))
        neg_inf = self.vconst(-math.inf)
        mbuf = self.buffers[at.mask.buffer] if at.mask is not None else None
        out = []
        for t, x in enumerate(s):
            jbase = b.add(j0, _c(t * w))
            jv = b.add(self._isplat(jbase), lanes)
            if mbuf is not None:
                mv = self.mask_vector(mbuf, b.add(self.m_off, b.mul(i, _c(at.mask.row_stride))), jbase)
                if at.mask_kind == "float":
                    x = b.fadd(x, mv)
                else:
                    off = b.icmp_unsigned("==", mv, ir.Constant(ir.VectorType(I8, w), [0] * w))
                    x = b.select(off, neg_inf, x)
            dead = b.icmp_signed(">=", jv, self._isplat(_c(at.S)))
            if at.causal:
                dead = b.or_(dead, b.icmp_signed(">", jv, self._isplat(i)))
            out.append(b.select(dead, neg_inf, x))
        return out

    def mask_vector(self, mbuf, mrow, jbase):
        """The mask at keys jbase .. jbase + W - 1 of the row starting at
        mrow (keys past S read key S - 1; their scores are dropped): one
        vector load where the mask's keys are contiguous and all in range,
        else one load per lane."""
        b, at, w = self.b, self.at, self.blk.w
        mt = mem_type(self.kern.acc_dtype) if at.mask_kind == "float" else I8
        vt = ir.VectorType(mt, w)

        def lanes():
            mv = ir.Constant(vt, ir.Undefined)
            for lane in range(w):
                j = int_min(b, b.add(jbase, _c(lane)), _c(at.S - 1))
                val = b.load(b.gep(mbuf, [b.add(mrow, b.mul(j, _c(at.mask.col_stride)))], inbounds=True))
                mv = b.insert_element(mv, val, ir.Constant(I32, lane))
            return mv

        if at.mask.col_stride != 1 or at.S < w:
            return lanes()
        whole = b.icmp_signed("<=", b.add(jbase, _c(w)), _c(at.S))
        with b.if_else(whole) as (then, otherwise):
            with then:
                ptr = b.bitcast(b.gep(mbuf, [b.add(mrow, jbase)], inbounds=True), vt.as_pointer())
                fast = b.load(ptr, align=mt.width // 8 if isinstance(mt, ir.IntType) else self.item)
                fast_bb = b.block
            with otherwise:
                slow = lanes()
                slow_bb = b.block
        mv = b.phi(vt)
        mv.add_incoming(fast, fast_bb)
        mv.add_incoming(slow, slow_bb)
        return mv

    def _isplat(self, x):
        b, w = self.b, self.blk.w
        iv = ir.VectorType(I64, w)
        v = b.insert_element(ir.Constant(iv, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(v, ir.Constant(iv, ir.Undefined), ir.Constant(ir.VectorType(I32, w), [0] * w))

    def softmax_row(self, i, r, j0, pbuf):
        """Row r's scores for the key block; updates its running max and
        sum, writes its weights p_j = exp(s_j - max) to pbuf (zeros when
        every score so far is -inf) and returns alpha, the factor that
        rescales its accumulator (1 in that case)."""
        b, blk = self.b, self.blk
        s = self.scores(i, j0)
        mx = s[0]
        for x in s[1:]:
            mx = b.call(self.vmax, [mx, x])
        m_old = b.load(b.gep(self.m, [r]))
        m_new = b.call(self.smax, [m_old, self.hreduce(mx, "max")])
        seen = b.fcmp_ordered("!=", m_new, self.fconst(-math.inf))
        with b.if_else(seen) as (then, otherwise):
            with then:
                b.store(m_new, b.gep(self.m, [r]))
                alpha = b.call(self.sexp, [b.fsub(m_old, m_new)])
                mv = self.splat(m_new)
                total = None
                for t, x in enumerate(s):
                    p = self.vexp(b.fsub(x, mv))
                    self.vstore(p, pbuf, _c(t * blk.w))
                    total = p if total is None else b.fadd(total, p, flags=("reassoc", "nsz"))
                psum = self.hreduce(total, "sum")
                lp = b.gep(self.l, [r])
                alpha64 = b.fpext(alpha, F64) if self.t == F32 else alpha
                psum64 = b.fpext(psum, F64) if self.t == F32 else psum
                b.store(b.fadd(b.fmul(b.load(lp), alpha64), psum64), lp)
                then_bb = b.block
            with otherwise:
                for t in range(len(s)):
                    self.vstore(self.vconst(0.0), pbuf, _c(t * blk.w))
                else_bb = b.block
        out = b.phi(self.t)
        out.add_incoming(alpha, then_bb)
        out.add_incoming(self.fconst(1.0), else_bb)
        return out

    def n_keys(self, i, j0, jn):
        """Keys of the block row i sees: all jn, or (causal) up to i."""
        if not self.at.causal:
            return jn
        return int_min(self.b, jn, self.b.add(self.b.sub(i, j0), _c(1)))

    def row(self, i, r, j0, jn) -> None:
        alpha = self.softmax_row(i, r, j0, self.p)
        self.accumulate([r], [alpha], [self.p], self.n_keys(i, j0, jn))

    def row_pair(self, i, r, j0, jn) -> None:
        """Rows r and r + 1 together: their P.V loops share each value
        vector load (one load per two FMAs instead of one per FMA)."""
        b = self.b
        a0 = self.softmax_row(i, r, j0, self.p)
        i1, r1 = b.add(i, _c(1)), b.add(r, _c(1))
        a1 = self.softmax_row(i1, r1, j0, self.p2)
        self.accumulate([r, r1], [a0, a1], [self.p, self.p2], self.n_keys(i1, j0, jn))

    def accumulate(self, rows, alphas, pbufs, n_keys) -> None:
        """acc[r] = acc[r] * alpha_r + sum_{j < n_keys} p_r[j] vp[j] for
        the rows, in passes over at most ACC_CHUNK accumulator vectors."""
        b, blk = self.b, self.blk
        nv = blk.evp // blk.w
        per = max(ACC_CHUNK // len(rows), 1)
        avs = [self.splat(a) for a in alphas]
        bases = [b.mul(r, _c(blk.evp)) for r in rows]
        for c0 in range(0, nv, per):
            chunk = list(range(c0, min(c0 + per, nv)))
            accs = [
                b.fmul(self.vload(self.acc, b.add(base, _c(u * blk.w))), av)
                for base, av in zip(bases, avs)
                for u in chunk
            ]

            def step(j, accs, chunk=chunk):
                vrow = b.mul(j, _c(blk.evp))
                vs = [self.vload(self.vp, b.add(vrow, _c(u * blk.w))) for u in chunk]
                out = []
                for k, pbuf in enumerate(pbufs):
                    pj = self.splat(b.load(b.gep(pbuf, [j])))
                    part = accs[k * len(chunk) : (k + 1) * len(chunk)]
                    out += [b.call(self.fma, [pj, v, a]) for v, a in zip(vs, part)]
                return out

            accs = _loop(b, _c(0), n_keys, "pv", accs, step)
            for k, base in enumerate(bases):
                for u, a in zip(chunk, accs[k * len(chunk) : (k + 1) * len(chunk)]):
                    self.vstore(a, self.acc, b.add(base, _c(u * blk.w)))

    def finish(self, r, i) -> None:
        b, at, blk = self.b, self.at, self.blk
        l64 = b.load(b.gep(self.l, [r]))
        lt = b.fptrunc(l64, self.t) if self.t == F32 else l64
        seen = b.fcmp_ordered(">", l64, ir.Constant(F64, 0.0))
        lv = self.splat(lt)
        out = self.buffers[self.kern.stores[0].buffer]
        obase = b.add(self.o_off, b.mul(i, _c(at.Ev)))
        for u in range(blk.evp // blk.w):
            a = self.vload(self.acc, b.add(b.mul(r, _c(blk.evp)), _c(u * blk.w)))
            y = b.select(seen, b.fdiv(a, lv), self.vconst(0.0))
            e0 = u * blk.w
            if e0 + blk.w <= at.Ev:
                self.vstore(y, out, b.add(obase, _c(e0)))
            else:
                for lane in range(at.Ev - e0):
                    x = b.extract_element(y, ir.Constant(I32, lane))
                    b.store(x, b.gep(out, [b.add(obase, _c(e0 + lane))], inbounds=True))


def build(b: ir.IRBuilder, kern: Kernel, buffers: dict, lo, hi) -> None:
    """Emit the attention kernel's body at `b` (the function's entry
    block): tasks [lo, hi) of `tasks(kern)`."""
    _Builder(b, kern, buffers, lo, hi).build()
