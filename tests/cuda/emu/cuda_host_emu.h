// Host emulation of the CUDA execution model, for running graphc's
// generated CUDA C on a machine without a GPU (tests/cuda/cuda_emu.py).
//
// The generated module is compiled with g++ with this header included
// first. Each thread of a block is a fiber (ucontext) with its own stack;
// one block runs at a time, its fibers taking turns until each finishes or
// waits at a barrier:
//   - __syncthreads(): waits until every live thread of the block arrived;
//   - warp shuffles: every live lane of the warp publishes its value, waits,
//     reads its partner's, waits again (as on hardware, all lanes of the
//     warp must take part);
//   - __shared__ is `static`: one copy, shared by the block's fibers (blocks
//     run one after another, so that is exactly one copy per block), filled
//     with 0x7f bytes when each block starts;
//   - atomics are plain read-modify-writes (nothing runs concurrently).
// A thread that reads another's shared-memory value without the barrier
// the hardware needs sees stale data here too, so missing barriers show up
// as wrong results. Barrier divergence (some threads of a block waiting at
// __syncthreads while others wait at a warp shuffle) is reported as an
// error instead of hanging.
//
// Float16 is a 16-bit storage type converted in software with
// round-to-nearest-even, like cuda_fp16's __float2half_rn.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

// The libm functions generated code calls, declared here: <math.h> in C++
// costs most of a module's build time.
extern "C" {
float expf(float), logf(float), sqrtf(float), sinf(float), cosf(float), tanhf(float), erff(float), floorf(float);
float powf(float, float), atan2f(float, float), ldexpf(float, int);
double exp(double), log(double), sqrt(double), sin(double), cos(double), tanh(double), erf(double), floor(double);
double pow(double, double), atan2(double, double);
}

#define __global__ __attribute__((visibility("default")))
#define __device__
#define __host__
#define __forceinline__ inline
// Shared arrays go to one section, so each block can start with them
// poisoned (as on hardware, they start as garbage, not zeros).
#define __shared__ static __attribute__((section("gc_emu_shared")))
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};
typedef uint3 dim3;

// ---- float16 -------------------------------------------------------------

static inline unsigned short gc_emu_half_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, 8);
  unsigned short sign = (unsigned short)((b >> 48) & 0x8000u);
  int exp = (int)((b >> 52) & 0x7ff);
  uint64_t man = b & 0xFFFFFFFFFFFFFull;
  if (exp == 0x7ff) return (unsigned short)(sign | 0x7c00u | (man ? 0x200u : 0u));  // inf, quiet NaN
  int e = exp - 1023;
  if (exp == 0 || e < -26) return sign;  // below half the smallest subnormal: rounds to zero
  if (e > 15) return (unsigned short)(sign | 0x7c00u);
  uint64_t full = man | (1ull << 52);
  int shift = e >= -14 ? 42 : 28 - e;  // bits dropped: normal keeps 11, subnormal fewer
  uint64_t q = full >> shift;
  uint64_t rem = full & ((1ull << shift) - 1);
  uint64_t halfway = 1ull << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1))) ++q;
  unsigned int bits = e >= -14 ? (unsigned int)((e + 15) << 10) + (unsigned int)q - 1024u : (unsigned int)q;
  if (bits >= 0x7c00u) bits = 0x7c00u;  // rounded up past the largest finite
  return (unsigned short)(sign | bits);
}

static inline float gc_emu_half_value(unsigned short bits);

// Like cuda_fp16's __half: built from any number (rounded to nearest even),
// read back as float.
struct __half {
  unsigned short bits;
  __half() = default;
  __half(double v) : bits(gc_emu_half_bits(v)) {}
  __half(float v) : bits(gc_emu_half_bits(v)) {}
  __half(int v) : bits(gc_emu_half_bits(v)) {}
  __half(long long v) : bits(gc_emu_half_bits((double)v)) {}
  operator float() const { return gc_emu_half_value(bits); }
};

static inline float gc_emu_half_value(unsigned short bits) {
  unsigned int sign = (unsigned int)(bits & 0x8000u) << 16;
  unsigned int exp = (bits >> 10) & 0x1f;
  unsigned int man = bits & 0x3ffu;
  float mag;
  if (exp == 0x1f) {
    unsigned int f = 0x7f800000u | (man << 13);
    memcpy(&mag, &f, 4);
  } else if (exp == 0) {
    mag = ldexpf((float)man, -24);
  } else {
    mag = ldexpf((float)(man | 0x400u), (int)exp - 25);
  }
  unsigned int out;
  memcpy(&out, &mag, 4);
  out |= sign;
  memcpy(&mag, &out, 4);
  return mag;
}

static inline float __half2float(__half h) { return gc_emu_half_value(h.bits); }
static inline __half __float2half_rn(float x) { return __half((double)x); }
static inline __half __double2half(double x) { return __half(x); }

// ---- the block's threads as fibers -----------------------------------------

enum { GC_EMU_RUN, GC_EMU_AT_BLOCK_BARRIER, GC_EMU_AT_WARP_BARRIER, GC_EMU_DONE };

struct gc_emu_fiber {
  ucontext_t ctx;
  uint3 tid;
  unsigned int linear;
  int state;
};

enum { GC_EMU_MAX_THREADS = 1024, GC_EMU_STACK = 1 << 16 };

static gc_emu_fiber gc_emu_fibers[GC_EMU_MAX_THREADS];
static char* gc_emu_stacks;  // GC_EMU_MAX_THREADS stacks, allocated on first launch
static gc_emu_fiber* gc_emu_cur;
static ucontext_t gc_emu_scheduler;
static uint3 gc_emu_block_idx, gc_emu_block_dim, gc_emu_grid_dim;
static unsigned int gc_emu_nthreads;
static uint64_t gc_emu_lanes[GC_EMU_MAX_THREADS];  // shuffle values, one per thread

#define threadIdx (gc_emu_cur->tid)
#define blockIdx gc_emu_block_idx
#define blockDim gc_emu_block_dim
#define gridDim gc_emu_grid_dim

static void gc_emu_wait(int state) {
  gc_emu_fiber* self = gc_emu_cur;
  self->state = state;
  swapcontext(&self->ctx, &gc_emu_scheduler);
  gc_emu_cur = self;
}

static inline void __syncthreads() { gc_emu_wait(GC_EMU_AT_BLOCK_BARRIER); }
static inline void __syncwarp(unsigned int = 0xffffffffu) { gc_emu_wait(GC_EMU_AT_WARP_BARRIER); }

template <typename T> static T gc_emu_shuffle(T v, unsigned int src_lane, int width) {
  static_assert(sizeof(T) <= 8, "shuffled values are at most 8 bytes");
  unsigned int me = gc_emu_cur->linear;
  unsigned int lane = me & 31u, warp_base = me & ~31u;
  uint64_t slot = 0;
  memcpy(&slot, &v, sizeof(T));
  gc_emu_lanes[me] = slot;
  gc_emu_wait(GC_EMU_AT_WARP_BARRIER);
  unsigned int segment = lane & ~(unsigned int)(width - 1);
  T out = v;
  if (src_lane >= segment && src_lane < segment + (unsigned int)width && warp_base + src_lane < gc_emu_nthreads)
    memcpy(&out, &gc_emu_lanes[warp_base + src_lane], sizeof(T));
  gc_emu_wait(GC_EMU_AT_WARP_BARRIER);  // nobody overwrites a slot before all have read
  return out;
}

template <typename T> static T __shfl_xor_sync(unsigned int, T v, int lane_mask, int width = 32) {
  return gc_emu_shuffle(v, (gc_emu_cur->linear & 31u) ^ (unsigned int)lane_mask, width);
}
template <typename T> static T __shfl_down_sync(unsigned int, T v, unsigned int delta, int width = 32) {
  return gc_emu_shuffle(v, (gc_emu_cur->linear & 31u) + delta, width);
}
template <typename T> static T __shfl_sync(unsigned int, T v, int src, int width = 32) {
  unsigned int lane = gc_emu_cur->linear & 31u;
  return gc_emu_shuffle(v, (lane & ~(unsigned int)(width - 1)) + ((unsigned int)src & (unsigned int)(width - 1)), width);
}

// ---- atomics (nothing runs concurrently) ----------------------------------

template <typename T> static inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = (T)(old + v);
  return old;
}
static inline __half atomicAdd(__half* p, __half v) {
  __half old = *p;
  *p = __float2half_rn(__half2float(old) + __half2float(v));
  return old;
}
template <typename T> static inline T atomicCAS(T* p, T compare, T value) {
  T old = *p;
  if (old == compare) *p = value;
  return old;
}

// ---- launching ---------------------------------------------------------------

typedef void (*gc_emu_entry)(void**);
static gc_emu_entry gc_emu_kernel_entry;
static void** gc_emu_kernel_args;
static char gc_emu_error[256];

static void gc_emu_fiber_main() {
  gc_emu_kernel_entry(gc_emu_kernel_args);
  gc_emu_cur->state = GC_EMU_DONE;  // uc_link returns to the scheduler
}

// Releases the threads a barrier is complete for; false when none could be
// released although some still wait (a divergent barrier).
static bool gc_emu_release() {
  unsigned int n = gc_emu_nthreads;
  bool released = false, anyone_waits = false;
  for (unsigned int base = 0; base < n; base += 32) {  // warp barriers first
    unsigned int end = base + 32 < n ? base + 32 : n;
    bool all = true, some = false;
    for (unsigned int i = base; i < end; ++i) {
      int s = gc_emu_fibers[i].state;
      if (s == GC_EMU_AT_WARP_BARRIER) some = true;
      else if (s != GC_EMU_DONE) all = false;
    }
    if (some && all) {
      for (unsigned int i = base; i < end; ++i)
        if (gc_emu_fibers[i].state == GC_EMU_AT_WARP_BARRIER) gc_emu_fibers[i].state = GC_EMU_RUN;
      released = true;
    }
  }
  if (released) return true;
  bool all_block = true;
  for (unsigned int i = 0; i < n; ++i) {
    int s = gc_emu_fibers[i].state;
    if (s != GC_EMU_DONE) anyone_waits = true;
    if (s != GC_EMU_DONE && s != GC_EMU_AT_BLOCK_BARRIER) all_block = false;
  }
  if (!anyone_waits) return false;
  if (all_block) {
    for (unsigned int i = 0; i < n; ++i)
      if (gc_emu_fibers[i].state == GC_EMU_AT_BLOCK_BARRIER) gc_emu_fibers[i].state = GC_EMU_RUN;
    return true;
  }
  return false;
}

extern "C" char __start_gc_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_gc_emu_shared[] __attribute__((weak, visibility("hidden")));

static int gc_emu_run_block() {
  unsigned int n = gc_emu_nthreads;
  if (__start_gc_emu_shared != __stop_gc_emu_shared)
    memset(__start_gc_emu_shared, 0x7f, (size_t)(__stop_gc_emu_shared - __start_gc_emu_shared));
  for (unsigned int i = 0; i < n; ++i) {
    gc_emu_fiber* f = &gc_emu_fibers[i];
    f->linear = i;
    f->tid.x = i % gc_emu_block_dim.x;
    f->tid.y = (i / gc_emu_block_dim.x) % gc_emu_block_dim.y;
    f->tid.z = i / (gc_emu_block_dim.x * gc_emu_block_dim.y);
    f->state = GC_EMU_RUN;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = gc_emu_stacks + (size_t)i * GC_EMU_STACK;
    f->ctx.uc_stack.ss_size = GC_EMU_STACK;
    f->ctx.uc_link = &gc_emu_scheduler;
    makecontext(&f->ctx, gc_emu_fiber_main, 0);
  }
  for (;;) {
    bool ran = false;
    for (unsigned int i = 0; i < n; ++i) {
      if (gc_emu_fibers[i].state != GC_EMU_RUN) continue;
      gc_emu_cur = &gc_emu_fibers[i];
      swapcontext(&gc_emu_scheduler, &gc_emu_fibers[i].ctx);
      ran = true;
    }
    if (ran) continue;
    if (gc_emu_release()) continue;
    for (unsigned int i = 0; i < n; ++i)
      if (gc_emu_fibers[i].state != GC_EMU_DONE) {
        snprintf(gc_emu_error, sizeof gc_emu_error,
                 "divergent barrier in block (%u, %u, %u): thread %u waits at a %s while others wait elsewhere",
                 gc_emu_block_idx.x, gc_emu_block_idx.y, gc_emu_block_idx.z, i,
                 gc_emu_fibers[i].state == GC_EMU_AT_BLOCK_BARRIER ? "__syncthreads" : "warp shuffle");
        return 1;
      }
    return 0;
  }
}

// Runs `entry(args)` as a kernel over grid x block; 0 on success, else the
// reason is in gc_emu_launch_error().
extern "C" __attribute__((visibility("default"))) int gc_emu_launch(gc_emu_entry entry, void** args, unsigned int gx,
                                                                    unsigned int gy, unsigned int gz, unsigned int bx,
                                                                    unsigned int by, unsigned int bz) {
  unsigned long long threads = (unsigned long long)bx * by * bz;
  gc_emu_error[0] = 0;
  if (threads == 0 || threads > GC_EMU_MAX_THREADS) {
    snprintf(gc_emu_error, sizeof gc_emu_error, "invalid block (%u, %u, %u): 1 to %d threads", bx, by, bz,
             GC_EMU_MAX_THREADS);
    return 1;
  }
  if (!gc_emu_stacks) {
    gc_emu_stacks = (char*)malloc((size_t)GC_EMU_MAX_THREADS * GC_EMU_STACK);
    if (!gc_emu_stacks) {
      snprintf(gc_emu_error, sizeof gc_emu_error, "cannot allocate the emulated threads' stacks");
      return 1;
    }
  }
  gc_emu_kernel_entry = entry;
  gc_emu_kernel_args = args;
  gc_emu_grid_dim = uint3{gx, gy, gz};
  gc_emu_block_dim = uint3{bx, by, bz};
  gc_emu_nthreads = (unsigned int)threads;
  for (unsigned int z = 0; z < gz; ++z)
    for (unsigned int y = 0; y < gy; ++y)
      for (unsigned int x = 0; x < gx; ++x) {
        gc_emu_block_idx = uint3{x, y, z};
        if (gc_emu_run_block()) return 1;
      }
  return 0;
}

extern "C" __attribute__((visibility("default"))) const char* gc_emu_launch_error() { return gc_emu_error; }
