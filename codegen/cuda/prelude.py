"""The fixed head of every generated CUDA module: device helpers that give
the kernel form's scalar ops graphc's exact semantics (graphc/ir/rules.py).

Kept as plain CUDA C so a reader of a generated module sees them inline.
"""

PRELUDE = r"""#include <cuda_fp16.h>

// ---- graphc device helpers (semantics of graphc/ir/rules.py) ----------------

// Helpers marked GC_HD also compile for the host, where tests check them
// against the numpy reference without a GPU.
#define GC_HD __host__ __device__ __forceinline__

// Exact special float constants (inf, NaN) from their bit patterns.
GC_HD float gc_f32_bits(unsigned int bits) { union { unsigned int u; float f; } v; v.u = bits; return v.f; }
GC_HD double gc_f64_bits(unsigned long long bits) {
  union { unsigned long long u; double d; } v; v.u = bits; return v.d;
}

// float16 values live in float registers, rounded to half after every op.
GC_HD float gc_round_h(float x) { return __half2float(__float2half_rn(x)); }

// numpy maximum/minimum: NaN propagates from either side.
template <typename T> GC_HD T gc_max(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T> GC_HD T gc_min(T a, T b) { return (a < b || a != a) ? a : b; }

// Integer division truncates toward zero; MIN / -1 wraps (computed as an
// unsigned negation) instead of trapping. A zero divisor gives 0 here; the
// kernels pass every divisor through gc_check_div first, which reports it.
template <typename T, typename U> GC_HD T gc_idiv(T a, T b) {
  return b == 0 ? (T)0 : (b == (T)-1 ? (T)((U)0 - (U)a) : (T)(a / b));
}

// Floor division and modulo of index arithmetic (Python semantics).
GC_HD long long gc_floordiv(long long a, long long d) {
  long long q = a / d;
  return (a % d != 0 && ((a < 0) != (d < 0))) ? q - 1 : q;
}
GC_HD long long gc_mod(long long a, long long d) {
  long long r = a % d;
  return (r != 0 && ((r < 0) != (d < 0))) ? r + d : r;
}

// Out-of-range GATHER / SCATTER_ADD index: record the first failure
// (err[0] = code of the check, err[1] = the index, err[2] = the size) and
// continue with index 0 so nothing reads or writes out of bounds.
__device__ __forceinline__ long long gc_check(long long i, long long size, unsigned long long* err,
                                              unsigned long long code) {
  if (i >= 0 && i < size) return i;
  if (atomicCAS(err, 0ULL, code) == 0ULL) {
    err[1] = (unsigned long long)i;
    err[2] = (unsigned long long)size;
  }
  return 0;
}

// Integer division by zero: record it like an index error, with
// err[2] = ~0 (no dimension has that size) marking a division, and divide
// by 1 instead so the hardware never divides by zero.
template <typename T>
__device__ __forceinline__ T gc_check_div(T d, unsigned long long* err, unsigned long long code) {
  if (d != 0) return d;
  if (atomicCAS(err, 0ULL, code) == 0ULL) {
    err[1] = 0ULL;
    err[2] = ~0ULL;
  }
  return (T)1;
}

// RANDOM: element `counter` of a RANDOM op with key `key` is
// splitmix64(key * 0x9E3779B97F4A7C15 + counter) >> 40, scaled by 2**-24.
GC_HD float gc_random(long long key, long long counter) {
  unsigned long long z = (unsigned long long)key * 0x9E3779B97F4A7C15ULL + (unsigned long long)counter;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z = z ^ (z >> 31);
  return (float)(unsigned int)(z >> 40) * 5.9604644775390625e-08f;
}

// ARGMAX order: larger value wins, NaN is the largest, ties go to the
// smaller index. Returns true when (v2, i2) beats (v1, i1).
template <typename T> GC_HD bool gc_argmax_better(T v1, long long i1, T v2, long long i2) {
  bool n1 = v1 != v1, n2 = v2 != v2;
  if (n1 || n2) return n2 && (!n1 || i2 < i1);
  return v2 > v1 || (v2 == v1 && i2 < i1);
}

// Atomic adds for SCATTER_ADD. float/double/half/int/int64 use the hardware
// atomics; 1- and 2-byte integers and bool use a compare-and-swap loop on
// the aligned 32-bit word that holds them (allocations are padded to 8 bytes).
__device__ __forceinline__ void gc_atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void gc_atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void gc_atomic_add(__half* p, float v) { atomicAdd(p, __float2half_rn(v)); }
__device__ __forceinline__ void gc_atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void gc_atomic_add(long long* p, long long v) {
  atomicAdd((unsigned long long*)p, (unsigned long long)v);
}
template <typename T> __device__ __forceinline__ void gc_atomic_add_narrow(T* p, T v, bool logical) {
  size_t addr = (size_t)p;
  unsigned int* word = (unsigned int*)(addr & ~(size_t)3);
  unsigned int shift = (unsigned int)(addr & 3) * 8;
  unsigned int mask = ((1u << (8 * sizeof(T))) - 1u) << shift;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    T cur = (T)((assumed & mask) >> shift);
    T next = logical ? (T)(cur || v) : (T)(cur + v);
    unsigned int repl = (assumed & ~mask) | (((unsigned int)(unsigned short)next << shift) & mask);
    old = atomicCAS(word, assumed, repl);
  } while (old != assumed);
}
__device__ __forceinline__ void gc_atomic_add(bool* p, bool v) { gc_atomic_add_narrow<bool>(p, v, true); }
__device__ __forceinline__ void gc_atomic_add(unsigned char* p, unsigned char v) { gc_atomic_add_narrow(p, v, false); }
__device__ __forceinline__ void gc_atomic_add(signed char* p, signed char v) { gc_atomic_add_narrow(p, v, false); }
__device__ __forceinline__ void gc_atomic_add(short* p, short v) { gc_atomic_add_narrow(p, v, false); }

// Warp-level butterfly: every lane ends with the combined value.
#define GC_FULL_MASK 0xffffffffu
"""
