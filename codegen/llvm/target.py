"""The host target: LLVM initialisation, the target machine, the optimisation
pipeline (LLVM's new pass manager at OPT_LEVEL) and object/assembly emission."""

from __future__ import annotations

import functools
import os

import llvmlite
import llvmlite.binding as llvm

# -O2 for program modules, by measurement (2 cores, the GEMM routine in its
# own module): LLVM time for the MLP Adam step 0.23 s at -O2 vs 0.26 s at
# -O3; step times equal within noise (MLP batch 1/64/512: 167 us / 459 us /
# 1.61 ms at -O2 vs 170 us / 471 us / 1.67 ms at -O3; MNIST CNN step 3.3-3.8
# ms both). Some small dot sums are ordered differently than at -O3 (1 ulp);
# tests compare eager and compiled results to rounding tolerance.
OPT_LEVEL = 2
# The GEMM library module (gemm.library_ir; compiled once per process or
# cache): its micro-kernel is vectorized by hand, and -O3 doubled its object
# size and its compile time (0.57 s vs 0.29 s) for the same SGEMM speed
# (bench/bench_sgemm.py, n = 64..1024, 1 and 2 threads: within +-3%).
GEMM_OPT_LEVEL = 2


@functools.cache
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    _add_libc_symbols()


# Functions generated code may call: libm for the math intrinsics LLVM lowers
# to library calls, libc for memset/memcpy (and clock_gettime, for profiled
# builds: codegen/llvm/timing.py).
_SYMBOLS = [
    f + s
    for f in ("exp", "log", "sin", "cos", "tanh", "erf", "pow", "floor", "sqrt", "exp2", "log2", "fmod", "atan2")
    for s in ("", "f")
]


def _add_libc_symbols() -> None:
    import ctypes
    import ctypes.util

    libs = [ctypes.CDLL(None)]
    name = ctypes.util.find_library("m")
    if name:
        libs.append(ctypes.CDLL(name))
    for sym in _SYMBOLS + ["memset", "memcpy", "memmove", "sched_yield", "clock_gettime"]:
        for lib in libs:
            try:
                fn = getattr(lib, sym)
            except AttributeError:
                continue
            llvm.add_symbol(sym, ctypes.cast(fn, ctypes.c_void_p).value)
            break


@functools.cache
def host() -> tuple[str, str]:
    """(cpu name, feature string) of this machine."""
    _init()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


# Data cache sizes (bytes) assumed where the OS does not report them: small
# enough for any x86-64 or AArch64 core of the last decade.
DEFAULT_CACHES = (32 * 1024, 256 * 1024, 2 * 1024 * 1024)


def _read_sys_caches() -> dict[int, int]:
    """{level: bytes} of cpu0's data/unified caches from sysfs (Linux)."""
    found: dict[int, int] = {}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return found
    for name in entries:
        if not name.startswith("index"):
            continue
        try:
            with open(f"{root}/{name}/level") as f:
                level = int(f.read())
            with open(f"{root}/{name}/type") as f:
                kind = f.read().strip()
            with open(f"{root}/{name}/size") as f:
                text = f.read().strip().upper()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
        try:
            found[level] = int(text.rstrip("KM")) * scale
        except ValueError:
            continue
    return found


@functools.cache
def cache_sizes() -> tuple[int, int, int]:
    """(L1 data, L2, L3) bytes of this machine, for the GEMM blocking: sysfs,
    else sysconf, else DEFAULT_CACHES (per level)."""
    found = _read_sys_caches()
    names = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE", 3: "SC_LEVEL3_CACHE_SIZE"}
    sizes = []
    for level, default in zip((1, 2, 3), DEFAULT_CACHES):
        size = found.get(level, 0)
        if size <= 0:
            try:
                size = int(os.sysconf(names[level]))
            except (ValueError, OSError, AttributeError):
                size = 0
        sizes.append(size if size > 0 else default)
    return sizes[0], sizes[1], sizes[2]


def vector_bits(features: str | None = None) -> int:
    """Widest SIMD register the generated micro-kernels use (on this host,
    or for a feature string)."""
    features = host()[1] if features is None else features
    if "+avx512f" in features:
        return 512
    if "+avx2" in features or "+avx" in features:
        return 256
    return 128


# Kernels whose innermost loop runs at least this many iterations (and that
# do at least WIDE_MIN_WORK element updates) ask for the widest vectors.
WIDE_MIN_INNER = 64
WIDE_MIN_WORK = 4096


def wide_vector_attribute(features: str | None = None) -> str | None:
    """The function attribute that lets LLVM's vectorizers use 512-bit
    vectors on an AVX-512 host, or None elsewhere. LLVM prefers 256-bit
    vectors on AVX-512 CPUs (`prefer-256-bit` tuning, for the clock
    throttling of early AVX-512 parts) and then vectorizes a reduction with
    a double accumulator 4 wide; measured on a Sapphire Rapids-class Xeon,
    512-bit kernels made the LSTM LM step 10% faster (its log-softmax over
    10000 classes), the GPT and ResNet-18 steps 1-4% faster. Tiny kernels
    keep the default: a 20-element layer ran 15% slower 16 wide."""
    features = host()[1] if features is None else features
    return '"prefer-vector-width"="512"' if "+avx512f" in features else None


@functools.cache
def target_machine():
    """The shared machine for optimising and emitting code."""
    return new_target_machine()


def new_target_machine():
    """A fresh target machine; an execution engine takes ownership of (and
    frees) the one it is given, so each engine needs its own."""
    _init()
    cpu, features = host()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=cpu, features=features, opt=3, codemodel="jitdefault", jit=True)


def fingerprint() -> str:
    """Everything about the host target that changes the machine code (the
    code generator's own source is hashed into every cache key by
    runtime/cache.py)."""
    cpu, features = host()
    return (
        f"llvmlite={llvmlite.__version__};llvm={llvm.llvm_version_info};cpu={cpu};"
        f"features={features};opt={OPT_LEVEL},{GEMM_OPT_LEVEL};caches={cache_sizes()};cores={os.cpu_count()}"
    )


def machine_for(cpu: str, features: str, triple: str | None = None):
    """A target machine for another CPU (name, LLVM feature string such as
    "+avx512f,+fma"): code for it can be emitted here but not run."""
    _init()
    target = llvm.Target.from_triple(triple or llvm.get_process_triple())
    return target.create_target_machine(cpu=cpu, features=features, opt=3)


def optimize(ir_text: str, level: int | None = None, tm=None):
    """Parse, verify and optimise LLVM IR text (at `level`, default
    OPT_LEVEL; for target machine `tm`, default the host's); returns the
    ModuleRef."""
    _init()
    tm = tm or target_machine()
    mod = llvm.parse_assembly(ir_text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL if level is None else level)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(mod, pb)
    return mod


def emit_object(mod) -> bytes:
    return target_machine().emit_object(mod)


def emit_assembly(mod) -> str:
    return target_machine().emit_assembly(mod)


@functools.cache
def triple_and_layout() -> tuple[str, str]:
    """The host triple and data layout. Cached: IR generation asks for them
    while another thread may hold llvmlite's global lock for a whole LLVM
    compile (the GEMM routine's), and must not wait for it."""
    tm = target_machine()
    return tm.triple, str(tm.target_data)
