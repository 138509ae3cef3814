// Shared by the fused CPU kernels: 64-byte vectors (GCC vector extensions: AVX-512 registers with -march=native on
// such CPUs, pairs of AVX2 or quads of SSE registers elsewhere) and the strides of a [B, T, H, D] tensor.
#pragma once

#include <cstdint>

typedef float vfloat __attribute__((vector_size(64)));
typedef double vdouble __attribute__((vector_size(64)));

template <typename T> struct Simd;
template <> struct Simd<float> { typedef vfloat type; };
template <> struct Simd<double> { typedef vdouble type; };

// Steps ahead whose token rows the recurrences prefetch (recurrent_cpu.cpp, recurrent_backward_cpu.cpp): a step
// touches a row of each of six tensors, spread over the other heads' (and, in the 2D scan's column orders, the other
// columns') rows, which the hardware prefetchers do not follow; without it half the forward's time went into waiting
// for its rows (perf, 2-core EPYC, B=2 H=6 T=48x48).
constexpr int64_t kPrefetch = 8;

// the cache lines of n elements from p, for reading or (Write) for writing. Always inlined: GCC takes a function that
// only prefetches for one without effects and drops its calls.
template <typename T, bool Write = false>
__attribute__((always_inline)) inline void prefetch_row(const T* p, int64_t n) {
    for (int64_t e = 0; e < n; e += 64 / sizeof(T)) __builtin_prefetch(p + e, Write);
}

struct Strides {  // element strides of a [B, T, H, D] tensor whose last dimension is contiguous
    int64_t batch, token, head;
};
