// Fused chunkwise delta rule for the CPU (forward): the algorithm of kernels/chunk.py, one sequence (batch, head)
// per thread, chunk after chunk, with every intermediate of a chunk in the core's L1/L2 cache.
//
// Per chunk of C tokens (rows are tokens; S is the K x V state at the start of the chunk):
//   A = strict_tril(diag(beta) K K^T)             P = tril(Q K^T)
//   (I + A) [W U] = [diag(beta) K, diag(beta) V]   (UT transform, forward substitution, in place)
//   U <- U - W S                                    (the corrections)
//   O = scale * (Q S + P U)                         S <- S + K^T U
// Only the lower triangles of A and P are computed. Built by kernels/fused_cpu.py; see kernels/README.md.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "simd.h"

namespace {

// Padded row-major buffers of a chunk: every row is a whole number of vectors and starts 64-byte aligned.
template <typename T> struct Workspace {
    typedef typename Simd<T>::type vec;
    static constexpr int64_t lanes = 64 / sizeof(T);
    int64_t kp, vp, cp;  // K, V and C rounded up to whole vectors
    vec *q, *kt, *wu, *a, *p, *s, *o;  // q: C x Kp, kt: Kp x Cp, wu: C x (Kp + Vp), a, p: C x Cp, s: Kp x Vp
    void* memory;

    Workspace(int64_t dk, int64_t dv, int64_t chunk) {
        kp = (dk + lanes - 1) / lanes * lanes;
        vp = (dv + lanes - 1) / lanes * lanes;
        cp = (chunk + lanes - 1) / lanes * lanes;
        const int64_t sizes[] = {cp * kp, kp * cp, cp * (kp + vp), cp * cp, cp * cp, kp * vp, 4 * vp};
        int64_t total = 0;
        for (int64_t n : sizes) total += n;
        memory = std::aligned_alloc(64, total * sizeof(T));
        std::memset(memory, 0, total * sizeof(T));
        vec** slots[] = {&q, &kt, &wu, &a, &p, &s, &o};
        T* at = static_cast<T*>(memory);
        for (int i = 0; i < 7; ++i) {
            *slots[i] = reinterpret_cast<vec*>(at);
            at += sizes[i];
        }
    }
    ~Workspace() { std::free(memory); }
};

// out[r][x] = (accumulate ? out[r][x] : 0) + alpha * sum_{d < depth} a[r * lda + d] * b[d * ldb + x]
// for 4 rows r and NV vectors x: 4 * NV accumulators stay in registers (NV <= 4).
template <typename T, int NV>
inline void tile4(const T* a, int64_t lda, const typename Simd<T>::type* b, int64_t ldb, int64_t depth,
                  typename Simd<T>::type* out, int64_t ldo, T alpha, bool accumulate) {
    typedef typename Simd<T>::type vec;
    vec acc[4][NV];
    for (int r = 0; r < 4; ++r)
        for (int x = 0; x < NV; ++x) acc[r][x] = vec{} ;
    for (int64_t d = 0; d < depth; ++d) {
        vec bx[NV];
        for (int x = 0; x < NV; ++x) bx[x] = b[d * ldb + x];
        for (int r = 0; r < 4; ++r) {
            const T ad = a[r * lda + d];
            for (int x = 0; x < NV; ++x) acc[r][x] += ad * bx[x];
        }
    }
    for (int r = 0; r < 4; ++r)
        for (int x = 0; x < NV; ++x)
            out[r * ldo + x] = accumulate ? out[r * ldo + x] + alpha * acc[r][x] : alpha * acc[r][x];
}

// tile4 over any number of vectors, four at a time.
template <typename T>
void rows4(const T* a, int64_t lda, const typename Simd<T>::type* b, int64_t ldb, int64_t depth, int64_t nvec,
           typename Simd<T>::type* out, int64_t ldo, T alpha, bool accumulate) {
    for (int64_t x = 0; x < nvec; x += 4) {
        switch (std::min<int64_t>(4, nvec - x)) {
            case 1: tile4<T, 1>(a, lda, b + x, ldb, depth, out + x, ldo, alpha, accumulate); break;
            case 2: tile4<T, 2>(a, lda, b + x, ldb, depth, out + x, ldo, alpha, accumulate); break;
            case 3: tile4<T, 3>(a, lda, b + x, ldb, depth, out + x, ldo, alpha, accumulate); break;
            default: tile4<T, 4>(a, lda, b + x, ldb, depth, out + x, ldo, alpha, accumulate); break;
        }
    }
}

template <typename T>
void one_sequence(Workspace<T>& w, int64_t seq_len, int64_t dk, int64_t dv, int64_t chunk, const T* q, Strides sq,
                  const T* k, Strides sk, const T* v, Strides sv, const T* beta, Strides sb, T* o, Strides so,
                  const T* h0, T* ht, T scale) {
    typedef typename Simd<T>::type vec;
    const int64_t L = Workspace<T>::lanes, kp = w.kp, vp = w.vp, cp = w.cp;
    const int64_t nk = kp / L, nv = vp / L, nwu = nk + nv, nc = cp / L;
    T* qs = reinterpret_cast<T*>(w.q);
    T* kts = reinterpret_cast<T*>(w.kt);
    T* wus = reinterpret_cast<T*>(w.wu);
    T* as = reinterpret_cast<T*>(w.a);
    T* ps = reinterpret_cast<T*>(w.p);
    T* ss = reinterpret_cast<T*>(w.s);
    T* os = reinterpret_cast<T*>(w.o);
    std::memset(ss, 0, kp * vp * sizeof(T));
    if (h0)
        for (int64_t d = 0; d < dk; ++d) std::memcpy(ss + d * vp, h0 + d * dv, dv * sizeof(T));

    for (int64_t t0 = 0; t0 < seq_len; t0 += chunk) {
        const int64_t c = std::min(chunk, seq_len - t0);
        const int64_t c4 = (c + 3) / 4 * 4;  // rows are processed four at a time; rows c..c4 are zero
        for (int64_t i = 0; i < c4; ++i) {
            T* qi = qs + i * kp;
            T* wui = wus + i * (kp + vp);
            std::memset(qi, 0, kp * sizeof(T));
            std::memset(wui, 0, (kp + vp) * sizeof(T));
            for (int64_t d = 0; d < kp; ++d) kts[d * cp + i] = 0;
            if (i >= c) continue;
            const int64_t t = t0 + i;
            const T* qt = q + t * sq.token;
            const T* kt = k + t * sk.token;
            const T* vt = v + t * sv.token;
            const T b = beta[t * sb.token];
            for (int64_t d = 0; d < dk; ++d) {
                qi[d] = qt[d];
                kts[d * cp + i] = kt[d];
                wui[d] = b * kt[d];
            }
            for (int64_t e = 0; e < dv; ++e) wui[kp + e] = b * vt[e];
        }
        // A = diag(beta) K K^T and P = Q K^T, row blocks of 4, columns up to the block's diagonal.
        for (int64_t i0 = 0; i0 < c4; i0 += 4) {
            const int64_t cols = std::min(nc, (i0 + 4 + L - 1) / L);
            rows4<T>(wus + i0 * (kp + vp), kp + vp, w.kt, nc, dk, cols, w.a + i0 * nc, nc, T(1), false);
            rows4<T>(qs + i0 * kp, kp, w.kt, nc, dk, cols, w.p + i0 * nc, nc, T(1), false);
            for (int64_t r = 0; r < 4; ++r)  // P is causal: clear the block's entries above the diagonal
                for (int64_t j = i0 + r + 1; j < cols * L; ++j) ps[(i0 + r) * cp + j] = 0;
        }
        // (I + A) [W U] = [diag(beta) K, diag(beta) V]: each row block first takes the solved rows above it in
        // one tile product, then the block's own triangle row by row.
        for (int64_t i0 = 0; i0 < c4; i0 += 4) {
            if (i0 > 0) rows4<T>(as + i0 * cp, cp, w.wu, nwu, i0, nwu, w.wu + i0 * nwu, nwu, T(-1), true);
            for (int64_t r = 1; r < 4; ++r) {
                vec* row = w.wu + (i0 + r) * nwu;
                for (int64_t j = 0; j < r; ++j) {
                    const T aij = as[(i0 + r) * cp + i0 + j];
                    const vec* src = w.wu + (i0 + j) * nwu;
                    for (int64_t x = 0; x < nwu; ++x) row[x] -= aij * src[x];
                }
            }
        }
        // U <- U - W S (the corrections), then O = scale (Q S + P U) with the chunk-start S, then S <- S + K^T U.
        for (int64_t i0 = 0; i0 < c4; i0 += 4)
            rows4<T>(wus + i0 * (kp + vp), kp + vp, w.s, nv, dk, nv, w.wu + i0 * nwu + nk, nwu, T(-1), true);
        for (int64_t i0 = 0; i0 < c4; i0 += 4) {
            rows4<T>(qs + i0 * kp, kp, w.s, nv, dk, nv, w.o, nv, scale, false);
            rows4<T>(ps + i0 * cp, cp, w.wu + nk, nwu, i0 + 4, nv, w.o, nv, scale, true);
            for (int64_t r = 0; r < 4 && i0 + r < c; ++r)
                std::memcpy(o + (t0 + i0 + r) * so.token, os + r * vp, dv * sizeof(T));
        }
        for (int64_t d0 = 0; d0 < kp; d0 += 4)
            rows4<T>(kts + d0 * cp, cp, w.wu + nk, nwu, c4, nv, w.s + d0 * nv, nv, T(1), true);
    }
    if (ht)
        for (int64_t d = 0; d < dk; ++d) std::memcpy(ht + d * dv, ss + d * vp, dv * sizeof(T));
}

template <typename T>
int delta_rule_forward(int64_t batch, int64_t seq_len, int64_t heads, int64_t dk, int64_t dv, int64_t chunk,
                       const T* q, const int64_t* sq, const T* k, const int64_t* sk, const T* v, const int64_t* sv,
                       const T* beta, const int64_t* sb, T* o, const int64_t* so, const T* h0, T* ht, T scale,
                       int threads) {
    const int64_t groups = batch * heads;
    auto strides = [](const int64_t* s) { return Strides{s[0], s[1], s[2]}; };
    const Strides tq = strides(sq), tk = strides(sk), tv = strides(sv), tb = strides(sb), to = strides(so);
#pragma omp parallel num_threads(threads)
    {
        Workspace<T> w(dk, dv, chunk);
#pragma omp for schedule(static)
        for (int64_t g = 0; g < groups; ++g) {
            const int64_t b = g / heads, h = g % heads;
            const int64_t state = g * dk * dv;  // [B, H, K, V], contiguous
            one_sequence<T>(w, seq_len, dk, dv, chunk, q + b * tq.batch + h * tq.head, tq,
                            k + b * tk.batch + h * tk.head, tk, v + b * tv.batch + h * tv.head, tv,
                            beta + b * tb.batch + h * tb.head, tb, o + b * to.batch + h * to.head, to,
                            h0 ? h0 + state : nullptr, ht ? ht + state : nullptr, scale);
        }
    }
    return 0;
}

}  // namespace

extern "C" {

// Shapes: q, k [B, T, H, K]; v, o [B, T, H, V]; beta [B, T, H]; states [B, H, K, V] contiguous (or null).
// Each s* holds the (batch, token, head) element strides of its tensor; the last dimension must be contiguous.
int delta_rule_forward_f32(int64_t batch, int64_t seq_len, int64_t heads, int64_t dk, int64_t dv, int64_t chunk,
                           const float* q, const int64_t* sq, const float* k, const int64_t* sk, const float* v,
                           const int64_t* sv, const float* beta, const int64_t* sb, float* o, const int64_t* so,
                           const float* h0, float* ht, double scale, int threads) {
    return delta_rule_forward<float>(batch, seq_len, heads, dk, dv, chunk, q, sq, k, sk, v, sv, beta, sb, o, so, h0,
                                     ht, static_cast<float>(scale), threads);
}

int delta_rule_forward_f64(int64_t batch, int64_t seq_len, int64_t heads, int64_t dk, int64_t dv, int64_t chunk,
                           const double* q, const int64_t* sq, const double* k, const int64_t* sk, const double* v,
                           const int64_t* sv, const double* beta, const int64_t* sb, double* o, const int64_t* so,
                           const double* h0, double* ht, double scale, int threads) {
    return delta_rule_forward<double>(batch, seq_len, heads, dk, dv, chunk, q, sq, k, sk, v, sv, beta, sb, o, so,
                                      h0, ht, scale, threads);
}
}
