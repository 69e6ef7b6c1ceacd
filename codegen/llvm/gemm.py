"""A blocked, packed GEMM for float `dot` kernels.

Layout of the computation for one batch item (the classic cache-blocked
scheme: B panels stay in L2, one B micro-panel in L1, the register tile in
registers):

    for jc in this thread's columns, step NC:
      for pc in 0..K, step KC:
        pack B[pc:pc+kc, jc:jc+nc] -> pb     panels of NR columns, [panel][k][NR]
        for ic in this thread's rows, step MC:
          pack A[ic:ic+mc, pc:pc+kc] -> pa   panels of MR rows,    [panel][k][MR]
          for each NR panel jr, each MR panel ir:
            cbuf tile (MR x NR) (+)= pa panel x pb panel     (micro-kernel)
          after the last pc: epilogue over the block's rows and columns,
            the kernel's stores with acc = cbuf[m, n]

Packing reads the operands through their `Operand` strides (transposed and
broadcast views cost nothing extra) and zero-fills the rows/columns past
the matrix edge, so the micro-kernel always runs on full tiles and never
branches; only the epilogue looks at the real extents, so nothing outside
the buffers is read or written. `cbuf` (all of the thread's rows x NC)
holds the sums across the K blocks, so B is packed once per (jc, pc); the
epilogue is an ordinary (vectorizable) loop over it, so any
fused epilogue (bias, relu, scale, several stores) works unchanged.

The micro-kernel keeps an MR x (NV * VW) tile in vector registers: per k
step it loads NV vectors of B, broadcasts MR scalars of A and issues
MR * NV `llvm.fma` calls (FMA contraction of a dot product, like the
`contract` flag the scalar path uses).

Scratch (pa, pb, cbuf) is a per-thread slice of a workspace the runtime
allocates (`workspace_bytes()` per thread), so concurrent threads never
share scratch. Threads split the rows (in MR steps) or, for wide and short
products, the columns (in NR steps).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from codegen.kernel import Kernel
from codegen.llvm import target
from codegen.llvm.expr import I1, I64, reg_type

# Products with fewer multiply-adds, fewer rows or fewer columns than this
# use the simple row loop: packing would cost more than it saves.
GEMM_MIN_WORK = 1 << 15
GEMM_MIN_ROWS = 4
GEMM_MIN_COLS = 8


@dataclass(frozen=True)
class Blocking:
    """Tile and block sizes (elements) for one element type."""

    vw: int  # lanes per vector
    nv: int  # vectors per tile row
    mr: int  # tile rows
    kc: int
    mc: int
    nc: int

    @property
    def nr(self) -> int:
        return self.vw * self.nv

    def scratch_elems(self, rows: int) -> int:
        """pa (MC x KC) + pb (KC x NC) + cbuf (rows, rounded up to MR, x NC)."""
        padded = (rows + self.mr - 1) // self.mr * self.mr
        return self.mc * self.kc + self.kc * self.nc + padded * self.nc


def blocking(dtype) -> Blocking:
    bits = target.vector_bits()
    vw = max(1, bits // (8 * dtype.itemsize))
    # Registers: MR * NV accumulators + NV B vectors + one broadcast must fit
    # (32 vector registers with AVX-512: 28 + 2 + 1; 16 otherwise: 12 + 2 + 1).
    mr = 14 if bits == 512 else (6 if bits == 256 else 4)
    nv = 2
    nr = vw * nv
    kc = 256 if dtype.itemsize == 4 else 192
    mc = mr * 16
    nc = nr * 32
    return Blocking(vw, nv, mr, kc, mc, nc)


def uses_gemm(kern: Kernel) -> bool:
    """Whether this dot kernel runs through the packed GEMM."""
    if kern.kind != "dot" or kern.a is None:
        return False
    dt = kern.acc_dtype
    if dt is None or not dt.is_float or dt.itemsize not in (4, 8):
        return False
    m, n = kern.shape[-2], kern.shape[-1]
    return kern.k >= 1 and m >= GEMM_MIN_ROWS and n >= GEMM_MIN_COLS and m * n * kern.k >= GEMM_MIN_WORK


def workspace_bytes(kern: Kernel) -> int:
    """Per-thread scratch bytes of a GEMM kernel (64-byte multiple)."""
    blk = blocking(kern.acc_dtype)
    nbytes = blk.scratch_elems(kern.shape[-2]) * kern.acc_dtype.itemsize
    return (nbytes + 63) // 64 * 64


# ---------------------------------------------------------------------------
# small IR helpers


def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _min(b: ir.IRBuilder, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


class _Loop:
    """`for (i = lo; i < hi; i += step)` as a context manager."""

    def __init__(self, b: ir.IRBuilder, lo, hi, step: int, name: str):
        self.b, self.lo, self.hi, self.step, self.name = b, lo, hi, step, name

    def __enter__(self):
        b = self.b
        pre = b.block
        self.head = b.append_basic_block(f"{self.name}.head")
        body = b.append_basic_block(f"{self.name}.body")
        self.done = b.append_basic_block(f"{self.name}.done")
        b.branch(self.head)
        b.position_at_end(self.head)
        self.i = b.phi(I64, name=self.name)
        self.i.add_incoming(self.lo, pre)
        b.cbranch(b.icmp_signed("<", self.i, self.hi), body, self.done)
        b.position_at_end(body)
        return self.i

    def __exit__(self, *exc):
        b = self.b
        nxt = b.add(self.i, _c(self.step), name=f"{self.name}.next", flags=("nsw",))
        self.i.add_incoming(nxt, b.block)
        b.branch(self.head)
        b.position_at_end(self.done)


def _microkernel(module: ir.Module, elem: ir.Type, blk: Blocking) -> ir.Function:
    """void uk(i64 kc, T* pa, T* pb, T* c, i64 ldc, i1 accumulate):
    c[r, 0:NR] (+)= sum_k pa[k*MR + r] * pb[k*NR + 0:NR] for r < MR.
    pb and c rows are vector aligned; one function per element type."""
    name = f"graphc_gemm_uk_{'f32' if elem == ir.FloatType() else 'f64'}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    vt = ir.VectorType(elem, blk.vw)
    align = blk.vw * (4 if elem == ir.FloatType() else 8)
    ptr = elem.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, ptr, ptr, ptr, I64, I1]), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    kc, pa, pb, c, ldc, accumulate = fn.args
    for p in (pa, pb, c):
        p.add_attribute("noalias")
    suffix = f"v{blk.vw}{'f32' if elem == ir.FloatType() else 'f64'}"
    fma = module.globals.get(f"llvm.fma.{suffix}") or ir.Function(
        module, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.{suffix}")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    entry = b.block
    loop = b.append_basic_block("k")
    done = b.append_basic_block("done")
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(I64, name="k")
    k.add_incoming(_c(0), entry)
    zero = ir.Constant(vt, None)
    accs = []
    for r in range(blk.mr):
        row = []
        for v in range(blk.nv):
            phi = b.phi(vt, name=f"acc{r}_{v}")
            phi.add_incoming(zero, entry)
            row.append(phi)
        accs.append(row)
    bbase = b.gep(pb, [b.mul(k, _c(blk.nr))], inbounds=True)
    bvec = [b.load(b.bitcast(b.gep(bbase, [_c(v * blk.vw)], inbounds=True), vt.as_pointer()), align=align)
            for v in range(blk.nv)]
    abase = b.gep(pa, [b.mul(k, _c(blk.mr))], inbounds=True)
    mask = ir.Constant(ir.VectorType(ir.IntType(32), blk.vw), [0] * blk.vw)
    new = []
    for r in range(blk.mr):
        s = b.load(b.gep(abase, [_c(r)], inbounds=True))
        splat = b.shuffle_vector(b.insert_element(ir.Constant(vt, ir.Undefined), s, ir.Constant(ir.IntType(32), 0)),
                                 ir.Constant(vt, ir.Undefined), mask)
        new.append([b.call(fma, [splat, bvec[v], accs[r][v]]) for v in range(blk.nv)])
    k1 = b.add(k, _c(1), flags=("nsw",))
    k.add_incoming(k1, loop)
    for r in range(blk.mr):
        for v in range(blk.nv):
            accs[r][v].add_incoming(new[r][v], loop)
    b.cbranch(b.icmp_signed("<", k1, kc), loop, done)
    b.position_at_end(done)
    # One branch for the whole tile: the first K block stores, later ones add.
    with b.if_else(accumulate) as (add, store):
        for first_block, where in ((False, add), (True, store)):
            with where:
                for r in range(blk.mr):
                    crow = b.gep(c, [b.mul(_c(r), ldc)], inbounds=True)
                    for v in range(blk.nv):
                        p = b.bitcast(b.gep(crow, [_c(v * blk.vw)], inbounds=True), vt.as_pointer())
                        val = new[r][v] if first_block else b.fadd(b.load(p, align=align), new[r][v])
                        b.store(val, p, align=align)
    b.ret_void()
    return fn


# ---------------------------------------------------------------------------
# the kernel body


class GemmEmitter:
    """Emits the body of a GEMM dot kernel into a KernelBuilder `kb` whose
    function takes (..., tid, nthreads, error, workspace)."""

    def __init__(self, kb, tid, nthreads, workspace):
        self.kb, self.b = kb, kb.b
        self.kern = kb.kern
        self.tid, self.nthreads, self.ws = tid, nthreads, workspace
        self.elem = reg_type(self.kern.acc_dtype)
        self.blk = blocking(self.kern.acc_dtype)

    def emit(self) -> None:
        k, b, blk = self.kern, self.b, self.blk
        m_ext, n_ext = k.shape[-2], k.shape[-1]
        ptr = self.elem.as_pointer()
        ws = b.bitcast(self.ws, ptr)
        self.pa = ws
        self.pb = b.gep(ws, [_c(blk.mc * blk.kc)], inbounds=True)
        self.cbuf = b.gep(ws, [_c(blk.mc * blk.kc + blk.kc * blk.nc)], inbounds=True)
        self.uk = _microkernel(b.module, self.elem, blk)
        # This thread's rows and columns: split the longer side in tile steps.
        m_lo, m_hi, n_lo, n_hi = _c(0), _c(m_ext), _c(0), _c(n_ext)
        if m_ext // blk.mr >= n_ext // blk.nr:
            m_lo, m_hi = self._share(m_ext, blk.mr)
        else:
            n_lo, n_hi = self._share(n_ext, blk.nr)
        env: dict = {}
        batch = k.loop_vars()[:-2]
        self._batch_loops(batch, env, lambda: self._blocks(env, m_lo, m_hi, n_lo, n_hi))

    def _share(self, extent: int, step: int):
        b = self.b
        tiles = _c((extent + step - 1) // step)
        lo = b.mul(b.sdiv(b.mul(tiles, self.tid), self.nthreads), _c(step))
        hi = b.mul(b.sdiv(b.mul(tiles, b.add(self.tid, _c(1))), self.nthreads), _c(step))
        return _min(b, lo, _c(extent)), _min(b, hi, _c(extent))

    def _batch_loops(self, dims, env, body) -> None:
        if not dims:
            body()
            return
        (name, extent), rest = dims[0], dims[1:]
        with _Loop(self.b, _c(0), _c(extent), 1, name) as i:
            env[name] = i
            self._batch_loops(rest, env, body)

    def _blocks(self, env, m_lo, m_hi, n_lo, n_hi) -> None:
        k, b, blk = self.kern, self.b, self.blk
        last_pc = (k.k - 1) // blk.kc * blk.kc
        with _Loop(b, n_lo, n_hi, blk.nc, "jc") as jc:
            nc = _min(b, _c(blk.nc), b.sub(n_hi, jc))
            with _Loop(b, _c(0), _c(k.k), blk.kc, "pc") as pc:
                kc = _min(b, _c(blk.kc), b.sub(_c(k.k), pc))
                # B is packed once per (jc, pc) for all of this thread's rows.
                self._pack_b(env, pc, kc, jc, nc)
                accumulate = b.icmp_signed(">", pc, _c(0))
                with _Loop(b, m_lo, m_hi, blk.mc, "ic") as ic:
                    mc = _min(b, _c(blk.mc), b.sub(m_hi, ic))
                    self._pack_a(env, ic, mc, pc, kc)
                    crows = b.gep(self.cbuf, [b.mul(b.sub(ic, m_lo), _c(blk.nc))], inbounds=True)
                    with _Loop(b, _c(0), nc, blk.nr, "jr") as jr:
                        bp = b.gep(self.pb, [b.mul(jr, kc)], inbounds=True)
                        with _Loop(b, _c(0), mc, blk.mr, "ir") as ir_:
                            ap = b.gep(self.pa, [b.mul(ir_, kc)], inbounds=True)
                            cp = b.gep(crows, [b.add(b.mul(ir_, _c(blk.nc)), jr)], inbounds=True)
                            b.call(self.uk, [kc, ap, bp, cp, _c(blk.nc), accumulate])
                    # After the last K block the sums are final: run the
                    # epilogue while this block of cbuf is still in cache.
                    with b.if_then(b.icmp_signed("==", pc, _c(last_pc))):
                        self._epilogue(env, crows, ic, mc, jc, nc)

    def _operand_base(self, op, env):
        """Flat index of element (b.., 0, 0) of an operand view."""
        b = self.b
        idx = _c(op.offset)
        for d, s in enumerate(op.batch_strides):
            if s:
                idx = b.add(idx, b.mul(env[f"b{d}"], _c(s)))
        return idx

    def _read(self, op, base, row, col):
        """Operand element (row, col) as the accumulator type."""
        b = self.b
        idx = b.add(base, b.add(b.mul(row, _c(op.row_stride)), b.mul(col, _c(op.col_stride))))
        v = b.load(b.gep(self.kb.buffers[op.buffer], [idx], inbounds=True))
        return v

    def _pack(self, op, env, panel: int, outer0, outer_n, outer_ext: int, k0, kc, dst, a_side: bool) -> None:
        """Pack rows (A) or columns (B) [outer0, outer0+outer_n) x k [k0, k0+kc)
        of `op` into panels of `panel` lines: dst[p][k][i] = op(outer0 + p*panel + i, k0 + k),
        zero past `outer_ext` (the matrix edge)."""
        b = self.b
        base = self._operand_base(op, env)
        zero = ir.Constant(self.elem, 0.0)

        def read(line, kk):
            row, col = (line, kk) if a_side else (kk, line)
            return self._read(op, base, row, col)

        with _Loop(b, _c(0), outer_n, panel, "pp") as p0:
            first = b.add(outer0, p0)
            out = b.gep(dst, [b.mul(p0, kc)], inbounds=True)  # panel start: p0/panel * kc * panel
            full = b.icmp_signed("<=", b.add(first, _c(panel)), _c(outer_ext))
            with b.if_else(full) as (then, otherwise):
                with then:
                    self._pack_panel(read, out, first, panel, k0, kc, a_side, None, zero)
                with otherwise:
                    self._pack_panel(read, out, first, panel, k0, kc, False, b.sub(_c(outer_ext), first), zero)

    def _pack_panel(self, read, out, first, panel, k0, kc, unroll, valid, zero) -> None:
        """One panel; `valid` (lines inside the matrix) is None for full panels."""
        b = self.b

        def one(i, kk):
            dst = b.gep(out, [b.add(b.mul(kk, _c(panel)), i)], inbounds=True)
            if valid is None:
                b.store(read(b.add(first, i), b.add(k0, kk)), dst)
                return
            inside = b.icmp_signed("<", i, valid)
            with b.if_else(inside) as (then, otherwise):
                with then:
                    b.store(read(b.add(first, i), b.add(k0, kk)), dst)
                with otherwise:
                    b.store(zero, dst)

        if unroll:
            # A panels (MR lines): k outer, the lines as straight-line code,
            # so the stores are contiguous (no scatter) and reads stream
            # along MR rows or one column.
            with _Loop(b, _c(0), kc, 1, "pk") as kk:
                for i in range(panel):
                    one(_c(i), kk)
        else:
            with _Loop(b, _c(0), kc, 1, "pk") as kk:
                with _Loop(b, _c(0), _c(panel), 1, "pi") as i:
                    one(i, kk)

    def _pack_a(self, env, ic, mc, pc, kc) -> None:
        k = self.kern
        self._pack(k.a, env, self.blk.mr, ic, mc, k.shape[-2], pc, kc, self.pa, True)

    def _pack_b(self, env, pc, kc, jc, nc) -> None:
        k = self.kern
        self._pack(k.b, env, self.blk.nr, jc, nc, k.shape[-1], pc, kc, self.pb, False)

    def _epilogue(self, env, crows, ic, mc, jc, nc) -> None:
        b = self.b
        with _Loop(b, _c(0), mc, 1, "em") as i:
            env["m"] = b.add(ic, i)
            row = b.gep(crows, [b.mul(i, _c(self.blk.nc))], inbounds=True)
            with _Loop(b, _c(0), nc, 1, "en") as j:
                env["n"] = b.add(jc, j)
                acc = b.load(b.gep(row, [j], inbounds=True))
                self.kb._stores(self.kern.stores, env, acc)
