"""A blocked, packed GEMM for float `dot` kernels.

Layout of the computation for one batch item (the classic cache-blocked
scheme: B panels stay in L2, one B micro-panel in L1, the register tile in
registers):

    for jc in this thread's columns, step NC:
      for pc in 0..K, step KC:
        pack B[pc:pc+kc, jc:jc+nc] -> pb     panels of NR columns, [panel][k][NR]
        for ic in this thread's rows, step MC:
          pack A[ic:ic+mc, pc:pc+kc] -> pa   panels of MR rows,    [panel][k][MR]
          for each NR panel jr:
            for each MR panel ir:
              cbuf tile (MR x NR) (+)= pa panel x pb panel   (micro-kernel)
            after the last pc: epilogue over this MC x NR strip,
              the kernel's stores with acc = cbuf[m, n]

Packing reads the operands through their `Operand` strides (transposed and
broadcast views cost nothing extra) and zero-fills the rows/columns past
the matrix edge, so the micro-kernel never reads outside a panel and never
branches; a block's last, partial tile of rows runs a narrower copy of the
micro-kernel (`edge_rows`); only the epilogue looks at the real extents, so
nothing outside the buffers is read or written. `cbuf` (all of the thread's
rows x the column block, rows one vector more than the block apart, see
`Blocking.cbuf_ldc`) holds the sums across the K blocks, so
B is packed once per (jc, pc); the epilogue is an ordinary (vectorizable)
loop over one strip of it, run right after the strip's last micro-kernel
while the strip is still in cache, so any fused epilogue (bias, relu,
scale, several stores) works unchanged. A panel whose lines are contiguous
in memory (row-major B, a transposed A) is packed k-outer across all full
panels so that the source streams; one whose k is contiguous is transposed
in registers, 8 lines by 8 k at a time.

When the kernel's only store is the sum itself into a row-major buffer
(a plain `a @ b`, most convolutions), the caller passes that buffer as C:
in the last K block every full tile goes from registers straight to C,
and the epilogue only copies the edge tiles. With one K block, cbuf then
holds a single strip that every strip reuses, so sums never stream
through memory twice (512 x 32 x 4608, a weight gradient: 84 -> 120
GFLOP/s on one AVX-512 core).

The micro-kernel keeps an MR x (NV * VW) tile in vector registers: per k
step it loads NV vectors of B, broadcasts MR scalars of A and issues
MR * NV `llvm.fma` calls (FMA contraction of a dot product, like the
`contract` flag the scalar path uses).

Scratch (pa, pb, cbuf) is a per-thread slice of a workspace the runtime
allocates (`workspace_bytes()` per thread), so concurrent threads never
share scratch. Threads split the rows (in MR steps) or the columns (in NR
steps), whichever leaves the busiest thread fewer micro-tiles. Block sizes
come from the target's registers and caches (`blocking`); the routine cuts
K, rows and columns into equal blocks no larger than those. A product whose output is a single
tile but whose K is long (a convolution's weight gradient: a few hundred
outputs, tens of thousands of products each) would leave all threads but
one idle, so its threads split K instead: each sums its share of K into its
own cbuf, they meet at the program's barrier, then each adds up all cbufs
for its share of the rows and runs the epilogue on them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from llvmlite import ir

from graphc.codegen.kernel import Kernel, KOp, affine
from graphc.codegen.llvm import target
from graphc.codegen.llvm.expr import I1, I8, I64, int_max, int_min, reg_type
from graphc.codegen.llvm.sync import barrier_fn

# Products with fewer multiply-adds, fewer rows or fewer columns than this
# use the simple row loop: packing would cost more than it saves.
GEMM_MIN_WORK = 1 << 15
GEMM_MIN_ROWS = 4
GEMM_MIN_COLS = 8
# Single-tile products split K across threads from this many KC blocks on.
K_SPLIT_MIN_BLOCKS = 4
# Batched products whose items have at most this many micro-tiles give
# each thread whole items, when there are this many items per thread.
BATCH_SPLIT_TILES = 16
BATCH_SPLIT_ITEMS = 4


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

    @property
    def ldc(self) -> int:
        """Largest row stride of the sum buffer: `cbuf_ldc(NC)`."""
        return self.cbuf_ldc(self.nc)

    def cbuf_ldc(self, nc: int) -> int:
        """Row stride of the sum buffer for column blocks of `nc` (a
        multiple of NR): `nc` plus one vector. The block width is usually
        a power of two, and rows that far apart map to the same L1 set, so
        a tile's MR rows would evict each other; one vector more keeps rows
        aligned and spreads them over the sets. Rows only as long as the
        block (not NC) keep the buffer compact: 512 columns with NC = 2048
        spread 1 MB of sums over 4 MB, a page per row, and the prefetches
        of each tile's rows missed the TLB."""
        return nc + self.vw

    @property
    def kc_whole(self) -> int:
        """The longest K summed as one block: a third more than KC. Two K
        blocks cost a round trip of every sum through the sum buffer; one
        block of up to 4/3 KC (B micro-panel at 2/3 of L1) measured 8-11%
        faster than two (700 x 200 x 10000, the LSTM LM's decoder, and
        512 x 256 x 4096, one AVX-512 thread). A multiple of 16."""
        return self.kc * 4 // 3 // 16 * 16

    def cbuf_offset(self) -> int:
        """Elements from the start of a thread's scratch to its cbuf."""
        return self.mc * self.kc_whole + self.kc_whole * self.nc

    def scratch_elems(self, rows: int) -> int:
        """pa (MC x KC) + pb (KC x NC), KC up to `kc_whole`, + cbuf (rows,
        rounded up to MR, x LDC)."""
        padded = (rows + self.mr - 1) // self.mr * self.mr
        return self.cbuf_offset() + padded * self.ldc


def vector_registers(bits: int) -> int:
    """Architectural vector registers: 32 with AVX-512 (zmm0-31), 16 with
    AVX/AVX2 and SSE on x86-64."""
    return 32 if bits >= 512 else 16


def blocking(dtype, bits: int | None = None, caches: tuple[int, int, int] | None = None) -> Blocking:
    """Tile and block sizes from the target's vector width (`bits`,
    default the host's), register count and data cache sizes (`caches`:
    L1, L2, L3 bytes, default the host's); see codegen/llvm/README.md.

    - Tile: NV = 2 vectors of B per k step, MR rows of A broadcast; the
      MR * NV accumulators, the NV B vectors and one broadcast fill the
      register file (AVX-512: 14 x 2 + 2 + 1 = 31 of 32; AVX2: 6 x 2 + 2 +
      1 = 15 of 16).
    - KC: one packed B micro-panel (KC x NR), which the innermost loop reuses
      for every MR rows of A, fills half of L1; the other half holds the A
      micro-panel streaming through and the C tile.
    - MC: the packed A block (MC x KC), reused for every B micro-panel, fills
      half of L2.
    - NC: the packed B panel (KC x NC) takes at most half of this core's
      share of L3, and at most 64 micro-panels (the per-thread sum buffer
      grows with NC, and A is repacked only N / NC times anyway).
    """
    bits = target.vector_bits() if bits is None else bits
    l1, l2, l3 = target.cache_sizes() if caches is None else caches
    es = dtype.itemsize
    vw = max(1, bits // (8 * es))
    nv = 2
    mr = (vector_registers(bits) - nv - 1) // nv
    nr = vw * nv
    kc = _clamp(l1 // 2 // (nr * es) // 16 * 16, 64, 512)
    mc = _clamp(l2 // 2 // (kc * es) // mr * mr, 4 * mr, 64 * mr)
    cores = max(1, os.cpu_count() or 1)
    nc = _clamp(l3 // 2 // cores // (kc * es) // nr * nr, 4 * nr, 64 * nr)
    return Blocking(vw, nv, mr, kc, mc, nc)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


def uses_gemm(kern: Kernel) -> bool:
    """Whether this dot kernel runs through the packed GEMM."""
    if kern.kind != "dot" or kern.a is None:
        return False
    dt = kern.acc_dtype
    if dt is None or not dt.is_float or dt.itemsize not in (4, 8):
        return False
    m, n = kern.shape[-2], kern.shape[-1]
    return kern.k >= 1 and m >= GEMM_MIN_ROWS and n >= GEMM_MIN_COLS and m * n * kern.k >= GEMM_MIN_WORK


def _small_items(kern: Kernel, blk: Blocking) -> bool:
    """Whether a batched product's items are small enough (at most
    BATCH_SPLIT_TILES micro-tiles each) that threads should take whole
    items rather than share each item's tiles: attention's backward, 64
    items of 64 x 32 x 64, where both threads packed every item's B and
    ran 2-3 tiles each (~93 GFLOP/s)."""
    m, n = kern.shape[-2], kern.shape[-1]
    return -(-m // blk.mr) * -(-n // blk.nr) <= BATCH_SPLIT_TILES


def splits_k(kern: Kernel) -> bool:
    """Whether this GEMM kernel's threads split K (see the module doc): one
    output tile (so all columns lie in one cbuf block), no batch
    dimensions, and K long enough for every thread's share to be worth a
    packing pass."""
    blk = blocking(kern.acc_dtype)
    m, n = kern.shape[-2], kern.shape[-1]
    return len(kern.shape) == 2 and m <= blk.mr and n <= blk.nr and kern.k >= K_SPLIT_MIN_BLOCKS * blk.kc


def workspace_bytes(kern: Kernel) -> int:
    """Per-thread scratch bytes of a GEMM kernel (64-byte multiple)."""
    blk = blocking(kern.acc_dtype)
    nbytes = blk.scratch_elems(kern.shape[-2]) * kern.acc_dtype.itemsize
    return (nbytes + 63) // 64 * 64


# ---------------------------------------------------------------------------
# small IR helpers


def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _transpose8(b: ir.IRBuilder, rows: list) -> list:
    """Transpose 8 vectors of 8 elements (row i, element j -> result j,
    element i) in three rounds of two-input shuffles (pairs of elements,
    pairs of pairs, halves), the pattern x86 lowers to unpack/shuffle/
    lane-permute instructions."""

    def shuf(x, y, mask):
        return b.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))

    lo1, hi1 = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
    lo2, hi2 = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
    lo4, hi4 = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
    t = []
    for i in range(0, 8, 2):
        t += [shuf(rows[i], rows[i + 1], lo1), shuf(rows[i], rows[i + 1], hi1)]
    # t[2p]: elements 0,1,4,5 of rows 2p, 2p+1 interleaved; t[2p+1]: 2,3,6,7
    s = []
    for base in (0, 4):
        s += [
            shuf(t[base], t[base + 2], lo2),  # elements 0, 4
            shuf(t[base], t[base + 2], hi2),  # 1, 5
            shuf(t[base + 1], t[base + 3], lo2),  # 2, 6
            shuf(t[base + 1], t[base + 3], hi2),  # 3, 7
        ]
    out = [None] * 8
    for j in range(4):
        out[j] = shuf(s[j], s[4 + j], lo4)
        out[j + 4] = shuf(s[j], s[4 + j], hi4)
    return out


class _Loop:
    """`for (i = lo; i < hi; i += step)` as a context manager (`step` an
    int or a positive i64 value)."""

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
        step = _c(self.step) if isinstance(self.step, int) else self.step
        nxt = b.add(self.i, step, name=f"{self.name}.next", flags=("nsw",))
        self.i.add_incoming(nxt, b.block)
        b.branch(self.head)
        b.position_at_end(self.done)


def edge_rows(blk: Blocking) -> tuple[int, ...]:
    """Row counts of the narrower micro-kernels for a block's last, partial
    tile: its rows are rounded up to the next of these (or to MR), so 256
    rows on AVX-512 (18 x 14 + 4) compute 256 rows, not 266, and a batch of
    20 (14 + 6) computes 22, not 28. Fewer rows keep enough independent
    accumulators (2 x rows) to cover most of the FMA latency."""
    return tuple(r for r in (2, 4, 8) if r < blk.mr)


def _microkernel(module: ir.Module, elem: ir.Type, blk: Blocking, rows: int | None = None) -> ir.Function:
    """void uk(i64 kc, T* pa, T* pb, T* c, i64 ldc, T* out, i64 ldo, i1 accumulate):
    out[r, 0:NR] = (c[r, 0:NR] if accumulate else 0)
                   + sum_k pa[k*MR + r] * pb[k*NR + 0:NR] for r < rows
    (default MR; fewer for a block's edge tile, whose A panel is still
    packed MR wide). `out` is `c` itself (a tile of cbuf) or, in the last K
    block, the kernel's output. pb is vector aligned, c and out need not
    be. One function per element type and row count; the edge ones are
    not inlined (called once per strip, they would only grow the routine
    LLVM has to optimize)."""
    rows = blk.mr if rows is None else rows
    name = f"graphc_gemm_uk_{'f32' if elem == ir.FloatType() else 'f64'}"
    if rows != blk.mr:
        name += f"_r{rows}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    vt = ir.VectorType(elem, blk.vw)
    esize = 4 if elem == ir.FloatType() else 8
    align = blk.vw * esize
    ptr = elem.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, ptr, ptr, ptr, I64, ptr, I64, I1]), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    if rows != blk.mr:
        fn.attributes.add("noinline")
    kc, pa, pb, c, ldc, out, ldo, accumulate = fn.args
    for p in (pa, pb):
        p.add_attribute("noalias")
    suffix = f"v{blk.vw}{'f32' if elem == ir.FloatType() else 'f64'}"
    fma = module.globals.get(f"llvm.fma.{suffix}") or ir.Function(
        module, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.{suffix}"
    )
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    # The C tile (MR rows of the sum buffer, NC apart) is read and written
    # only after the K loop; start loading its lines now so that the misses
    # (the buffer block is larger than L1, often than L2) overlap the FMAs.
    prefetch = module.globals.get("llvm.prefetch.p0i8") or ir.Function(
        module,
        ir.FunctionType(ir.VoidType(), [I8.as_pointer(), ir.IntType(32), ir.IntType(32), ir.IntType(32)]),
        "llvm.prefetch.p0i8",
    )
    i32 = ir.IntType(32)
    for base, stride in ((c, ldc), (out, ldo)):
        for r in range(rows):
            crow = b.gep(base, [b.mul(_c(r), stride)], inbounds=True)
            # first and last element: the row may straddle a line boundary
            for at in (0, blk.nr - 1):
                addr = b.bitcast(b.gep(crow, [_c(at)], inbounds=True), I8.as_pointer())
                b.call(prefetch, [addr, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    entry = b.block
    loop = b.append_basic_block("k")
    done = b.append_basic_block("done")
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(I64, name="k")
    k.add_incoming(_c(0), entry)
    zero = ir.Constant(vt, None)
    accs = []
    for r in range(rows):
        row = []
        for v in range(blk.nv):
            phi = b.phi(vt, name=f"acc{r}_{v}")
            phi.add_incoming(zero, entry)
            row.append(phi)
        accs.append(row)
    bbase = b.gep(pb, [b.mul(k, _c(blk.nr))], inbounds=True)
    bvec = [
        b.load(b.bitcast(b.gep(bbase, [_c(v * blk.vw)], inbounds=True), vt.as_pointer()), align=align)
        for v in range(blk.nv)
    ]
    abase = b.gep(pa, [b.mul(k, _c(blk.mr))], inbounds=True)
    mask = ir.Constant(ir.VectorType(ir.IntType(32), blk.vw), [0] * blk.vw)
    new = []
    for r in range(rows):
        s = b.load(b.gep(abase, [_c(r)], inbounds=True))
        splat = b.shuffle_vector(
            b.insert_element(ir.Constant(vt, ir.Undefined), s, ir.Constant(ir.IntType(32), 0)),
            ir.Constant(vt, ir.Undefined),
            mask,
        )
        new.append([b.call(fma, [splat, bvec[v], accs[r][v]]) for v in range(blk.nv)])
    k1 = b.add(k, _c(1), flags=("nsw",))
    k.add_incoming(k1, loop)
    for r in range(rows):
        for v in range(blk.nv):
            accs[r][v].add_incoming(new[r][v], loop)
    b.cbranch(b.icmp_signed("<", k1, kc), loop, done)
    b.position_at_end(done)
    # One branch for the whole tile: the first K block stores, later ones add.
    with b.if_else(accumulate) as (add, store):
        for first_block, where in ((False, add), (True, store)):
            with where:
                for r in range(rows):
                    crow = b.gep(c, [b.mul(_c(r), ldc)], inbounds=True)
                    orow = b.gep(out, [b.mul(_c(r), ldo)], inbounds=True)
                    for v in range(blk.nv):
                        p = b.bitcast(b.gep(crow, [_c(v * blk.vw)], inbounds=True), vt.as_pointer())
                        q = b.bitcast(b.gep(orow, [_c(v * blk.vw)], inbounds=True), vt.as_pointer())
                        val = new[r][v] if first_block else b.fadd(b.load(p, align=esize), new[r][v])
                        b.store(val, q, align=esize)
    b.ret_void()
    return fn


# ---------------------------------------------------------------------------
# the generic routine (one per element type and module)


def _suffix(elem: ir.Type) -> str:
    return "f32" if elem == ir.FloatType() else "f64"


def _epilogue_type(elem: ir.Type) -> ir.FunctionType:
    """void epi(i8* ctx, T* crows, i64 ldc, i64 ic, i64 mc, i64 jc, i64 nc):
    the kernel's fused epilogue over rows [ic, ic+mc) x columns [jc, jc+nc),
    acc[m, n] = crows[(m - ic) * ldc + (n - jc)]."""
    return ir.FunctionType(ir.VoidType(), [I8.as_pointer(), elem.as_pointer(), I64, I64, I64, I64, I64])


def _noop_epilogue(module: ir.Module, elem: ir.Type) -> ir.Function:
    """An epilogue that does nothing: a K-split thread's partial sums stay
    in its cbuf for the reduction."""
    name = f"graphc_gemm_keep_{_suffix(elem)}"
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, _epilogue_type(elem), name)
        fn.linkage = "internal"
        ir.IRBuilder(fn.append_basic_block("entry")).ret_void()
    return fn


def gemm_symbol(elem: ir.Type) -> str:
    """Name of the GEMM routine for one element type. Program modules only
    declare it; it lives in its own module (`library_ir`), compiled and
    cached once per element type and code version, whose address the
    runtime registers with LLVM's symbol resolver before loading programs."""
    return f"graphc_gemm_{_suffix(elem)}"


def gemm_elem(suffix: str) -> ir.Type:
    return {"f32": ir.FloatType(), "f64": ir.DoubleType()}[suffix]


def generic_gemm(module: ir.Module, elem: ir.Type, blk: Blocking, define: bool = False) -> ir.Function:
    """The GEMM routine for one element type (every GEMM dot kernel calls
    it); declared external unless `define` (the library module):

        void gemm(T* A, i64 a_off, i64 a_rs, i64 a_cs,
                  T* B, i64 b_off, i64 b_rs, i64 b_cs,
                  i64 M, i64 N, i64 K, i64 m_lo, i64 m_hi, i64 n_lo, i64 n_hi,
                  T* scratch, epi* epilogue, i8* ctx, T* C, i64 ldc)

    computes A[M, K] x B[K, N] (element (r, c) of A at a_off + r*a_rs +
    c*a_cs, likewise B) for rows [m_lo, m_hi) and columns [n_lo, n_hi), and
    calls `epilogue(ctx, ...)` on each finished block of sums (see
    `_epilogue_type`). When C is not null the kernel's only store is the
    sum itself, at C[r*ldc + c]: full MR x NR tiles are then summed in C
    directly and the epilogue only sees the tiles at the block edges (no
    copy of the whole result through cbuf). Packing has specialised copies
    for unit strides."""
    name = gemm_symbol(elem)
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    ptr = elem.as_pointer()
    epi_ptr = _epilogue_type(elem).as_pointer()
    args = [ptr, I64, I64, I64, ptr, I64, I64, I64] + [I64] * 7 + [ptr, epi_ptr, I8.as_pointer(), ptr, I64]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), args), name)
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    fn.args[15].add_attribute("noalias")
    if not define:
        return fn
    names = [
        "A",
        "a_off",
        "a_rs",
        "a_cs",
        "B",
        "b_off",
        "b_rs",
        "b_cs",
        "M",
        "N",
        "K",
        "m_lo",
        "m_hi",
        "n_lo",
        "n_hi",
        "scratch",
        "epilogue",
        "ctx",
        "C",
        "ldc",
    ]
    for a, n in zip(fn.args, names):
        a.name = n
    _GenericBuilder(fn, elem, blk).emit()
    return fn


def library_ir(suffix: str, blk: Blocking | None = None) -> str:
    """LLVM IR of the module that defines the GEMM routine for one element
    type ("f32"/"f64"), with the host's blocking unless `blk` is given (the
    tests build other targets' blockings)."""
    from graphc.ir import dtypes as dt

    triple, layout = target.triple_and_layout()
    module = ir.Module(name=f"graphc_gemm_{suffix}")
    module.triple, module.data_layout = triple, layout
    dtype = {"f32": dt.float32, "f64": dt.float64}[suffix]
    generic_gemm(module, gemm_elem(suffix), blk or blocking(dtype), define=True)
    return str(module)


class _GenericBuilder:
    def __init__(self, fn: ir.Function, elem: ir.Type, blk: Blocking):
        self.fn, self.elem, self.blk = fn, elem, blk
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        (
            self.A,
            self.a_off,
            self.a_rs,
            self.a_cs,
            self.B,
            self.b_off,
            self.b_rs,
            self.b_cs,
            self.M,
            self.N,
            self.K,
            self.m_lo,
            self.m_hi,
            self.n_lo,
            self.n_hi,
            ws,
            self.epi,
            self.ctx,
            self.C,
            self.ldc,
        ) = fn.args
        b = self.b
        self.pa = ws
        self.pb = b.gep(ws, [_c(blk.mc * blk.kc_whole)], inbounds=True)
        self.cbuf = b.gep(ws, [_c(blk.cbuf_offset())], inbounds=True)
        self.uk = _microkernel(fn.module, elem, blk)

    def _balanced(self, extent, cap: int, unit: int):
        """The block step for `extent` elements in blocks of at most `cap`:
        as many blocks as `cap` needs, of equal size rounded up to `unit`
        (so 784 = 4 x 196 rather than 3 x 256 + 16: no short last block
        whose fixed costs are paid for little work). Never above `cap`
        (a multiple of `unit`), never below `unit`."""
        b = self.b
        ext = int_max(b, extent, _c(1))
        nblocks = b.sdiv(b.add(ext, _c(cap - 1)), _c(cap))
        per = b.sdiv(b.add(ext, b.sub(nblocks, _c(1))), nblocks)
        return b.mul(b.sdiv(b.add(per, _c(unit - 1)), _c(unit)), _c(unit))

    def emit(self) -> None:
        b, blk = self.b, self.blk
        kc_step = self._balanced(self.K, blk.kc, 8 if blk.kc % 8 == 0 else 1)
        kc_step = b.select(b.icmp_signed("<=", self.K, _c(blk.kc_whole)), self.K, kc_step)
        mc_step = self._balanced(b.sub(self.m_hi, self.m_lo), blk.mc, blk.mr)
        nc_step = self._balanced(b.sub(self.n_hi, self.n_lo), blk.nc, blk.nr)
        ldcb = b.add(nc_step, _c(blk.vw))  # blk.cbuf_ldc(nc_step)
        last_pc = b.mul(b.sdiv(b.sub(self.K, _c(1)), kc_step), kc_step)
        single = b.icmp_signed("==", last_pc, _c(0))
        direct = b.icmp_unsigned("!=", self.C, ir.Constant(self.C.type, None))
        with _Loop(b, self.n_lo, self.n_hi, nc_step, "jc") as jc:
            nc = int_min(b, nc_step, b.sub(self.n_hi, jc))
            with _Loop(b, _c(0), self.K, kc_step, "pc") as pc:
                kc = int_min(b, kc_step, b.sub(self.K, pc))
                # B is packed once per (jc, pc) for all of this thread's rows.
                # B lines are its columns: line stride b_cs, k stride b_rs.
                self._pack(self.B, self.b_off, self.b_cs, self.b_rs, blk.nr, jc, nc, self.N, pc, kc, self.pb, False)
                accumulate = b.icmp_signed(">", pc, _c(0))
                with _Loop(b, self.m_lo, self.m_hi, mc_step, "ic") as ic:
                    mc = int_min(b, mc_step, b.sub(self.m_hi, ic))
                    self._pack(self.A, self.a_off, self.a_rs, self.a_cs, blk.mr, ic, mc, self.M, pc, kc, self.pa, True)
                    crows = b.gep(self.cbuf, [b.mul(b.sub(ic, self.m_lo), ldcb)], inbounds=True)
                    last = b.icmp_signed("==", pc, last_pc)
                    with _Loop(b, _c(0), nc, blk.nr, "jr") as jr:
                        bp = b.gep(self.pb, [b.mul(jr, kc)], inbounds=True)
                        # With one K block a strip's sums are final as soon
                        # as its micro-kernels ran, so every strip reuses
                        # the first NR columns of cbuf: they stay in L1/L2
                        # instead of streaming MC x NC sums through memory.
                        strip = b.select(single, self.cbuf, b.gep(crows, [jr], inbounds=True))
                        # Rows of this strip whose tiles the last K block
                        # writes to C directly: all full MR-row tiles of a
                        # full-width strip when C is given, else none.
                        # (Earlier K blocks sum in cbuf, whose rows are LDC
                        # apart: C's rows may be a power of two apart and
                        # share L1 sets, costly to read back; measured at
                        # N=1024, 185 -> 160 GFLOP/s.)
                        full_width = b.icmp_signed("<=", b.add(jr, _c(blk.nr)), nc)
                        full_rows = b.mul(b.sdiv(mc, _c(blk.mr)), _c(blk.mr))
                        in_c = b.select(b.and_(direct, full_width), full_rows, _c(0))
                        c_strip = b.gep(self.C, [b.add(b.mul(ic, self.ldc), b.add(jc, jr))])
                        with _Loop(b, _c(0), full_rows, blk.mr, "ir") as ir_:
                            ap = b.gep(self.pa, [b.mul(ir_, kc)], inbounds=True)
                            cp = b.gep(strip, [b.mul(ir_, ldcb)], inbounds=True)
                            to_c = b.and_(last, b.icmp_signed("<", ir_, in_c))
                            op = b.select(to_c, b.gep(c_strip, [b.mul(ir_, self.ldc)]), cp)
                            ldo = b.select(to_c, self.ldc, ldcb)
                            b.call(self.uk, [kc, ap, bp, cp, ldcb, op, ldo, accumulate])
                        # The partial tile below them (never written to C
                        # directly): the narrowest micro-kernel that covers it.
                        with b.if_then(b.icmp_signed("<", full_rows, mc)):
                            ap = b.gep(self.pa, [b.mul(full_rows, kc)], inbounds=True)
                            cp = b.gep(strip, [b.mul(full_rows, ldcb)], inbounds=True)
                            self._edge_tile(b.sub(mc, full_rows), [kc, ap, bp, cp, ldcb, cp, ldcb, accumulate])
                        # After the last K block this strip's sums (MC x NR)
                        # are final: run the epilogue on it (the rows not
                        # already in C) while it is still in L1/L2, not on
                        # the whole MC x NC block (megabytes) once it has
                        # left the caches.
                        with b.if_then(b.and_(last, b.icmp_signed("<", in_c, mc))):
                            cols = int_min(b, _c(blk.nr), b.sub(nc, jr))
                            rest = b.gep(strip, [b.mul(in_c, ldcb)], inbounds=True)
                            b.call(
                                self.epi, [self.ctx, rest, ldcb, b.add(ic, in_c), b.sub(mc, in_c), b.add(jc, jr), cols]
                            )
        b.ret_void()

    def _edge_tile(self, rows, args, sizes: tuple[int, ...] | None = None) -> None:
        """Call the micro-kernel for a partial tile of `rows` (< MR) rows:
        the first of `sizes` (default `edge_rows`) not below it, else the
        full one."""
        b = self.b
        sizes = edge_rows(self.blk) if sizes is None else sizes
        if not sizes:
            b.call(self.uk, args)
            return
        with b.if_else(b.icmp_signed("<=", rows, _c(sizes[0]))) as (fits, wider):
            with fits:
                b.call(_microkernel(self.fn.module, self.elem, self.blk, sizes[0]), args)
            with wider:
                self._edge_tile(rows, args, sizes[1:])

    def _pack(self, src, off, ls, ks, panel: int, outer0, outer_n, outer_ext, k0, kc, dst, a_side: bool) -> None:
        """Pack lines [outer0, outer0+outer_n) x k [k0, k0+kc) of `src`
        (element (line, k) at off + line*ls + k*ks) into panels of `panel`
        lines: dst[p][k][i] = src(outer0 + p*panel + i, k0 + k), zero past
        `outer_ext` (the matrix edge). Unit line or k strides get their own
        copy of the loops (contiguous reads vectorize)."""
        b = self.b
        unit_k = b.icmp_signed("==", ks, _c(1))
        unit_l = b.icmp_signed("==", ls, _c(1))
        with b.if_else(unit_k) as (k1, other):
            with k1:
                self._pack_strided(src, off, ls, 1, panel, outer0, outer_n, outer_ext, k0, kc, dst, a_side)
            with other:
                with b.if_else(unit_l) as (l1, general):
                    with l1:
                        self._pack_strided(src, off, 1, ks, panel, outer0, outer_n, outer_ext, k0, kc, dst, a_side)
                    with general:
                        self._pack_strided(src, off, ls, ks, panel, outer0, outer_n, outer_ext, k0, kc, dst, a_side)

    def _pack_strided(self, src, off, ls, ks, panel, outer0, outer_n, outer_ext, k0, kc, dst, a_side) -> None:
        b = self.b
        zero = ir.Constant(self.elem, 0.0)

        def scaled(v, s):
            return v if isinstance(s, int) and s == 1 else b.mul(v, s)

        def read(line, kk):
            idx = b.add(off, b.add(scaled(line, ls), scaled(kk, ks)))
            return b.load(b.gep(src, [idx], inbounds=True))

        p_from = _c(0)
        if isinstance(ls, int) and ls == 1:
            # Lines contiguous, k strided (row-major B, a transposed A):
            # k outer, so each source row is read once, front to back,
            # across all full panels (a stream the hardware prefetches),
            # rather than panel by panel, where every k step touches a new
            # line a row stride away.
            lines = int_max(b, int_min(b, outer_n, b.sub(outer_ext, outer0)), _c(0))
            p_from = b.mul(b.sdiv(lines, _c(panel)), _c(panel))
            with _Loop(b, _c(0), kc, 1, "pk") as kk:
                with _Loop(b, _c(0), p_from, panel, "pr") as p0:
                    first = b.add(outer0, p0)
                    out = b.gep(dst, [b.add(b.mul(p0, kc), b.mul(kk, _c(panel)))], inbounds=True)
                    for i in range(panel):
                        b.store(read(b.add(first, _c(i)), b.add(k0, kk)), b.gep(out, [_c(i)], inbounds=True))
        with _Loop(b, p_from, outer_n, panel, "pp") as p0:
            first = b.add(outer0, p0)
            out = b.gep(dst, [b.mul(p0, kc)], inbounds=True)  # panel start: p0/panel * kc * panel
            full = b.icmp_signed("<=", b.add(first, _c(panel)), outer_ext)
            with b.if_else(full) as (then, otherwise):
                with then:
                    # Panels of at least 8 lines (B's NR, AVX-512's MR =
                    # 14) are transposed in registers. A scalar copy of a
                    # row-major A panel is what LLVM vectorizes with
                    # scatters on AVX-512: half the time of a tall-skinny
                    # product went there. AVX2's MR = 6 stays scalar
                    # (partial groups measured no faster).
                    if isinstance(ks, int) and ks == 1 and panel >= 8:
                        kmain = self._pack_panel_transposed(src, off, ls, out, first, panel, k0, kc)
                        self._pack_panel(read, out, first, panel, k0, kc, a_side, None, zero, kmain)
                    else:
                        self._pack_panel(read, out, first, panel, k0, kc, a_side, None, zero)
                with otherwise:
                    valid = b.sub(outer_ext, first)
                    kmain = _c(0)
                    if isinstance(ks, int) and ks == 1 and panel >= 8:
                        # A partial panel along k (a transposed im2col's
                        # 25 columns): lines past the edge read the last
                        # line, then are zeroed, so the transposes stay.
                        last = b.sub(outer_ext, _c(1))
                        kmain = self._pack_panel_transposed(src, off, ls, out, first, panel, k0, kc, last)
                        with _Loop(b, _c(0), kmain, 1, "pz") as kk:
                            with _Loop(b, int_max(b, valid, _c(0)), _c(panel), 1, "pzi") as i:
                                b.store(zero, b.gep(out, [b.add(b.mul(kk, _c(panel)), i)], inbounds=True))
                    self._pack_panel(read, out, first, panel, k0, kc, False, valid, zero, kmain)

    def _pack_panel_transposed(self, src, off, ls, out, first, panel, k0, kc, last=None):
        """A full panel whose lines run along k (row-major A, a transposed
        B such as a linear layer's weight): blocks of 8 k per line are one
        vector load each, 8 lines x 8 k are transposed in registers
        (`_transpose8`) and stored as 8 runs of the panel's lines, instead
        of one scalar load and store per element. A panel that is not a
        multiple of 8 lines (MR = 14) ends with a group overlapping the one
        before it (lines 6..13): those lines are written twice with the
        same values, and every store is a full vector. `last`: the matrix's
        last line, which lines past it read instead (a partial panel).
        Returns where the scalar copy takes over (kc rounded down to 8)."""
        b, elem = self.b, self.elem
        es = 4 if elem == ir.FloatType() else 8
        vt = ir.VectorType(elem, 8)
        kmain = b.mul(b.sdiv(kc, _c(8)), _c(8))
        groups = list(range(0, panel - 7, 8))
        if panel % 8:
            groups.append(panel - 8)
        with _Loop(b, _c(0), kmain, 8, "pt") as kk:
            for g0 in groups:
                rows = []
                for i in range(8):
                    line = b.add(first, _c(g0 + i))
                    if last is not None:
                        line = int_min(b, line, last)
                    idx = b.add(off, b.add(b.mul(line, ls), b.add(k0, kk)))
                    ptr = b.bitcast(b.gep(src, [idx], inbounds=True), vt.as_pointer())
                    rows.append(b.load(ptr, align=es))
                cols = _transpose8(b, rows)
                for k in range(8):
                    at = b.add(b.mul(b.add(kk, _c(k)), _c(panel)), _c(g0))
                    b.store(cols[k], b.bitcast(b.gep(out, [at], inbounds=True), vt.as_pointer()), align=es)
        return kmain

    def _pack_panel(self, read, out, first, panel, k0, kc, unroll, valid, zero, k_from=None) -> None:
        """One panel (k from `k_from`, default 0); `valid` (lines inside the
        matrix) is None for full panels."""
        b = self.b
        k_from = _c(0) if k_from is None else k_from

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
            with _Loop(b, k_from, kc, 1, "pk") as kk:
                for i in range(panel):
                    one(_c(i), kk)
        else:
            with _Loop(b, k_from, kc, 1, "pk") as kk:
                with _Loop(b, _c(0), _c(panel), 1, "pi") as i:
                    one(i, kk)


# ---------------------------------------------------------------------------
# the kernel body: thread split, batch loops, a call of the generic routine
# and the kernel's own epilogue function


class GemmEmitter:
    """Emits the body of a GEMM dot kernel into a KernelBuilder `kb` whose
    function takes (..., tid, nthreads, error, workspace, barrier,
    ws_stride): `workspace` is this thread's scratch, thread u's lies
    (u - tid) * ws_stride bytes from it."""

    def __init__(self, kb, tid, nthreads, workspace, barrier, ws_stride):
        self.kb, self.b = kb, kb.b
        self.kern = kb.kern
        self.tid, self.nthreads, self.ws = tid, nthreads, workspace
        self.barrier, self.ws_stride = barrier, ws_stride
        self.elem = reg_type(self.kern.acc_dtype)
        self.blk = blocking(self.kern.acc_dtype)

    def emit(self) -> None:
        k, b, blk = self.kern, self.b, self.blk
        m_ext, n_ext = k.shape[-2], k.shape[-1]
        ptr = self.elem.as_pointer()
        gen = generic_gemm(b.module, self.elem, blk)
        # The pointers the epilogue needs, distinct ones only (buffers in one
        # storage share a pointer), then the error flag and batch indices.
        self.uniq = []
        for n in self.kb.names:
            p = self.kb.buffers[n]
            if all(p is not q for q in self.uniq):
                self.uniq.append(p)
        batch = k.loop_vars()[:-2]
        nslots = len(self.uniq) + 1 + len(batch)
        with b.goto_entry_block():
            ctx = b.alloca(ir.ArrayType(I64, nslots), name="gemm.ctx")
        slot = lambda i: b.gep(ctx, [_c(0), _c(i)], inbounds=True)  # noqa: E731
        for i, p in enumerate(self.uniq + [self.kb.err]):
            b.store(b.ptrtoint(p, I64), slot(i))
        epi = self._epilogue_fn(len(batch))
        m_lo, m_hi, n_lo, n_hi = self._thread_split(m_ext, n_ext)
        env: dict = {}
        ws = b.bitcast(self.ws, ptr)
        ctx8 = b.bitcast(ctx, I8.as_pointer())

        direct = self._direct_output()

        def call(k_lo, k_len, rows, cols, epilogue, to_c=True):
            """One call of the routine over K [k_lo, k_lo + k_len); the sums
            go straight to the output when the kernel allows it and `to_c`."""
            for d, (name, _) in enumerate(batch):
                b.store(env[name], slot(len(self.uniq) + 1 + d))
            a = b.bitcast(self.kb.buffers[k.a.buffer], ptr)
            bb = b.bitcast(self.kb.buffers[k.b.buffer], ptr)
            a_base = b.add(self._operand_base(k.a, env), b.mul(k_lo, _c(k.a.col_stride)))
            b_base = b.add(self._operand_base(k.b, env), b.mul(k_lo, _c(k.b.row_stride)))
            c, ldc = ir.Constant(ptr, None), _c(0)
            if direct is not None and to_c:
                buf, ldc_out, coefs, offset = direct
                at = _c(offset)
                for name, _ in batch:
                    at = b.add(at, b.mul(env[name], _c(coefs.get(name, 0))))
                c, ldc = b.gep(b.bitcast(self.kb.buffers[buf], ptr), [at]), _c(ldc_out)
            b.call(
                gen,
                [a, a_base, _c(k.a.row_stride), _c(k.a.col_stride)]
                + [bb, b_base, _c(k.b.row_stride), _c(k.b.col_stride)]
                + [_c(m_ext), _c(n_ext), k_len, *rows, *cols, ws, epilogue, ctx8, c, ldc],
            )

        def whole():
            call(_c(0), _c(k.k), (m_lo, m_hi), (n_lo, n_hi), epi)

        if not splits_k(k):
            if batch and _small_items(k, blk):
                items = math.prod(n for _, n in batch)
                # Enough items for every thread: each runs whole ones.
                enough = b.icmp_signed(">=", _c(items), b.mul(self.nthreads, _c(BATCH_SPLIT_ITEMS)))
                with b.if_else(enough) as (by_items, by_tiles):
                    with by_items:
                        self._batch_share(
                            batch, env, lambda: call(_c(0), _c(k.k), (_c(0), _c(m_ext)), (_c(0), _c(n_ext)), epi)
                        )
                    with by_tiles:
                        self._batch_loops(batch, env, whole)
            else:
                self._batch_loops(batch, env, whole)
            return
        with b.if_else(b.icmp_signed(">", self.nthreads, _c(1))) as (split, alone):
            with split:
                self._split_k(call, epi, ctx8, m_ext, n_ext)
            with alone:
                whole()

    def _split_k(self, call, epi, ctx8, m_ext: int, n_ext: int) -> None:
        """This thread's share of K into its own cbuf (no epilogue), the
        barrier, then its share of the rows: the sum of every thread's cbuf
        (in thread order), written into thread 0's cbuf, and the epilogue."""
        b, blk, elem = self.b, self.blk, self.elem
        tid, nthreads = self.tid, self.nthreads
        k_lo = b.sdiv(b.mul(_c(self.kern.k), tid), nthreads)
        k_hi = b.sdiv(b.mul(_c(self.kern.k), b.add(tid, _c(1))), nthreads)
        call(k_lo, b.sub(k_hi, k_lo), (_c(0), _c(m_ext)), (_c(0), _c(n_ext)), _noop_epilogue(b.module, elem), False)
        b.call(barrier_fn(b.module), [self.barrier, nthreads])
        cbuf_at = blk.cbuf_offset()
        # The routine's column block: all n_ext <= NR columns, one NR block.
        ldc = blk.cbuf_ldc(blk.nr)

        def cbuf(u):
            base = b.gep(self.ws, [b.mul(b.sub(u, tid), self.ws_stride)])
            return b.gep(b.bitcast(base, elem.as_pointer()), [_c(cbuf_at)], inbounds=True)

        r_lo = b.sdiv(b.mul(_c(m_ext), tid), nthreads)
        r_hi = b.sdiv(b.mul(_c(m_ext), b.add(tid, _c(1))), nthreads)
        first = cbuf(_c(0))
        with b.goto_entry_block():
            acc = b.alloca(elem, name="ksum")
        with _Loop(b, r_lo, r_hi, 1, "kr") as r:
            with _Loop(b, _c(0), _c(n_ext), 1, "kc") as c:
                at = b.add(b.mul(r, _c(ldc)), c)
                dst = b.gep(first, [at], inbounds=True)
                b.store(b.load(dst), acc)
                with _Loop(b, _c(1), nthreads, 1, "ku") as u:
                    b.store(b.fadd(b.load(acc), b.load(b.gep(cbuf(u), [at], inbounds=True))), acc)
                b.store(b.load(acc), dst)
        with b.if_then(b.icmp_signed("<", r_lo, r_hi)):
            crows = b.gep(first, [b.mul(r_lo, _c(ldc))], inbounds=True)
            b.call(epi, [ctx8, crows, _c(ldc), r_lo, b.sub(r_hi, r_lo), _c(0), _c(n_ext)])

    def _direct_output(self):
        """(buffer, row stride, index coefficients, offset) when the
        kernel's only store writes the sum unchanged, in the accumulator's
        type, at a row-major place (unit column stride, rows no closer than
        N, no index check) of a buffer neither operand reads: the routine
        can then sum full tiles in that buffer. None otherwise."""
        k = self.kern
        if len(k.stores) != 1:
            return None
        s = k.stores[0]
        if s.value.op is not KOp.ACC or self.kb.dtypes[s.buffer] != k.acc_dtype:
            return None
        form = affine(s.index)
        if form is None:
            return None
        coefs, offset = form
        names = {name for name, _ in k.loop_vars()}
        m_ext, n_ext = k.shape[-2], k.shape[-1]
        ldc = coefs.get("m", 0)
        if set(coefs) - names or coefs.get("n") != 1 or (ldc < n_ext and m_ext > 1) or offset < 0:
            return None
        out = self.kb.buffers[s.buffer]
        if any(out is self.kb.buffers[op.buffer] for op in (k.a, k.b)):
            return None
        return s.buffer, max(ldc, n_ext), coefs, offset

    def _thread_split(self, m_ext: int, n_ext: int):
        """This thread's rows and columns: the rows (in MR steps) or the
        columns (in NR steps), whichever costs the busiest thread less. Per
        k step a micro-tile costs MR cycles (2 MR FMAs on two ports) and
        packing an element about half a cycle; every thread of a row split
        packs all of B (N elements per k) and its rows of A, every thread of
        a column split all of A (M) and its columns of B. (64 rows x 128
        columns on 2 threads: 4 of 8 column tiles beat 6 of 11 row tiles;
        an RNN step's 20 x 200 @ 200 x 800: 13 of 25 column tiles beat 1
        of 2 row tiles, whose threads each packed all 160 000 elements of
        B.) On a tie rows when B is the smaller operand."""
        b, blk, nt = self.b, self.blk, self.nthreads
        tm, tn = _c(-(-m_ext // blk.mr)), _c(-(-n_ext // blk.nr))

        def ceil_div(x, y):
            return b.sdiv(b.add(x, b.sub(y, _c(1))), y)

        # in half cycles per k step
        rows_t, cols_t = ceil_div(tm, nt), ceil_div(tn, nt)
        cost_rows = b.add(b.mul(b.mul(rows_t, tn), _c(2 * blk.mr)), b.add(_c(n_ext), b.mul(rows_t, _c(blk.mr))))
        cost_cols = b.add(b.mul(b.mul(tm, cols_t), _c(2 * blk.mr)), b.add(_c(m_ext), b.mul(cols_t, _c(blk.nr))))
        tie_rows = ir.Constant(I1, 1 if n_ext <= m_ext else 0)
        rows = b.or_(
            b.icmp_signed("<", cost_rows, cost_cols), b.and_(b.icmp_signed("==", cost_rows, cost_cols), tie_rows)
        )
        r_lo, r_hi = self._share(m_ext, blk.mr)
        c_lo, c_hi = self._share(n_ext, blk.nr)
        return (
            b.select(rows, r_lo, _c(0)),
            b.select(rows, r_hi, _c(m_ext)),
            b.select(rows, _c(0), c_lo),
            b.select(rows, _c(n_ext), c_hi),
        )

    def _share(self, extent: int, step: int):
        b = self.b
        tiles = _c((extent + step - 1) // step)
        lo = b.mul(b.sdiv(b.mul(tiles, self.tid), self.nthreads), _c(step))
        hi = b.mul(b.sdiv(b.mul(tiles, b.add(self.tid, _c(1))), self.nthreads), _c(step))
        return int_min(b, lo, _c(extent)), int_min(b, hi, _c(extent))

    def _batch_loops(self, dims, env, body) -> None:
        if not dims:
            body()
            return
        (name, extent), rest = dims[0], dims[1:]
        with _Loop(self.b, _c(0), _c(extent), 1, name) as i:
            env[name] = i
            self._batch_loops(rest, env, body)

    def _batch_share(self, dims, env, body) -> None:
        """This thread's share of the batch items (all batch dims as one
        range, split evenly), each item whole."""
        b = self.b
        items = _c(math.prod(n for _, n in dims))
        lo = b.sdiv(b.mul(items, self.tid), self.nthreads)
        hi = b.sdiv(b.mul(items, b.add(self.tid, _c(1))), self.nthreads)
        with _Loop(b, lo, hi, 1, "item") as f:
            inner = 1
            for name, extent in reversed(dims):
                env[name] = b.srem(b.sdiv(f, _c(inner)), _c(extent))
                inner *= extent
            body()

    def _operand_base(self, op, env):
        """Flat index of element (b.., 0, 0) of an operand view."""
        b = self.b
        idx = _c(op.offset)
        for d, s in enumerate(op.batch_strides):
            if s:
                idx = b.add(idx, b.mul(env[f"b{d}"], _c(s)))
        return idx

    def _epilogue_fn(self, nbatch: int) -> ir.Function:
        """`kN_epi` (the callback the generic routine calls): unpacks the
        context and calls `kN_epi_body`, an always-inline function whose
        buffer pointers keep the kernel's noalias attributes."""
        kb, module, elem = self.kb, self.b.module, self.elem
        fn_args = list(kb.fn.args)
        body_ty = ir.FunctionType(
            ir.VoidType(), [p.type for p in self.uniq] + [kb.err.type, elem.as_pointer()] + [I64] * (5 + nbatch)
        )
        body = ir.Function(module, body_ty, f"{kb.fn.name}_epi_body")
        body.linkage = "internal"
        body.attributes.add("nounwind")
        body.attributes.add("alwaysinline")
        for a, p in zip(body.args, self.uniq):
            if p in fn_args and "noalias" in p.attributes:
                a.add_attribute("noalias")
        nu = len(self.uniq)
        # Emit the kernel's stores into `body` with the builder's state swapped.
        saved = kb.b, kb.buffers, kb.err
        bb = ir.IRBuilder(body.append_basic_block("entry"))
        kb.b, kb.err = bb, body.args[nu]
        kb.buffers = {n: body.args[next(i for i, p in enumerate(self.uniq) if p is saved[1][n])] for n in saved[1]}
        crows, ldc, ic, mc, jc, nc = body.args[nu + 1 : nu + 7]
        env = {name: body.args[nu + 7 + d] for d, (name, _) in enumerate(self.kern.loop_vars()[:-2])}
        try:
            with _Loop(bb, _c(0), mc, 1, "em") as i:
                env["m"] = bb.add(ic, i)
                row = bb.gep(crows, [bb.mul(i, ldc)], inbounds=True)
                with _Loop(bb, _c(0), nc, 1, "en") as j:
                    env["n"] = bb.add(jc, j)
                    acc = bb.load(bb.gep(row, [j], inbounds=True))
                    kb._stores(self.kern.stores, env, acc)
            bb.ret_void()
        finally:
            kb.b, kb.buffers, kb.err = saved
        # The callback: i8* ctx -> the body's arguments.
        epi = ir.Function(module, _epilogue_type(elem), f"{kb.fn.name}_epi")
        epi.linkage = "internal"
        epi.attributes.add("nounwind")
        eb = ir.IRBuilder(epi.append_basic_block("entry"))
        slots = eb.bitcast(epi.args[0], I64.as_pointer())
        vals = [eb.load(eb.gep(slots, [_c(i)], inbounds=True)) for i in range(nu + 1 + nbatch)]
        ptrs = [eb.inttoptr(v, t) for v, t in zip(vals[: nu + 1], body_ty.args[: nu + 1])]
        eb.call(body, ptrs + list(epi.args[1:]) + vals[nu + 1 :])
        eb.ret_void()
        return epi
