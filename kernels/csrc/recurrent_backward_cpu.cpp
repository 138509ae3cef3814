// Backward of the fused recurrences for the CPU (recurrent_cpu.cpp), a reverse sweep per sequence.
// Generalized rule (eq. 5):  S_t = diag(w_t) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,   o_t = scale S_t^T q_t.
// With G the gradient of the loss with respect to S_t (the final state's gradient to start, plus scale q_t do_t^T
// at every token), r = S_{t-1}^T a_t and u = G^T b_t:
//   dq_t = scale S_t do_t   dk_t = G v_t   dv_t = G^T k_t   da_t = S_{t-1} u   db_t = G r
//   dgk_t = w_t * rowsum(G * S_{t-1}) (the log-decay's, from the others by a carried sum: see backward_columns)
//   and G <- diag(w_t) G + a_t u^T for the token before (after the first token, G is the initial state's gradient).
// Plain delta rule (eq. 6), its own sweep (fewer products than the general case a = k, b = -beta k, w = 1):
//   S_t = S_{t-1} + k_t f_t^T, f_t = beta_t (v_t - r_t), r_t = S_{t-1}^T k_t; with e = G^T k_t:
//   dq_t = scale S_t do_t   dv_t = beta_t e   dbeta_t = e . (v_t - r_t)   dk_t = G f_t - beta_t S_{t-1} e
//   and G <- G - beta_t k_t e^T.
// The states S_{t-1} come from the checkpoints the forward kept (the state before every chunk-th step), or, without
// them, from one forward sweep that keeps them; each chunk, last to first, is recomputed into a buffer (from the
// forward's read-outs r_t when it kept them) and swept backwards. Sequences read in several orders (the 2D scan's directions, order[d * T + t]) are handled by one
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
    Tensor<const T> q, k, v, a, b, w, beta, grad_o, reads, outputs;  // a, b, w null for the delta rule, beta
    // otherwise; reads: the forward's read-outs, or null (recomputed); outputs: its outputs, or null
    Tensor<T> dq, dk, dv, da, db, dgk, dbeta;
    const T* merge;      // [V]: this direction's merge weights (grad_o is then the merged output's gradient), or null
    T* grad_merge;       // [V]: their gradient from this (batch, head), or null
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
    T *q, *k, *a, *b, *w, *carry, *staged;
    void* memory;

    Scratch(int64_t seq_len, int64_t dk, int64_t chunk) {
        kp = (dk + L - 1) / L * L;
        const int64_t n_chunks = (seq_len + chunk - 1) / chunk, rows = kp * 4;  // 4: the widest column group
        const int64_t vecs = (n_chunks + 1) * rows + (chunk + 1) * rows + rows + chunk * 4 + 6 * kp / L + 2 * 4;
        memory = std::aligned_alloc(64, vecs * sizeof(vec));
        std::memset(memory, 0, vecs * sizeof(vec));
        checkpoints = static_cast<vec*>(memory);
        states = checkpoints + (n_chunks + 1) * rows;
        grad = states + (chunk + 1) * rows;
        reads = grad + rows;  // the read-outs r_t of the chunk being swept
        T* scalars = reinterpret_cast<T*>(reads + chunk * 4);
        T** slots[] = {&q, &k, &a, &b, &w, &carry};
        for (int i = 0; i < 6; ++i) *slots[i] = scalars + i * kp;  // token rows zero-padded to kp; the dgk carry
        staged = scalars + 6 * kp;                                   // 2 * 4 vectors: a value and a gradient row
    }
    ~Scratch() { std::free(memory); }
};

// One token's K-sized rows (q, k, a, b, w), zero-padded to a whole number of vectors: the rows themselves when K
// is a multiple of the vector width, else copies in the scratch rows.
template <typename T> struct TokenRows {
    const T *q, *k, *a, *b, *w;
};

template <typename T>
inline const T* padded_row(const T* src, int64_t dk, int64_t kp, T* buffer) {  // buffer[dk:kp] stays zero
    if (dk == kp) return src;
    for (int64_t i = 0; i < dk; ++i) buffer[i] = src[i];
    return buffer;
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

template <typename T>
inline typename Simd<T>::type load_vec(const T* p) {
    typename Simd<T>::type v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

// one step of the forward (from `prev` to `next`, which may alias) with its read-out r = S^T a in `read`, computed
// unless `have_read` (the forward kept it)
template <typename T, int NV, bool Delta>
inline void forward_step(const typename Simd<T>::type* prev, typename Simd<T>::type* next, int64_t kp,
                         const TokenRows<T>& x_rows, const typename Simd<T>::type* value, T beta,
                         typename Simd<T>::type* read, bool have_read) {
    const T *k = x_rows.k, *a = x_rows.a, *b = x_rows.b, *w = x_rows.w;
    if (!have_read) {
        for (int x = 0; x < NV; ++x) read[x] = typename Simd<T>::type{};
        for (int64_t i = 0; i < kp; ++i)
            for (int x = 0; x < NV; ++x) read[x] += a[i] * prev[i * NV + x];
    }
    if constexpr (Delta) {
        typename Simd<T>::type f[NV];
        for (int x = 0; x < NV; ++x) f[x] = beta * (value[x] - read[x]);
        for (int64_t i = 0; i < kp; ++i)
            for (int x = 0; x < NV; ++x) next[i * NV + x] = prev[i * NV + x] + k[i] * f[x];
    } else {
        for (int64_t i = 0; i < kp; ++i)
            for (int x = 0; x < NV; ++x)
                next[i * NV + x] = w[i] * prev[i * NV + x] + b[i] * read[x] + k[i] * value[x];
    }
}

// The log-decay's gradient without a product of G and S_{t-1} per token: with c_t = rowsum(G_t * S_t),
//   dgk_t = w_t * rowsum(G_t * S_{t-1}) = c_t - b_t * db_t - k_t * dk_t   (S_t = diag(w_t) S_{t-1} + b r^T + k v^T)
//   c_{t-1} = q_{t-1} * dq_{t-1} + dgk_t + a_t * da_t                      (G_{t-1} = scale q do^T + diag(w) G + a u^T)
// so the reverse sweep carries `carry` = c_t - q_t * dq_t from token to token (elementwise products of K-sized
// rows), starting from rowsum(grad_final * S_T).
template <typename T, int NV, bool Delta>
void backward_columns(const Sequence<T>& seq, int64_t seq_len, int64_t dk, int64_t dv, int64_t col, int64_t chunk,
                      T scale, Scratch<T>& s, const TransposeSum<T>& transpose_sum) {
    typedef typename Simd<T>::type vec;
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t kp = s.kp, rows = kp * NV, width = std::min<int64_t>(NV * L, dv - col);
    T* buffer = s.staged;
    vec value[NV], grad_o[NV];
    T beta = 0;
    auto token_rows = [&](int64_t r, bool with_q) {  // token row r's K-sized rows; its value and beta too
        TokenRows<T> x{nullptr, padded_row(seq.k.at(r), dk, kp, s.k), nullptr, nullptr, nullptr};
        if (with_q) x.q = padded_row(seq.q.at(r), dk, kp, s.q);
        if constexpr (Delta) {
            x.a = x.k;  // the delta rule's read-out is along k
            beta = *seq.beta.at(r);
        } else {
            x.a = padded_row(seq.a.at(r), dk, kp, s.a);
            x.b = padded_row(seq.b.at(r), dk, kp, s.b);
            x.w = padded_row(seq.w.at(r), dk, kp, s.w);
        }
        load_columns<T, NV>(seq.v.at(r) + col, width, buffer, value);
        return x;
    };
    auto load_state = [&](const T* src, vec* dst) {  // a [K, V] state's columns, rows beyond dk zero
        std::memset(static_cast<void*>(dst), 0, rows * sizeof(vec));
        if (src)
            for (int64_t i = 0; i < dk; ++i) std::memcpy(&dst[i * NV], src + i * dv + col, width * sizeof(T));
    };

    const bool have_reads = seq.reads.data != nullptr;
    // merged directions: this direction's output gradient is merge * grad_o, and the weights' gradient sums
    // grad_o * o over the tokens
    vec merge[NV], grad_merge[NV];
    if (seq.merge) load_columns<T, NV>(seq.merge + col, width, buffer, merge);
    for (int x = 0; x < NV; ++x) grad_merge[x] = vec{};
    // a token's rows, before they are needed: those of the recomputation, and with `reverse` those of the sweep
    auto prefetch_token = [&](int64_t r, bool reverse) __attribute__((always_inline)) {
        prefetch_row(seq.k.at(r), dk);
        prefetch_row(seq.v.at(r) + col, width);
        if constexpr (Delta) {
            prefetch_row(seq.beta.at(r), 1);
        } else {
            prefetch_row(seq.a.at(r), dk);
            prefetch_row(seq.b.at(r), dk);
            prefetch_row(seq.w.at(r), dk);
        }
        if (have_reads) prefetch_row(seq.reads.at(r) + col, width);
        if (reverse) {  // and the gradient rows it adds to
            prefetch_row(seq.q.at(r), dk);
            prefetch_row(seq.grad_o.at(r) + col, width);
            if (seq.grad_merge) prefetch_row(seq.outputs.at(r) + col, width);
            prefetch_row<T, true>(seq.dv.at(r) + col, width);
            prefetch_row<T, true>(seq.dq.at(r), dk);
            prefetch_row<T, true>(seq.dk.at(r), dk);
            if constexpr (Delta) {
                prefetch_row<T, true>(seq.dbeta.at(r), 1);
            } else {
                prefetch_row<T, true>(seq.da.at(r), dk);
                prefetch_row<T, true>(seq.db.at(r), dk);
                prefetch_row<T, true>(seq.dgk.at(r), dk);
            }
        }
    };
    const int64_t n_chunks = (seq_len + chunk - 1) / chunk;
    vec read[NV];
    if (!seq.checkpoints) {  // a forward sweep, keeping the state before every chunk
        load_state(seq.h0, s.checkpoints);
        for (int64_t c = 0; c < n_chunks; ++c) {
            vec* state = s.checkpoints + (c + 1) * rows;
            std::memcpy(static_cast<void*>(state), s.checkpoints + c * rows, rows * sizeof(vec));
            for (int64_t t = c * chunk; t < std::min(seq_len, (c + 1) * chunk); ++t) {
                if (t + kPrefetch < seq_len) prefetch_token(seq.row(t + kPrefetch), false);
                const TokenRows<T> x_rows = token_rows(seq.row(t), false);
                forward_step<T, NV, Delta>(state, state, kp, x_rows, value, beta, read, false);
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
        for (int64_t t = t0; t < t1; ++t) {  // the chunk's states S_{t0} .. S_{t1} and read-outs
            if (t + kPrefetch < t1) prefetch_token(seq.row(t + kPrefetch), false);
            else if (t1 - 1 - (t + kPrefetch - t1) >= t0) prefetch_token(seq.row(t1 - 1 - (t + kPrefetch - t1)), true);
            const int64_t r = seq.row(t);
            const TokenRows<T> x_rows = token_rows(r, false);
            vec* rd = s.reads + (t - t0) * NV;
            if (have_reads) load_columns<T, NV>(seq.reads.at(r) + col, width, buffer, rd);
            forward_step<T, NV, Delta>(s.states + (t - t0) * rows, s.states + (t - t0 + 1) * rows, kp, x_rows, value,
                                       beta, rd, have_reads);
        }
        if constexpr (!Delta) {
            if (c == n_chunks - 1) {  // the carry starts from rowsum(grad_final * S_T)
                const vec* last = s.states + (t1 - t0) * rows;
                for (int64_t i = 0; i < kp; ++i) {
                    vec sum{};
                    for (int x = 0; x < NV; ++x) sum += g[i * NV + x] * last[i * NV + x];
                    T total = 0;
                    for (int64_t lane = 0; lane < L; ++lane) total += sum[lane];
                    s.carry[i] = total;
                }
            }
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
            if (t - kPrefetch >= t0) prefetch_token(seq.row(t - kPrefetch), true);
            const vec* prev = s.states + (t - t0) * rows;
            const vec* now = s.states + (t - t0 + 1) * rows;
            const vec* rd = s.reads + (t - t0) * NV;
            const int64_t r = seq.row(t);
            const TokenRows<T> x_rows = token_rows(r, true);
            const T *q = x_rows.q, *k = x_rows.k, *a = x_rows.a, *b = x_rows.b, *w = x_rows.w;
            load_columns<T, NV>(seq.grad_o.at(r) + col, width, buffer, grad_o);
            if (seq.merge) {
                if (seq.grad_merge) {
                    vec o[NV];
                    load_columns<T, NV>(seq.outputs.at(r) + col, width, buffer, o);
                    for (int x = 0; x < NV; ++x) grad_merge[x] += grad_o[x] * o[x];
                }
                for (int x = 0; x < NV; ++x) grad_o[x] *= merge[x];
            }
            // G += scale q do^T, then the V-sized vectors: e = G^T k (the delta rule: dv = beta e and right = -beta e,
            // its update G += k right^T), else dv = G^T k and u = G^T b (`right`)
            vec right[NV], grad_v[NV];
            for (int x = 0; x < NV; ++x) right[x] = grad_v[x] = vec{};
            for (int64_t i = 0; i < kp; ++i)
                for (int x = 0; x < NV; ++x) {
                    g[i * NV + x] += (scale * q[i]) * grad_o[x];
                    if constexpr (!Delta) right[x] += b[i] * g[i * NV + x];
                    grad_v[x] += k[i] * g[i * NV + x];
                }
            vec left[NV];  // what dk takes from G: f = beta (v - r) for the delta rule, v otherwise
            if constexpr (Delta) {
                vec dot{};
                for (int x = 0; x < NV; ++x) {
                    left[x] = beta * (value[x] - rd[x]);
                    dot += grad_v[x] * (value[x] - rd[x]);
                    right[x] = -beta * grad_v[x];
                    grad_v[x] = beta * grad_v[x];
                }
                T total = 0;
                for (int64_t lane = 0; lane < L; ++lane) total += dot[lane];
                T* db = seq.dbeta.at(r);
                *db = seq.add_k ? *db + total : total;
            } else {
                for (int x = 0; x < NV; ++x) left[x] = value[x];
            }
            store_columns<T, NV>(grad_v, width, seq.add_v, seq.dv.at(r) + col);
            // the K-sized gradients, L rows at a time through the transposing sum, and G for the token before:
            // dq = scale S_t do and dk = G left (the delta rule: dk = G f - beta S_{t-1} e), else also db = G r and
            // da = S_{t-1} u; then G <- G + k right^T (delta rule) or diag(w) G + a u^T
            constexpr int P = Delta ? 2 : 4;
            for (int64_t i0 = 0; i0 < kp; i0 += L) {
                vec p[P][L];
                for (int j = 0; j < L; ++j) {
                    const int64_t i = i0 + transpose_sum.order[j], at = i * NV;
                    for (int n = 0; n < P; ++n) p[n][j] = vec{};
                    for (int x = 0; x < NV; ++x) {
                        const vec gx = g[at + x];
                        p[0][j] += now[at + x] * grad_o[x];
                        if constexpr (Delta) {
                            p[1][j] += gx * left[x] + prev[at + x] * right[x];
                            g[at + x] = gx + k[i] * right[x];
                        } else {
                            p[1][j] += gx * left[x];
                            p[2 % P][j] += gx * rd[x];
                            p[3 % P][j] += prev[at + x] * right[x];
                            g[at + x] = w[i] * gx + a[i] * right[x];
                        }
                    }
                }
                const int64_t n_rows = std::min<int64_t>(L, dk - i0);
                const vec grad_q = scale * transpose_sum(p[0]), grad_k = transpose_sum(p[1]);
                store_rows<T>(grad_q, n_rows, seq.add_k, seq.dq.at(r) + i0);
                store_rows<T>(grad_k, n_rows, seq.add_k, seq.dk.at(r) + i0);
                if constexpr (!Delta) {
                    const vec grad_b = transpose_sum(p[2 % P]), grad_a = transpose_sum(p[3 % P]);
                    store_rows<T>(grad_b, n_rows, seq.add_k, seq.db.at(r) + i0);
                    store_rows<T>(grad_a, n_rows, seq.add_k, seq.da.at(r) + i0);
                    // c_t = carry + q dq; dgk_t = c_t - b db - k dk; the carry for t - 1: dgk_t + a da
                    const vec c_t = load_vec(s.carry + i0) + load_vec(q + i0) * grad_q;
                    const vec grad_gk = c_t - load_vec(b + i0) * grad_b - load_vec(k + i0) * grad_k;
                    const vec carry = grad_gk + load_vec(a + i0) * grad_a;
                    std::memcpy(s.carry + i0, &carry, sizeof(carry));
                    store_rows<T>(grad_gk, n_rows, seq.add_k, seq.dgk.at(r) + i0);
                }
            }
        }
    }
    if (seq.grad_initial)
        for (int64_t i = 0; i < dk; ++i) std::memcpy(seq.grad_initial + i * dv + col, &g[i * NV], width * sizeof(T));
    if (seq.grad_merge) store_columns<T, NV>(grad_merge, width, false, seq.grad_merge + col);
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
                       const int64_t* grad_strides, const int64_t* order, const T* merge, T* grad_merge,
                       const T* h0, const T* grad_final, const T* checkpoints, T* grad_initial, T scale,
                       int threads) {
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
                Sequence<T> seq{in(0),  in(1),  in(2),  in(3),  in(4),  in(5),  in(6),  in(7),  in(8),  in(9),
                                out(0), out(1), out(2), out(3), out(4), out(5), out(6),
                                merge ? merge + (di * heads + hi) * dv : nullptr,
                                grad_merge ? grad_merge + sequence * dv : nullptr,
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

// delta = 0: the generalized rule; inputs q, k, v, a, b, w (= exp(gk)), beta (null), grad_o, reads, outputs; grads dq,
// dk, dv, da, db, dgk (of the log-decay), dbeta (null). delta = 1: the plain delta rule; inputs q, k, v, null, null,
// null, beta, grad_o, reads, outputs; grads dq, dk, dv, null, null, null, dbeta. reads: the forward's read-outs
// (recurrent_cpu.cpp), or null (recomputed). Tokens [B, T, H, *] (beta, dbeta [B, T, H]); grad_o, reads and outputs
// (the forward's o) [D, B, T, H, V]; in_strides and grad_strides hold 4 element strides per tensor (batch, token,
// head, direction; the direction's is 0 but for those three). Every gradient is written (no zeroing needed).
// order: [D, T] token rows (step t of direction d reads row order[d * T + t]), or null for D = 1 in row order.
// merge: [D, H, V] weights that merged the directions' outputs, o = sum_d merge[d] * o_d, with grad_o the gradient of
// that sum (direction stride 0), or null; grad_merge: [B, H, D, V], their gradient per batch element (from outputs),
// or null. h0, grad_final, grad_initial [B, H, D, K, V] and the forward's checkpoints [B, H, D, ceil(T / chunk), K, V]
// contiguous, or null (checkpoints: recomputed).
#define RECURRENT_BACKWARD_ENTRY(NAME, T)                                                                            \
    int NAME(int delta, int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk, int64_t dv,        \
             int64_t chunk, const T* const* inputs, const int64_t* in_strides, T* const* grads,                     \
             const int64_t* grad_strides, const int64_t* order, const T* merge, T* grad_merge, const T* h0,         \
             const T* grad_final, const T* checkpoints, T* grad_initial, double scale, int threads) {                \
        return recurrent_backward<T>(delta != 0, batch, seq_len, heads, dirs, dk, dv, chunk, inputs, in_strides,    \
                                     grads, grad_strides, order, merge, grad_merge, h0, grad_final, checkpoints,    \
                                     grad_initial, T(scale), threads);                                              \
    }
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f32, float)
RECURRENT_BACKWARD_ENTRY(recurrent_backward_f64, double)
}
