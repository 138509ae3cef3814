// Backward of the generalized recurrence (eq. 5) for the CPU, the reverse sweep of recurrent_cpu.cpp's forward:
//   S_t = diag(w_t) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,   o_t = scale S_t^T q_t
// With G the gradient of the loss with respect to S_t (the final state's gradient to start, plus scale q_t do_t^T
// at every token), r = S_{t-1}^T a_t and u = G^T b_t:
//   dq_t = scale S_t do_t   dk_t = G v_t   dv_t = G^T k_t   da_t = S_{t-1} u   db_t = G r   dw_t = rowsum(G * S_{t-1})
//   and G <- diag(w_t) G + a_t u^T for the token before (after the first token, G is the initial state's gradient).
// The states are recomputed: one forward sweep keeps every chunk-th state, then each chunk, last to first, is
// recomputed into a buffer and swept backwards. Columns of S are independent, so a sequence is handled in groups of
// at most four vectors of columns; the K-sized gradients add up over the groups. Built by kernels/fused_cpu.py.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "simd.h"

namespace {

template <typename T> struct Index;
template <> struct Index<float> { typedef int32_t type __attribute__((vector_size(64))); };
template <> struct Index<double> { typedef int64_t type __attribute__((vector_size(64))); };

// Row sums of L vectors at once (a transposing reduction: log2 L rounds of two lane shuffles and an add, instead of
// a horizontal sum per vector). Each round folds every vector's blocks in half and packs two vectors into one, which
// leaves the rows in bit-reversed order: callers put row `order[j]` in slot j and get row l's sum in lane l.
template <typename T> struct TransposeSum {
    static constexpr int L = 64 / sizeof(T);
    typedef typename Simd<T>::type vec;
    typename Index<T>::type low[4], high[4];
    int order[L];

    TransposeSum() {
        int round = 0;
        for (int width = L; width > 1; width /= 2, ++round) {
            const int half = width / 2;
            for (int lane = 0; lane < L; ++lane) {
                const int block = lane / half, base = (block / 2) * width + lane % half + (block % 2) * L;
                low[round][lane] = base;
                high[round][lane] = base + half;
            }
        }
        for (int j = 0; j < L; ++j) {
            int reversed = 0;
            for (int bit = 1, mirror = L / 2; bit < L; bit *= 2, mirror /= 2)
                if (j & bit) reversed |= mirror;
            order[j] = reversed;
        }
    }

    vec operator()(vec* p) const {
#if defined(__clang__) || defined(REPRO_PORTABLE_SUMS)  // clang has no __builtin_shuffle: a sum per row
        vec sums{};
        for (int l = 0; l < L; ++l)
            for (int lane = 0; lane < L; ++lane) sums[l] += p[order[l]][lane];  // row l sits in slot order[l]
        return sums;
#else
        int round = 0;
        for (int count = L; count > 1; count /= 2, ++round)
            for (int j = 0; j < count / 2; ++j)
                p[j] = __builtin_shuffle(p[2 * j], p[2 * j + 1], low[round]) +
                       __builtin_shuffle(p[2 * j], p[2 * j + 1], high[round]);
        return p[0];
#endif
    }
};

template <typename T> struct Tensor {  // one sequence of a [B, T, H, D] tensor: base pointer and token stride
    T* data;
    int64_t token;
    T* at(int64_t t) const { return data + t * token; }
};

template <typename T> struct Sequence {
    Tensor<const T> q, k, v, a, b, w, grad_o;
    Tensor<T> dq, dk, dv, da, db, dw;
    const T *h0, *grad_final;  // [K, V] of this sequence, or null
    T* grad_initial;           // [K, V], or null
};

template <typename T> struct Scratch {  // per thread
    typedef typename Simd<T>::type vec;
    static constexpr int64_t L = 64 / sizeof(T);
    int64_t kp;
    vec *checkpoints, *states, *grad;
    T *q, *k, *a, *b, *w, *staged;
    void* memory;

    Scratch(int64_t seq_len, int64_t dk, int64_t chunk) {
        kp = (dk + L - 1) / L * L;
        const int64_t n_chunks = (seq_len + chunk - 1) / chunk, rows = kp * 4;  // 4: the widest column group
        const int64_t vecs = (n_chunks + 1) * rows + (chunk + 1) * rows + rows + 5 * kp / L + 2 * 4;
        memory = std::aligned_alloc(64, vecs * sizeof(vec));
        std::memset(memory, 0, vecs * sizeof(vec));
        checkpoints = static_cast<vec*>(memory);
        states = checkpoints + (n_chunks + 1) * rows;
        grad = states + (chunk + 1) * rows;
        T* scalars = reinterpret_cast<T*>(grad + rows);
        T** slots[] = {&q, &k, &a, &b, &w};
        for (int i = 0; i < 5; ++i) *slots[i] = scalars + i * kp;  // token rows zero-padded to kp
        staged = scalars + 5 * kp;                                   // 2 * 4 vectors: a value and a gradient row
    }
    ~Scratch() { std::free(memory); }
};

template <typename T>
inline void stage_row(const T* src, int64_t n, T* dst) {  // dst[n:kp] stays zero
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// NV vectors of a V-row (columns col .. col + width), through a zero-padded buffer when the group is partial
template <typename T, int NV>
inline void load_columns(const T* src, int64_t width, T* buffer, typename Simd<T>::type* out) {
    constexpr int64_t L = 64 / sizeof(T);
    if (width < NV * L) {
        for (int64_t e = 0; e < width; ++e) buffer[e] = src[e];
        src = buffer;
    }
    for (int x = 0; x < NV; ++x) std::memcpy(&out[x], src + x * L, sizeof(out[x]));
}

template <typename T, int NV>
inline void forward_step(const typename Simd<T>::type* prev, typename Simd<T>::type* next, const Scratch<T>& s,
                         const typename Simd<T>::type* value) {
    typedef typename Simd<T>::type vec;
    vec read[NV];
    for (int x = 0; x < NV; ++x) read[x] = vec{};
    for (int64_t i = 0; i < s.kp; ++i)
        for (int x = 0; x < NV; ++x) read[x] += s.a[i] * prev[i * NV + x];
    for (int64_t i = 0; i < s.kp; ++i)
        for (int x = 0; x < NV; ++x)
            next[i * NV + x] = s.w[i] * prev[i * NV + x] + s.b[i] * read[x] + s.k[i] * value[x];
}

template <typename T, int NV>
void backward_columns(const Sequence<T>& seq, int64_t seq_len, int64_t dk, int64_t dv, int64_t col, int64_t chunk,
                      T scale, Scratch<T>& s, const TransposeSum<T>& transpose_sum) {
    typedef typename Simd<T>::type vec;
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t kp = s.kp, rows = kp * NV, width = std::min<int64_t>(NV * L, dv - col);
    T* buffer = s.staged;
    vec value[NV], grad_o[NV];
    auto stage_token = [&](int64_t t) {
        stage_row(seq.k.at(t), dk, s.k);
        stage_row(seq.a.at(t), dk, s.a);
        stage_row(seq.b.at(t), dk, s.b);
        stage_row(seq.w.at(t), dk, s.w);
        load_columns<T, NV>(seq.v.at(t) + col, width, buffer, value);
    };
    auto load_state = [&](const T* src, vec* dst) {  // a [K, V] state's columns, rows beyond dk zero
        std::memset(static_cast<void*>(dst), 0, rows * sizeof(vec));
        if (src)
            for (int64_t i = 0; i < dk; ++i) std::memcpy(&dst[i * NV], src + i * dv + col, width * sizeof(T));
    };

    // forward sweep, keeping the state before every chunk
    load_state(seq.h0, s.checkpoints);
    const int64_t n_chunks = (seq_len + chunk - 1) / chunk;
    for (int64_t c = 0; c < n_chunks; ++c) {
        vec* state = s.checkpoints + (c + 1) * rows;
        std::memcpy(static_cast<void*>(state), s.checkpoints + c * rows, rows * sizeof(vec));
        for (int64_t t = c * chunk; t < std::min(seq_len, (c + 1) * chunk); ++t) {
            stage_token(t);
            forward_step<T, NV>(state, state, s, value);
        }
    }
    load_state(seq.grad_final, s.grad);
    vec* g = s.grad;
    for (int64_t c = n_chunks - 1; c >= 0; --c) {
        const int64_t t0 = c * chunk, t1 = std::min(seq_len, t0 + chunk);
        std::memcpy(static_cast<void*>(s.states), s.checkpoints + c * rows, rows * sizeof(vec));
        for (int64_t t = t0; t < t1; ++t) {
            stage_token(t);
            forward_step<T, NV>(s.states + (t - t0) * rows, s.states + (t - t0 + 1) * rows, s, value);
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
            const vec* prev = s.states + (t - t0) * rows;
            const vec* now = s.states + (t - t0 + 1) * rows;
            stage_token(t);
            stage_row(seq.q.at(t), dk, s.q);
            load_columns<T, NV>(seq.grad_o.at(t) + col, width, buffer, grad_o);
            vec read[NV], u[NV], grad_v[NV];
            for (int x = 0; x < NV; ++x) read[x] = u[x] = grad_v[x] = vec{};
            for (int64_t i = 0; i < kp; ++i)
                for (int x = 0; x < NV; ++x) {
                    g[i * NV + x] += (scale * s.q[i]) * grad_o[x];
                    read[x] += s.a[i] * prev[i * NV + x];
                    u[x] += s.b[i] * g[i * NV + x];
                    grad_v[x] += s.k[i] * g[i * NV + x];
                }
            alignas(64) T row[NV * L];
            for (int x = 0; x < NV; ++x) std::memcpy(row + x * L, &grad_v[x], sizeof(vec));
            std::memcpy(seq.dv.at(t) + col, row, width * sizeof(T));
            // the K-sized gradients, L rows at a time through the transposing sum
            for (int64_t i0 = 0; i0 < kp; i0 += L) {
                vec p[5][L];
                for (int j = 0; j < L; ++j) {
                    const int64_t i = (i0 + transpose_sum.order[j]) * NV;
                    for (int n = 0; n < 5; ++n) p[n][j] = vec{};
                    for (int x = 0; x < NV; ++x) {
                        p[0][j] += now[i + x] * grad_o[x];
                        p[1][j] += g[i + x] * value[x];
                        p[2][j] += g[i + x] * read[x];
                        p[3][j] += prev[i + x] * u[x];
                        p[4][j] += g[i + x] * prev[i + x];
                    }
                }
                T* outputs[5] = {seq.dq.at(t), seq.dk.at(t), seq.db.at(t), seq.da.at(t), seq.dw.at(t)};
                const int64_t n_rows = std::min<int64_t>(L, dk - i0);
                for (int n = 0; n < 5; ++n) {
                    const vec sums = (n == 0 ? scale : T(1)) * transpose_sum(p[n]);
                    if (n_rows == L) {  // one unaligned vector load, add and store instead of L lane extractions
                        vec total;
                        std::memcpy(&total, outputs[n] + i0, sizeof(vec));
                        total += sums;
                        std::memcpy(outputs[n] + i0, &total, sizeof(vec));
                    } else {
                        for (int64_t j = 0; j < n_rows; ++j) outputs[n][i0 + j] += sums[j];
                    }
                }
            }
            for (int64_t i = 0; i < kp; ++i)
                for (int x = 0; x < NV; ++x) g[i * NV + x] = s.w[i] * g[i * NV + x] + s.a[i] * u[x];
        }
    }
    if (seq.grad_initial)
        for (int64_t i = 0; i < dk; ++i) std::memcpy(seq.grad_initial + i * dv + col, &g[i * NV], width * sizeof(T));
}

template <typename T>
int recurrent_backward(int64_t batch, int64_t seq_len, int64_t heads, int64_t dk, int64_t dv, int64_t chunk,
                       const T* const* inputs, const int64_t* in_strides, T* const* grads,
                       const int64_t* grad_strides, const T* h0, const T* grad_final, T* grad_initial, T scale,
                       int threads) {
    constexpr int64_t L = 64 / sizeof(T);
    const TransposeSum<T> transpose_sum;
#pragma omp parallel num_threads(threads)
    {
        Scratch<T> scratch(seq_len, dk, chunk);
#pragma omp for schedule(static)
        for (int64_t sequence = 0; sequence < batch * heads; ++sequence) {
            const int64_t bi = sequence / heads, hi = sequence % heads, state = sequence * dk * dv;
            auto in = [&](int i) {
                const int64_t* st = in_strides + 3 * i;
                return Tensor<const T>{inputs[i] + bi * st[0] + hi * st[2], st[1]};
            };
            auto out = [&](int i) {
                const int64_t* st = grad_strides + 3 * i;
                return Tensor<T>{grads[i] + bi * st[0] + hi * st[2], st[1]};
            };
            const Sequence<T> seq{in(0),  in(1),  in(2),  in(3),  in(4),  in(5),  in(6),
                                  out(0), out(1), out(2), out(3), out(4), out(5),
                                  h0 ? h0 + state : nullptr, grad_final ? grad_final + state : nullptr,
                                  grad_initial ? grad_initial + state : nullptr};
            for (int64_t col = 0; col < dv; col += 4 * L) {
                switch (std::min<int64_t>(4, (dv - col + L - 1) / L)) {
                    case 1: backward_columns<T, 1>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum); break;
                    case 2: backward_columns<T, 2>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum); break;
                    case 3: backward_columns<T, 3>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum); break;
                    default: backward_columns<T, 4>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum); break;
                }
            }
        }
    }
    return 0;
}

}  // namespace

extern "C" {

// inputs: q, k, v, a, b, w (= exp(gk)), grad_o, [B, T, H, *] each, with their (batch, token, head) element strides
// in in_strides (3 per tensor); grads: dq, dk, dv, da, db, dw likewise (dq, dk, da, db, dw zero on entry: the groups
// of columns add into them); h0, grad_final, grad_initial: [B, H, K, V] contiguous, or null.
#define RECURRENT_BACKWARD_ENTRY(NAME, T)                                                                            \
    int NAME(int64_t batch, int64_t seq_len, int64_t heads, int64_t dk, int64_t dv, int64_t chunk,                  \
             const T* const* inputs, const int64_t* in_strides, T* const* grads, const int64_t* grad_strides,       \
             const T* h0, const T* grad_final, T* grad_initial, double scale, int threads) {                        \
        return recurrent_backward<T>(batch, seq_len, heads, dk, dv, chunk, inputs, in_strides, grads, grad_strides, \
                                     h0, grad_final, grad_initial, T(scale), threads);                              \
    }
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f32, float)
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f64, double)
}
