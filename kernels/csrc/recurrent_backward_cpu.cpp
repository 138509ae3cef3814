// Backward of the fused recurrences for the CPU (recurrent_cpu.cpp), a reverse sweep per sequence.
// Generalized rule (eq. 5):  S_t = diag(w_t) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,   o_t = scale S_t^T q_t.
// With G the gradient of the loss with respect to S_t (the final state's gradient to start, plus scale q_t do_t^T
// at every token), r = S_{t-1}^T a_t and u = G^T b_t:
//   dq_t = scale S_t do_t   dk_t = G v_t   dv_t = G^T k_t   da_t = S_{t-1} u   db_t = G r   dw_t = rowsum(G * S_{t-1})
//   and G <- diag(w_t) G + a_t u^T for the token before (after the first token, G is the initial state's gradient).
// Plain delta rule (eq. 6), its own sweep (fewer products than the general case a = k, b = -beta k, w = 1):
//   S_t = S_{t-1} + k_t f_t^T, f_t = beta_t (v_t - r_t), r_t = S_{t-1}^T k_t; with e = G^T k_t:
//   dq_t = scale S_t do_t   dv_t = beta_t e   dbeta_t = e . (v_t - r_t)   dk_t = G f_t - beta_t S_{t-1} e
//   and G <- G - beta_t k_t e^T.
// The states S_{t-1} come from the checkpoints the forward kept (the state before every chunk-th step), or, without
// them, from one forward sweep that keeps them; each chunk, last to first, is recomputed into a buffer and swept
// backwards. Sequences read in several orders (the 2D scan's directions, order[d * T + t]) are handled by one
// thread per (batch, head), direction after direction, so that the gradients of a token add up without races.
// Columns of S are independent: a sequence is handled in groups of at most four vectors of columns, whose K-sized
// gradients add up. Built by kernels/fused_cpu.py.
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
    Tensor<const T> q, k, v, a, b, w, beta, grad_o;  // a, b, w null for the delta rule, beta null otherwise
    Tensor<T> dq, dk, dv, da, db, dw, dbeta;
    const int64_t* order;                   // [T] token rows in reading order, or null (row order)
    const T *h0, *grad_final, *checkpoints;  // [K, V], [K, V] and [N, K, V] of this sequence, or null
    T* grad_initial;                         // [K, V], or null
    bool add_k, add_v;  // add into the K-sized / V-sized gradient rows (a later direction or column group)
    int64_t row(int64_t t) const { return order ? order[t] : t; }
};

template <typename T> struct Scratch {  // per thread
    typedef typename Simd<T>::type vec;
    static constexpr int64_t L = 64 / sizeof(T);
    int64_t kp;
    vec *checkpoints, *states, *grad, *reads;
    T *q, *k, *a, *b, *w, *staged;
    void* memory;

    Scratch(int64_t seq_len, int64_t dk, int64_t chunk) {
        kp = (dk + L - 1) / L * L;
        const int64_t n_chunks = (seq_len + chunk - 1) / chunk, rows = kp * 4;  // 4: the widest column group
        const int64_t vecs = (n_chunks + 1) * rows + (chunk + 1) * rows + rows + chunk * 4 + 5 * kp / L + 2 * 4;
        memory = std::aligned_alloc(64, vecs * sizeof(vec));
        std::memset(memory, 0, vecs * sizeof(vec));
        checkpoints = static_cast<vec*>(memory);
        states = checkpoints + (n_chunks + 1) * rows;
        grad = states + (chunk + 1) * rows;
        reads = grad + rows;  // the delta rule's read-outs r_t of the chunk being swept
        T* scalars = reinterpret_cast<T*>(reads + chunk * 4);
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
inline void store_columns(const typename Simd<T>::type* in, int64_t width, bool add, T* dst) {
    constexpr int64_t L = 64 / sizeof(T);
    alignas(64) T row[NV * L];
    for (int x = 0; x < NV; ++x) std::memcpy(row + x * L, &in[x], sizeof(in[x]));
    if (add)
        for (int64_t e = 0; e < width; ++e) dst[e] += row[e];
    else
        std::memcpy(dst, row, width * sizeof(T));
}

// L K-sized gradient entries (rows i0 .. i0 + n_rows of one token) stored or added
template <typename T>
inline void store_rows(const typename Simd<T>::type& sums, int64_t n_rows, bool add, T* dst) {
    constexpr int64_t L = 64 / sizeof(T);
    typename Simd<T>::type total = sums;
    if (n_rows == L) {  // one unaligned vector load, add and store instead of L lane extractions
        if (add) {
            typename Simd<T>::type old;
            std::memcpy(&old, dst, sizeof(old));
            total += old;
        }
        std::memcpy(dst, &total, sizeof(total));
    } else {
        for (int64_t j = 0; j < n_rows; ++j) dst[j] = add ? dst[j] + sums[j] : sums[j];
    }
}

// one step of the forward (from `prev` to `next`, which may alias); the delta rule keeps its read-out in `read`
template <typename T, int NV, bool Delta>
inline void forward_step(const typename Simd<T>::type* prev, typename Simd<T>::type* next, const Scratch<T>& s,
                         const typename Simd<T>::type* value, T beta, typename Simd<T>::type* read) {
    for (int x = 0; x < NV; ++x) read[x] = typename Simd<T>::type{};
    for (int64_t i = 0; i < s.kp; ++i)
        for (int x = 0; x < NV; ++x) read[x] += s.a[i] * prev[i * NV + x];
    if constexpr (Delta) {
        typename Simd<T>::type f[NV];
        for (int x = 0; x < NV; ++x) f[x] = beta * (value[x] - read[x]);
        for (int64_t i = 0; i < s.kp; ++i)
            for (int x = 0; x < NV; ++x) next[i * NV + x] = prev[i * NV + x] + s.k[i] * f[x];
    } else {
        for (int64_t i = 0; i < s.kp; ++i)
            for (int x = 0; x < NV; ++x)
                next[i * NV + x] = s.w[i] * prev[i * NV + x] + s.b[i] * read[x] + s.k[i] * value[x];
    }
}

template <typename T, int NV, bool Delta>
void backward_columns(const Sequence<T>& seq, int64_t seq_len, int64_t dk, int64_t dv, int64_t col, int64_t chunk,
                      T scale, Scratch<T>& s, const TransposeSum<T>& transpose_sum) {
    typedef typename Simd<T>::type vec;
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t kp = s.kp, rows = kp * NV, width = std::min<int64_t>(NV * L, dv - col);
    T* buffer = s.staged;
    vec value[NV], grad_o[NV];
    T beta = 0;
    auto stage_token = [&](int64_t t) {  // step t's token (in this sequence's reading order)
        const int64_t r = seq.row(t);
        stage_row(seq.k.at(r), dk, s.k);
        if constexpr (Delta) {
            stage_row(seq.k.at(r), dk, s.a);  // the delta rule's read-out is along k
            beta = *seq.beta.at(r);
        } else {
            stage_row(seq.a.at(r), dk, s.a);
            stage_row(seq.b.at(r), dk, s.b);
            stage_row(seq.w.at(r), dk, s.w);
        }
        load_columns<T, NV>(seq.v.at(r) + col, width, buffer, value);
    };
    auto load_state = [&](const T* src, vec* dst) {  // a [K, V] state's columns, rows beyond dk zero
        std::memset(static_cast<void*>(dst), 0, rows * sizeof(vec));
        if (src)
            for (int64_t i = 0; i < dk; ++i) std::memcpy(&dst[i * NV], src + i * dv + col, width * sizeof(T));
    };

    const int64_t n_chunks = (seq_len + chunk - 1) / chunk;
    vec read[NV];
    if (!seq.checkpoints) {  // a forward sweep, keeping the state before every chunk
        load_state(seq.h0, s.checkpoints);
        for (int64_t c = 0; c < n_chunks; ++c) {
            vec* state = s.checkpoints + (c + 1) * rows;
            std::memcpy(static_cast<void*>(state), s.checkpoints + c * rows, rows * sizeof(vec));
            for (int64_t t = c * chunk; t < std::min(seq_len, (c + 1) * chunk); ++t) {
                stage_token(t);
                forward_step<T, NV, Delta>(state, state, s, value, beta, read);
            }
        }
    }
    load_state(seq.grad_final, s.grad);
    vec* g = s.grad;
    for (int64_t c = n_chunks - 1; c >= 0; --c) {
        const int64_t t0 = c * chunk, t1 = std::min(seq_len, t0 + chunk);
        if (seq.checkpoints)
            load_state(seq.checkpoints + c * dk * dv, s.states);
        else
            std::memcpy(static_cast<void*>(s.states), s.checkpoints + c * rows, rows * sizeof(vec));
        for (int64_t t = t0; t < t1; ++t) {
            stage_token(t);
            forward_step<T, NV, Delta>(s.states + (t - t0) * rows, s.states + (t - t0 + 1) * rows, s, value, beta,
                                       s.reads + (t - t0) * NV);
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
            const vec* prev = s.states + (t - t0) * rows;
            const vec* now = s.states + (t - t0 + 1) * rows;
            const int64_t r = seq.row(t);
            stage_token(t);
            stage_row(seq.q.at(r), dk, s.q);
            load_columns<T, NV>(seq.grad_o.at(r) + col, width, buffer, grad_o);
            // V-sized vectors: the delta rule's f and e = G^T k (then -beta e), else the read-out and u = G^T b
            vec left[NV], right[NV], grad_v[NV];
            for (int x = 0; x < NV; ++x) left[x] = right[x] = grad_v[x] = vec{};
            if constexpr (Delta) {
                const vec* rd = s.reads + (t - t0) * NV;
                for (int x = 0; x < NV; ++x) left[x] = beta * (value[x] - rd[x]);
                for (int64_t i = 0; i < kp; ++i)
                    for (int x = 0; x < NV; ++x) {
                        g[i * NV + x] += (scale * s.q[i]) * grad_o[x];
                        grad_v[x] += s.k[i] * g[i * NV + x];  // e
                    }
                vec dot{};
                for (int x = 0; x < NV; ++x) {
                    dot += grad_v[x] * (value[x] - rd[x]);
                    right[x] = -beta * grad_v[x];
                    grad_v[x] = beta * grad_v[x];
                }
                T total = 0;
                for (int64_t lane = 0; lane < L; ++lane) total += dot[lane];
                T* db = seq.dbeta.at(r);
                *db = seq.add_k ? *db + total : total;
            } else {
                for (int64_t i = 0; i < kp; ++i)
                    for (int x = 0; x < NV; ++x) {
                        g[i * NV + x] += (scale * s.q[i]) * grad_o[x];
                        left[x] += s.a[i] * prev[i * NV + x];
                        right[x] += s.b[i] * g[i * NV + x];
                        grad_v[x] += s.k[i] * g[i * NV + x];
                    }
            }
            store_columns<T, NV>(grad_v, width, seq.add_v, seq.dv.at(r) + col);
            // the K-sized gradients, L rows at a time through the transposing sum
            constexpr int P = Delta ? 2 : 5;
            for (int64_t i0 = 0; i0 < kp; i0 += L) {
                vec p[P][L];
                for (int j = 0; j < L; ++j) {
                    const int64_t i = (i0 + transpose_sum.order[j]) * NV;
                    for (int n = 0; n < P; ++n) p[n][j] = vec{};
                    for (int x = 0; x < NV; ++x) {
                        p[0][j] += now[i + x] * grad_o[x];
                        if constexpr (Delta) {
                            p[1][j] += g[i + x] * left[x] + prev[i + x] * right[x];
                        } else {
                            p[1][j] += g[i + x] * value[x];
                            p[2 % P][j] += g[i + x] * left[x];
                            p[3 % P][j] += prev[i + x] * right[x];
                            p[4 % P][j] += g[i + x] * prev[i + x];
                        }
                    }
                }
                const int64_t n_rows = std::min<int64_t>(L, dk - i0);
                store_rows<T>(scale * transpose_sum(p[0]), n_rows, seq.add_k, seq.dq.at(r) + i0);
                store_rows<T>(transpose_sum(p[1]), n_rows, seq.add_k, seq.dk.at(r) + i0);
                if constexpr (!Delta) {
                    store_rows<T>(transpose_sum(p[2 % P]), n_rows, seq.add_k, seq.db.at(r) + i0);
                    store_rows<T>(transpose_sum(p[3 % P]), n_rows, seq.add_k, seq.da.at(r) + i0);
                    store_rows<T>(transpose_sum(p[4 % P]), n_rows, seq.add_k, seq.dw.at(r) + i0);
                }
            }
            if constexpr (Delta) {
                for (int64_t i = 0; i < kp; ++i)
                    for (int x = 0; x < NV; ++x) g[i * NV + x] += s.k[i] * right[x];
            } else {
                for (int64_t i = 0; i < kp; ++i)
                    for (int x = 0; x < NV; ++x) g[i * NV + x] = s.w[i] * g[i * NV + x] + s.a[i] * right[x];
            }
        }
    }
    if (seq.grad_initial)
        for (int64_t i = 0; i < dk; ++i) std::memcpy(seq.grad_initial + i * dv + col, &g[i * NV], width * sizeof(T));
}

template <typename T, bool Delta>
void backward_sequence(const Sequence<T>& seq, int64_t seq_len, int64_t dk, int64_t dv, int64_t col, int64_t chunk,
                       T scale, Scratch<T>& s, const TransposeSum<T>& transpose_sum) {
    constexpr int64_t L = 64 / sizeof(T);
    switch (std::min<int64_t>(4, (dv - col + L - 1) / L)) {
        case 1: backward_columns<T, 1, Delta>(seq, seq_len, dk, dv, col, chunk, scale, s, transpose_sum); break;
        case 2: backward_columns<T, 2, Delta>(seq, seq_len, dk, dv, col, chunk, scale, s, transpose_sum); break;
        case 3: backward_columns<T, 3, Delta>(seq, seq_len, dk, dv, col, chunk, scale, s, transpose_sum); break;
        default: backward_columns<T, 4, Delta>(seq, seq_len, dk, dv, col, chunk, scale, s, transpose_sum); break;
    }
}

template <typename T>
int recurrent_backward(bool delta, int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk,
                       int64_t dv, int64_t chunk, const T* const* inputs, const int64_t* in_strides, T* const* grads,
                       const int64_t* grad_strides, const int64_t* order, const T* h0, const T* grad_final,
                       const T* checkpoints, T* grad_initial, T scale, int threads) {
    constexpr int64_t L = 64 / sizeof(T);
    const TransposeSum<T> transpose_sum;
    const int64_t n_chunks = (seq_len + chunk - 1) / chunk;
#pragma omp parallel num_threads(threads)
    {
        Scratch<T> scratch(seq_len, dk, chunk);
#pragma omp for schedule(static)
        for (int64_t pair = 0; pair < batch * heads; ++pair) {
            const int64_t bi = pair / heads, hi = pair % heads;
            for (int64_t di = 0; di < dirs; ++di) {
                const int64_t sequence = pair * dirs + di, state = sequence * dk * dv;
                auto in = [&](int i) {  // strides: (batch, token, head, direction) per tensor
                    const int64_t* st = in_strides + 4 * i;
                    return Tensor<const T>{inputs[i] ? inputs[i] + bi * st[0] + hi * st[2] + di * st[3] : nullptr,
                                           st[1]};
                };
                auto out = [&](int i) {
                    const int64_t* st = grad_strides + 4 * i;
                    return Tensor<T>{grads[i] ? grads[i] + bi * st[0] + hi * st[2] : nullptr, st[1]};
                };
                Sequence<T> seq{in(0),  in(1),  in(2),  in(3),  in(4),  in(5),  in(6),  in(7),
                                out(0), out(1), out(2), out(3), out(4), out(5), out(6),
                                order ? order + di * seq_len : nullptr,
                                h0 ? h0 + state : nullptr, grad_final ? grad_final + state : nullptr,
                                checkpoints ? checkpoints + sequence * n_chunks * dk * dv : nullptr,
                                grad_initial ? grad_initial + state : nullptr, false, di > 0};
                for (int64_t col = 0; col < dv; col += 4 * L) {
                    seq.add_k = di > 0 || col > 0;
                    if (delta)
                        backward_sequence<T, true>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum);
                    else
                        backward_sequence<T, false>(seq, seq_len, dk, dv, col, chunk, scale, scratch, transpose_sum);
                }
            }
        }
    }
    return 0;
}

}  // namespace

extern "C" {

// delta = 0: the generalized rule; inputs q, k, v, a, b, w (= exp(gk)), beta (null), grad_o; grads dq, dk, dv, da,
// db, dw, dbeta (null). delta = 1: the plain delta rule; inputs q, k, v, null, null, null, beta, grad_o; grads dq, dk,
// dv, null, null, null, dbeta. Tokens [B, T, H, *] (beta, dbeta [B, T, H]), grad_o [D, B, T, H, V]; in_strides and
// grad_strides hold 4 element strides per tensor (batch, token, head, direction; the direction's is 0 but for
// grad_o). Every gradient is written (no zeroing needed). order: [D, T] token rows (step t of direction d reads
// row order[d * T + t]), or null for D = 1 in row order. h0, grad_final, grad_initial [B, H, D, K, V] and the
// forward's checkpoints [B, H, D, ceil(T / chunk), K, V] contiguous, or null (checkpoints: recomputed).
#define RECURRENT_BACKWARD_ENTRY(NAME, T)                                                                            \
    int NAME(int delta, int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk, int64_t dv,        \
             int64_t chunk, const T* const* inputs, const int64_t* in_strides, T* const* grads,                     \
             const int64_t* grad_strides, const int64_t* order, const T* h0, const T* grad_final,                   \
             const T* checkpoints, T* grad_initial, double scale, int threads) {                                    \
        return recurrent_backward<T>(delta != 0, batch, seq_len, heads, dirs, dk, dv, chunk, inputs, in_strides,    \
                                     grads, grad_strides, order, h0, grad_final, checkpoints, grad_initial,         \
                                     T(scale), threads);                                                            \
    }
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f32, float)
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f64, double)
}
