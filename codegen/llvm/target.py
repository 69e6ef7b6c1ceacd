"""The host target: LLVM initialisation, the target machine, the optimisation
pipeline (LLVM's new pass manager at OPT_LEVEL) and object/assembly emission."""

from __future__ import annotations

import functools

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
    for f in ("exp", "log", "sin", "cos", "tanh", "erf", "pow", "floor", "sqrt", "exp2", "log2", "fmod")
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


def vector_bits() -> int:
    """Widest SIMD register the generated micro-kernels use."""
    features = host()[1]
    if "+avx512f" in features:
        return 512
    if "+avx2" in features or "+avx" in features:
        return 256
    return 128


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
        f"features={features};opt={OPT_LEVEL},{GEMM_OPT_LEVEL}"
    )


def optimize(ir_text: str, level: int | None = None):
    """Parse, verify and optimise LLVM IR text (at `level`, default
    OPT_LEVEL); returns the ModuleRef."""
    _init()
    tm = target_machine()
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
