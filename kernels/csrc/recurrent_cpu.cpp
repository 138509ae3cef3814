// Fused token-by-token recurrences for the CPU (forward), the equations of kernels/naive.py with the K x V state
// in registers and cache:
//   generalized rule (eq. 5):  S <- diag(w_t) S + b_t (a_t^T S) + k_t v_t^T,   o_t = scale S^T q_t
//   plain delta rule (eq. 6):  S <- S + k_t (beta_t (v_t - S^T k_t))^T,        o_t = scale S^T q_t
// Each (batch, head) sequence may be read in several orders (the 2D scan's directions): step t of direction d
// reads and writes token row order[d * T + t], so the orders cost no gathered copy and the outputs land in
// row-major position. The columns of S evolve independently, so each (batch, head, direction) sequence is split
// into groups of at most four vectors of columns, one thread per (sequence, group). When asked, the state before
// every chunk-th step is kept for the backward (recurrent_backward_cpu.cpp), which then need not recompute it, and
// so is every step's read-out a^T S_{t-1} (k^T S_{t-1} for the delta rule), which spares it one pass per token.
// Built by kernels/fused_cpu.py; see kernels/README.md.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "simd.h"

namespace {

struct Inputs {  // per tensor: base pointer of the sequence and its token stride (feature stride 1)
    const void *q, *k, *v, *a, *b, *w, *beta;
    int64_t tq, tk, tv, ta, tb, tw, tbeta;
};

struct Saved {        // what the backward keeps of one sequence, or nulls
    void* checkpoints;  // [N, K, V]: the state before steps 0, chunk, 2 chunk, ...
    int64_t chunk;
    void* reads;        // the read-outs, at the outputs' positions and strides
};

// NV vectors of columns [col, col + NV * lanes) of one sequence; `state` holds dk rows of NV vectors.
template <typename T, int NV, bool Delta>
void columns(const Inputs& in, const int64_t* order, int64_t seq_len, int64_t dk, int64_t dv, int64_t col, T* out,
             int64_t tout, typename Simd<T>::type* state, T scale, const Saved& saved) {
    typedef typename Simd<T>::type vec;
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t width = std::min<int64_t>(NV * L, dv - col);  // real columns in this group
    const bool full = width == NV * L;  // else values and outputs go through a zero-padded buffer
    alignas(64) T staged[NV * L];
    std::memset(staged, 0, sizeof(staged));
    auto token_row = [&](int64_t step) { return order ? order[step] : step; };  // the token row a step reads
    auto read_along = [&](int64_t t) {  // what the read-out a^T S runs along: a, or k for the delta rule
        return Delta ? static_cast<const T*>(in.k) + t * in.tk : static_cast<const T*>(in.a) + t * in.ta;
    };
    // The read-out a^T S of each step (k^T S for the delta rule), even and odd rows in two partial sums, which halves
    // the dependency chains. Step 0's takes a pass of its own; every later one is summed in the update pass of the
    // step before, as its rows of S come out, so that each step reads and writes the state once.
    vec read[NV], read_odd[NV];
    for (int x = 0; x < NV; ++x) read[x] = read_odd[x] = vec{};
    if (seq_len > 0) {
        const T* a = read_along(token_row(0));
        for (int64_t d = 0; d < dk; ++d)
            for (int x = 0; x < NV; ++x) read[x] += a[d] * state[d * NV + x];
    }
    for (int64_t step = 0, next_checkpoint = 0; step < seq_len; ++step) {
        if (saved.checkpoints && step == next_checkpoint) {  // the state before steps 0, chunk, 2 chunk, ...
            T* kept = static_cast<T*>(saved.checkpoints) + (step / saved.chunk) * dk * dv + col;
            for (int64_t d = 0; d < dk; ++d) std::memcpy(kept + d * dv, &state[d * NV], width * sizeof(T));
            next_checkpoint += saved.chunk;
        }
        const int64_t t = token_row(step);  // the token row this step reads and writes
        if (step + kPrefetch < seq_len) {
            const int64_t ahead = token_row(step + kPrefetch);
            prefetch_row(static_cast<const T*>(in.q) + ahead * in.tq, dk);
            prefetch_row(static_cast<const T*>(in.k) + ahead * in.tk, dk);
            prefetch_row(static_cast<const T*>(in.v) + ahead * in.tv + col, width);
            if (!Delta) {
                prefetch_row(static_cast<const T*>(in.a) + ahead * in.ta, dk);
                prefetch_row(static_cast<const T*>(in.b) + ahead * in.tb, dk);
                prefetch_row(static_cast<const T*>(in.w) + ahead * in.tw, dk);
            }
        }
        const T* q = static_cast<const T*>(in.q) + t * in.tq;
        const T* k = static_cast<const T*>(in.k) + t * in.tk;
        const T* v = static_cast<const T*>(in.v) + t * in.tv + col;
        // the next step's read-out runs along this row (the last step's is computed and dropped)
        const T* a_next = read_along(token_row(std::min(step + 1, seq_len - 1)));
        if (!full)
            for (int64_t e = 0; e < width; ++e) staged[e] = v[e];
        vec value[NV], output[NV], output_odd[NV];
        vec add[NV];  // the rank-one terms' V-side vector: beta (v - k^T S), or the read-out for b
        for (int x = 0; x < NV; ++x) {
            // fixed-size memcpy: an unaligned vector load (a call to memcpy per token would cost as much as the math)
            std::memcpy(&value[x], full ? v + x * L : staged + x * L, sizeof(vec));
            output[x] = output_odd[x] = vec{};
            add[x] = read[x] + read_odd[x];
            read[x] = read_odd[x] = vec{};
        }
        if (saved.reads) {
            T* kept = static_cast<T*>(saved.reads) + t * tout + col;
            if (full) {
                std::memcpy(kept, add, sizeof(add));
            } else {
                std::memcpy(staged, add, sizeof(add));
                for (int64_t e = 0; e < width; ++e) kept[e] = staged[e];
            }
        }
        const T* b = nullptr;
        const T* w = nullptr;
        if (Delta) {
            const T beta = static_cast<const T*>(in.beta)[t * in.tbeta];
            for (int x = 0; x < NV; ++x) add[x] = beta * (value[x] - add[x]);
        } else {
            b = static_cast<const T*>(in.b) + t * in.tb;
            w = static_cast<const T*>(in.w) + t * in.tw;
        }
        // S <- S + k add^T (delta rule) or S <- diag(w) S + b add^T + k v^T, the output q^T S and the next step's
        // read-out, two rows a step
        auto update = [&](int64_t row, vec* out, vec* next_read) {
            for (int x = 0; x < NV; ++x) {
                vec s = state[row * NV + x];
                s = Delta ? s + k[row] * add[x] : w[row] * s + b[row] * add[x] + k[row] * value[x];
                state[row * NV + x] = s;
                out[x] += q[row] * s;
                next_read[x] += a_next[row] * s;
            }
        };
        int64_t d = 0;
        for (; d + 1 < dk; d += 2) {
            update(d, output, read);
            update(d + 1, output_odd, read_odd);
        }
        if (d < dk) update(d, output, read);
        T* o = out + t * tout + col;
        for (int x = 0; x < NV; ++x) {
            const vec result = scale * (output[x] + output_odd[x]);
            if (full) {
                std::memcpy(o + x * L, &result, sizeof(vec));
            } else {
                std::memcpy(staged + x * L, &result, sizeof(vec));
            }
        }
        if (!full)
            for (int64_t e = 0; e < width; ++e) o[e] = staged[e];
    }
}

template <typename T, bool Delta>
int recurrent_forward(int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk, int64_t dv,
                      const Inputs& base, const int64_t* const* strides, const int64_t* order, T* o,
                      const int64_t* so, T* reads, const T* h0, T* ht, T* checkpoints, int64_t chunk, T scale,
                      int threads) {
    typedef typename Simd<T>::type vec;
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t groups = (dv + 4 * L - 1) / (4 * L), jobs = batch * heads * dirs * groups;
    const int64_t n_chunks = (seq_len + chunk - 1) / chunk;
#pragma omp parallel num_threads(threads)
    {
        vec* state = static_cast<vec*>(std::aligned_alloc(64, dk * 4 * sizeof(vec)));
#pragma omp for schedule(static)
        for (int64_t job = 0; job < jobs; ++job) {
            // sequence = (batch, head, direction), its states at [sequence, K, V] of h0 / ht / checkpoints
            const int64_t sequence = job / groups, col = (job % groups) * 4 * L;
            const int64_t bi = sequence / (heads * dirs), hi = sequence / dirs % heads, di = sequence % dirs;
            const int64_t nv = std::min<int64_t>(4, (dv - col + L - 1) / L);
            // move every pointer to this sequence: strides[i] = (batch, token, head) of tensor i (q k v a b w beta)
            const void* const pointers[] = {base.q, base.k, base.v, base.a, base.b, base.w, base.beta};
            const void* moved[7];
            int64_t token[7];
            for (int i = 0; i < 7; ++i) {
                moved[i] = pointers[i] ? static_cast<const T*>(pointers[i]) + bi * strides[i][0] + hi * strides[i][2]
                                       : nullptr;
                token[i] = strides[i][1];
            }
            const Inputs in{moved[0], moved[1], moved[2], moved[3], moved[4], moved[5], moved[6],
                            token[0], token[1], token[2], token[3], token[4], token[5], token[6]};
            T* s = reinterpret_cast<T*>(state);
            std::memset(s, 0, dk * nv * L * sizeof(T));
            const int64_t width = std::min<int64_t>(nv * L, dv - col), offset = sequence * dk * dv;
            if (h0)
                for (int64_t d = 0; d < dk; ++d) std::memcpy(s + d * nv * L, h0 + offset + d * dv + col, width * sizeof(T));
            const int64_t out_offset = bi * so[0] + hi * so[2] + di * so[3];
            T* out = o + out_offset;
            const int64_t* steps = order ? order + di * seq_len : nullptr;
            const Saved saved{checkpoints ? checkpoints + sequence * n_chunks * dk * dv : nullptr, chunk,
                              reads ? reads + out_offset : nullptr};
            switch (nv) {
                case 1: columns<T, 1, Delta>(in, steps, seq_len, dk, dv, col, out, so[1], state, scale, saved); break;
                case 2: columns<T, 2, Delta>(in, steps, seq_len, dk, dv, col, out, so[1], state, scale, saved); break;
                case 3: columns<T, 3, Delta>(in, steps, seq_len, dk, dv, col, out, so[1], state, scale, saved); break;
                default: columns<T, 4, Delta>(in, steps, seq_len, dk, dv, col, out, so[1], state, scale, saved); break;
            }
            if (ht)
                for (int64_t d = 0; d < dk; ++d) std::memcpy(ht + offset + d * dv + col, s + d * nv * L, width * sizeof(T));
        }
        std::free(state);
    }
    return 0;
}

template <typename T>
int dispatch(bool delta, int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk, int64_t dv,
             const T* q, const int64_t* sq, const T* k, const int64_t* sk, const T* v, const int64_t* sv, const T* a,
             const int64_t* sa, const T* b, const int64_t* sb, const T* w, const int64_t* sw, const T* beta,
             const int64_t* sbeta, const int64_t* order, T* o, const int64_t* so, T* reads, const T* h0, T* ht,
             T* checkpoints, int64_t chunk, double scale, int threads) {
    const Inputs base{q, k, v, a, b, w, beta, 0, 0, 0, 0, 0, 0, 0};
    static const int64_t none[3] = {0, 0, 0};
    const int64_t* const strides[] = {sq, sk, sv, sa ? sa : none, sb ? sb : none, sw ? sw : none,
                                      sbeta ? sbeta : none};
    if (delta)
        return recurrent_forward<T, true>(batch, seq_len, heads, dirs, dk, dv, base, strides, order, o, so, reads, h0,
                                          ht, checkpoints, chunk, T(scale), threads);
    return recurrent_forward<T, false>(batch, seq_len, heads, dirs, dk, dv, base, strides, order, o, so, reads, h0,
                                       ht, checkpoints, chunk, T(scale), threads);
}

}  // namespace

extern "C" {

// Shapes: q, k, a, b, w [B, T, H, K] (w = exp(gk)); v [B, T, H, V]; beta [B, T, H]; each s* holds the (batch,
// token, head) element strides of its tensor. o [D, B, T, H, V] with its (batch, token, head, direction) strides
// in so; reads, the read-outs for the backward, like o or null. order: [D, T] token rows (step t of direction d
// reads row order[d * T + t]), or null for D = 1 in row order. States h0, ht [B, H, D, K, V] and checkpoints
// [B, H, D, ceil(T / chunk), K, V] contiguous, or null.
// delta = 1: the plain delta rule (a, b, w unused, may be null); delta = 0: the generalized rule (beta unused).
#define RECURRENT_ENTRY(NAME, T)                                                                                     \
    int NAME(int delta, int64_t batch, int64_t seq_len, int64_t heads, int64_t dirs, int64_t dk, int64_t dv,        \
             const T* q, const int64_t* sq, const T* k, const int64_t* sk, const T* v, const int64_t* sv,            \
             const T* a, const int64_t* sa, const T* b, const int64_t* sb, const T* w, const int64_t* sw,            \
             const T* beta, const int64_t* sbeta, const int64_t* order, T* o, const int64_t* so, T* reads,           \
             const T* h0, T* ht, T* checkpoints, int64_t chunk, double scale, int threads) {                         \
        return dispatch<T>(delta != 0, batch, seq_len, heads, dirs, dk, dv, q, sq, k, sk, v, sv, a, sa, b, sb, w,    \
                           sw, beta, sbeta, order, o, so, reads, h0, ht, checkpoints, chunk, scale, threads);        \
    }
RECURRENT_ENTRY(recurrent_forward_f32, float)
RECURRENT_ENTRY(recurrent_forward_f64, double)
}
