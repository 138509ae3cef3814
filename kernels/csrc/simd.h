// Shared by the fused CPU kernels: 64-byte vectors (GCC vector extensions: AVX-512 registers with -march=native on
// such CPUs, pairs of AVX2 or quads of SSE registers elsewhere) and the strides of a [B, T, H, D] tensor.
#pragma once

#include <cstdint>

typedef float vfloat __attribute__((vector_size(64)));
typedef double vdouble __attribute__((vector_size(64)));

template <typename T> struct Simd;
template <> struct Simd<float> { typedef vfloat type; };
template <> struct Simd<double> { typedef vdouble type; };

struct Strides {  // element strides of a [B, T, H, D] tensor whose last dimension is contiguous
    int64_t batch, token, head;
};
