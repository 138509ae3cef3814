// Fused selective scan (Mamba's S6) for the CPU, forward and backward: the recurrence of kernels/selective_scan.py,
// per (batch, channel) sequence with its N-entry state in registers:
//   Δ_t = softplus(δ_t + bias) (or δ_t + bias),   h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t u_t B_t,   y_t = C_t·h_t + D u_t
// B and C are shared by the channels of a group. The state is S vectors of W lanes (N zero-padded to S W: a padded
// entry has A = B = C = 0 and stays 0). Tokens go in tiles of W, so that the per-token dot products C_t·h_t come out
// of one transposing sum per tile (vector_math.h's lane_sums) and the per-token scalars (Δ, softplus, D u) are
// computed for W tokens at once. States of more than 4 vectors are scanned in slices of at most 4 (the recurrence is
// independent per state entry; y and the gradients of u and δ add up over the slices).
//
// Backward, a reverse sweep with G = dL/dh_t (G_t = C_t dy_t + exp(Δ_{t+1} A) ⊙ G_{t+1}):
//   dC_t = dy_t h_t    dB_t = Δ_t u_t G_t    dA += Δ_t (G_t ⊙ e_t ⊙ h_{t-1})    (e_t = exp(Δ_t A))
//   du_t = Δ_t (G_t·B_t) + D dy_t    dΔ_t = A·(G_t ⊙ e_t ⊙ h_{t-1}) + u_t (G_t·B_t)    dδ_t = dΔ_t softplus'(δ_t + bias)
// h_{t-1} comes from checkpoints: the forward, when gradients are needed, stores the state entering every chunk of
// `chunk` tokens, and the backward recomputes one chunk's states and decays into a per-thread buffer before sweeping
// it. Storing every state instead would cost N times the input (16x at N = 16: hundreds of MB for one MambaIR layer
// at batch 16), while the checkpoints cost N / chunk of it and the recomputation one more forward pass.
// dB and dC sum over the channels of a group: the backward runs one thread per (batch, group, block of channels)
// into that block's own [L, N] slice (the caller sums over the blocks), so no two threads write the same row.
// Built by kernels/fused_cpu.py (kernels/selective_scan_fused.py calls it); see kernels/README.md.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "vector_math.h"

namespace {

constexpr int MAX_SLICE = 4;  // state vectors scanned together (kept in registers)

// Layouts: u, δ, y and their gradients [batch, channels, L]; A [channels, N]; B, C [batch, groups, L, N] (a token's
// projection is one contiguous row); checkpoints [batch, channels, chunks, N]; all contiguous, N the padded state.
template <typename T> struct Problem {
    int64_t batch, channels, groups, seq_len, state, lanes, chunk, blocks;
    const T *u, *delta, *A, *B, *C, *D, *bias;
    bool softplus;

    int64_t per_group() const { return channels / groups; }
    int64_t n_chunks() const { return (seq_len + chunk - 1) / chunk; }
    int64_t sequence(int64_t bi, int64_t di) const { return bi * channels + di; }
    // offset of the (batch, group) block of B and C read by channel di
    int64_t projection(int64_t bi, int64_t di) const { return (bi * groups + di / per_group()) * seq_len * state; }
};

template <typename T> struct Gradients {
    const T *checkpoints, *grad_y;
    T *du, *ddelta, *dA, *dB, *dC, *dD, *dbias;  // dA [batch, channels, N]; dB, dC [batch, groups, blocks, L, N];
                                                 // dD, dbias [batch, channels] (the caller sums over the batch)
};

template <typename T, int W>
inline Vec<T, W> step_sizes(const Problem<T>& p, const T* delta, int64_t count, T bias) {
    const Vec<T, W> x = load_head<T, W>(delta, count) + bias;
    return p.softplus ? VectorMath<T, W>::softplus(x) : x;
}

// One slice of S state vectors (lanes lane0 .. lane0 + S W) of sequence (bi, di); the first slice writes y (with
// D u), later ones add to it.
template <typename T, int W, int S>
void forward_slice(const Problem<T>& p, int64_t bi, int64_t di, int64_t lane0, T* y, T* checkpoints) {
    typedef Vec<T, W> V;
    const bool first = lane0 == 0;
    const int64_t L = p.seq_len, N = p.state, row = p.sequence(bi, di) * L;
    const T *u = p.u + row, *delta = p.delta + row;
    const T *B = p.B + p.projection(bi, di) + lane0, *C = p.C + p.projection(bi, di) + lane0;
    const T bias = p.bias ? p.bias[di] : T(0), skip = first && p.D ? p.D[di] : T(0);
    T* saved = checkpoints ? checkpoints + p.sequence(bi, di) * p.n_chunks() * N + lane0 : nullptr;
    V a[S], h[S];
    for (int s = 0; s < S; ++s) {
        a[s] = load<T, W>(p.A + di * N + lane0 + s * W);
        h[s] = V{};
    }
    alignas(64) T step[W], input[W];  // Δ and Δ u of the tile's tokens
    V terms[W];
    for (int64_t t0 = 0; t0 < L; t0 += W) {
        const int64_t count = std::min<int64_t>(W, L - t0);
        if (saved && t0 % p.chunk == 0)
            for (int s = 0; s < S; ++s) store<T, W>(saved + t0 / p.chunk * N + s * W, h[s]);
        const V x = load_head<T, W>(u + t0, count), dt = step_sizes<T, W>(p, delta + t0, count, bias);
        store<T, W>(step, dt);
        store<T, W>(input, dt * x);
        for (int64_t j = 0; j < count; ++j) {
            const T *Bt = B + (t0 + j) * N, *Ct = C + (t0 + j) * N;
            V acc{};
            for (int s = 0; s < S; ++s) {
                const V e = VectorMath<T, W>::exp(step[j] * a[s]);
                h[s] = e * h[s] + input[j] * load<T, W>(Bt + s * W);
                acc += load<T, W>(Ct + s * W) * h[s];
            }
            terms[j] = acc;
        }
        for (int64_t j = count; j < W; ++j) terms[j] = V{};
        store_head<T, W>(y + row + t0, lane_sums<T, W>(terms) + skip * x, count, !first);
    }
}

template <typename T> struct Scratch {  // per thread: one chunk's Δ, Δ u, states (chunk + 1 of them) and decays
    T *step, *input, *states, *decays;
    void* memory;

    Scratch(int64_t chunk, int64_t lanes) {
        const int64_t slice = MAX_SLICE * lanes, total = 2 * chunk + (2 * chunk + 1) * slice;
        memory = std::aligned_alloc(64, (total * sizeof(T) + 63) / 64 * 64);
        step = static_cast<T*>(memory);
        input = step + chunk;
        states = input + chunk;
        decays = states + (chunk + 1) * slice;
    }
    ~Scratch() { std::free(memory); }
};

// The reverse sweep of one slice of sequence (bi, di), accumulating dB, dC into its block's slice; du, dδ and the
// bias gradient are written by the first slice and added to by later ones (they are sums over the state entries).
template <typename T, int W, int S>
void backward_slice(const Problem<T>& p, const Gradients<T>& g, int64_t bi, int64_t di, int64_t block,
                    int64_t lane0, Scratch<T>& scratch) {
    typedef Vec<T, W> V;
    const bool first = lane0 == 0;
    const int64_t L = p.seq_len, N = p.state, row = p.sequence(bi, di) * L;
    const T *u = p.u + row, *delta = p.delta + row, *dy = g.grad_y + row;
    const T *B = p.B + p.projection(bi, di) + lane0, *C = p.C + p.projection(bi, di) + lane0;
    const int64_t group_block = (bi * p.groups + di / p.per_group()) * p.blocks + block;
    T *dB = g.dB + group_block * L * N + lane0, *dC = g.dC + group_block * L * N + lane0;
    const T* saved = g.checkpoints + p.sequence(bi, di) * p.n_chunks() * N + lane0;
    const T bias = p.bias ? p.bias[di] : T(0), skip = first && p.D ? p.D[di] : T(0);
    V a[S], G[S], dA[S];
    for (int s = 0; s < S; ++s) {
        a[s] = load<T, W>(p.A + di * N + lane0 + s * W);
        G[s] = dA[s] = V{};
    }
    V* states = reinterpret_cast<V*>(scratch.states);  // [chunk + 1][S]: h before and after each token
    V* decays = reinterpret_cast<V*>(scratch.decays);  // [chunk][S]
    T dD = 0, dbias = 0;
    V via_input[W], via_step[W];  // per token of a tile: G·B and A·(G ⊙ e ⊙ h_{t-1}), summed by lane_sums
    for (int64_t c = p.n_chunks() - 1; c >= 0; --c) {
        const int64_t t0 = c * p.chunk, t1 = std::min(L, t0 + p.chunk);
        for (int64_t tile = t0; tile < t1; tile += W) {  // the chunk is a whole number of tiles (the caller's choice)
            const int64_t count = std::min<int64_t>(W, t1 - tile);
            const V dt = step_sizes<T, W>(p, delta + tile, count, bias);
            store<T, W>(scratch.step + (tile - t0), dt);
            store<T, W>(scratch.input + (tile - t0), dt * load_head<T, W>(u + tile, count));
        }
        for (int s = 0; s < S; ++s) states[s] = load<T, W>(saved + c * N + s * W);
        for (int64_t k = 0; k < t1 - t0; ++k)
            for (int s = 0; s < S; ++s) {
                const V e = VectorMath<T, W>::exp(scratch.step[k] * a[s]);
                decays[k * S + s] = e;
                states[(k + 1) * S + s] = e * states[k * S + s] + scratch.input[k] * load<T, W>(B + (t0 + k) * N + s * W);
            }
        for (int64_t tile = t0 + (t1 - t0 - 1) / W * W; tile >= t0; tile -= W) {
            const int64_t count = std::min<int64_t>(W, t1 - tile);
            const V grad_out = load_head<T, W>(dy + tile, count);
            alignas(64) T grad[W];
            store<T, W>(grad, grad_out);
            for (int64_t j = count; j < W; ++j) via_input[j] = via_step[j] = V{};
            for (int64_t j = count - 1; j >= 0; --j) {
                const int64_t t = tile + j, k = t - t0;
                const T dt = scratch.step[k], dtu = scratch.input[k];
                V sum_input{}, sum_step{};
                for (int s = 0; s < S; ++s) {
                    const int64_t at = t * N + s * W;
                    const V e = decays[k * S + s];
                    G[s] += grad[j] * load<T, W>(C + at);
                    store<T, W>(dC + at, load<T, W>(dC + at) + grad[j] * states[(k + 1) * S + s]);
                    store<T, W>(dB + at, load<T, W>(dB + at) + dtu * G[s]);
                    const V r = G[s] * e * states[k * S + s];
                    dA[s] += dt * r;
                    sum_input += G[s] * load<T, W>(B + at);
                    sum_step += a[s] * r;
                    G[s] *= e;
                }
                via_input[j] = sum_input;
                via_step[j] = sum_step;
            }
            // vectors over the tile's tokens (lanes past `count` are zero: their sums and dy are)
            const V q_input = lane_sums<T, W>(via_input), q_step = lane_sums<T, W>(via_step);
            const V x = load_head<T, W>(u + tile, count), dt = load<T, W>(scratch.step + (tile - t0));
            V grad_step = q_step + x * q_input;
            if (p.softplus) grad_step *= VectorMath<T, W>::sigmoid(load_head<T, W>(delta + tile, count) + bias);
            store_head<T, W>(g.du + row + tile, dt * q_input + skip * grad_out, count, !first);
            store_head<T, W>(g.ddelta + row + tile, grad_step, count, !first);
            dbias += sum_lanes<T, W>(grad_step);
            if (first) dD += sum_lanes<T, W>(grad_out * x);
        }
    }
    for (int s = 0; s < S; ++s) store<T, W>(g.dA + p.sequence(bi, di) * N + lane0 + s * W, dA[s]);
    if (g.dD && first) g.dD[p.sequence(bi, di)] = dD;
    if (g.dbias) g.dbias[p.sequence(bi, di)] = first ? dbias : g.dbias[p.sequence(bi, di)] + dbias;
}

// Runs `slice(lane0, S)` over the state in slices of at most MAX_SLICE vectors, S a compile-time constant.
template <int W, typename Slice> void for_each_slice(int64_t state, Slice slice) {
    const int64_t vectors = state / W;
    for (int64_t v0 = 0; v0 < vectors; v0 += MAX_SLICE) {
        switch (std::min<int64_t>(MAX_SLICE, vectors - v0)) {
            case 1: slice(v0 * W, std::integral_constant<int, 1>()); break;
            case 2: slice(v0 * W, std::integral_constant<int, 2>()); break;
            case 3: slice(v0 * W, std::integral_constant<int, 3>()); break;
            default: slice(v0 * W, std::integral_constant<int, 4>()); break;
        }
    }
}

template <typename T, int W> void forward(const Problem<T>& p, T* y, T* checkpoints, int threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
    for (int64_t sequence = 0; sequence < p.batch * p.channels; ++sequence) {
        const int64_t bi = sequence / p.channels, di = sequence % p.channels;
        for_each_slice<W>(p.state, [&](int64_t lane0, auto S) {
            forward_slice<T, W, decltype(S)::value>(p, bi, di, lane0, y, checkpoints);
        });
    }
}

template <typename T, int W> void backward(const Problem<T>& p, const Gradients<T>& g, int threads) {
    const int64_t per_block = (p.per_group() + p.blocks - 1) / p.blocks;
#pragma omp parallel num_threads(threads)
    {
        Scratch<T> scratch(p.chunk, W);
#pragma omp for schedule(dynamic)
        for (int64_t job = 0; job < p.batch * p.groups * p.blocks; ++job) {
            const int64_t block = job % p.blocks, gi = job / p.blocks % p.groups, bi = job / p.blocks / p.groups;
            const int64_t begin = gi * p.per_group() + block * per_block;
            const int64_t end = std::min((gi + 1) * p.per_group(), begin + per_block);
            for (int64_t di = begin; di < end; ++di)
                for_each_slice<W>(p.state, [&](int64_t lane0, auto S) {
                    backward_slice<T, W, decltype(S)::value>(p, g, bi, di, block, lane0, scratch);
                });
        }
    }
}

// sizes: batch, channels, groups, L, N (padded), lanes, chunk, blocks; inputs: u, δ, A, B, C, D, bias (D and bias
// may be null)
template <typename T> Problem<T> problem(const int64_t* sizes, const T* const* inputs, int softplus) {
    return Problem<T>{sizes[0],  sizes[1],  sizes[2],  sizes[3],  sizes[4],  sizes[5],  sizes[6],   sizes[7],
                      inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], inputs[6], softplus != 0};
}

// what the kernels support: W lanes of 32 or 64 bytes, N a whole number of vectors, the chunk a whole number of tiles
template <typename T> bool supported(const Problem<T>& p) {
    const bool lanes = p.lanes * sizeof(T) == 32 || p.lanes * sizeof(T) == 64;
    return lanes && p.state % p.lanes == 0 && p.chunk % p.lanes == 0 && p.chunk > 0 && p.blocks > 0 &&
           p.groups > 0 && p.channels % p.groups == 0;
}

template <typename T>
int scan_forward(const int64_t* sizes, const T* const* inputs, int softplus, T* y, T* checkpoints, int threads) {
    const Problem<T> p = problem<T>(sizes, inputs, softplus);
    if (!supported(p)) return 1;
    if (p.lanes * sizeof(T) == 32)
        forward<T, 32 / sizeof(T)>(p, y, checkpoints, threads);
    else
        forward<T, 64 / sizeof(T)>(p, y, checkpoints, threads);
    return 0;
}

// grads: du, dδ, dA, dB, dC, dD, dbias (dD, dbias null when D, bias are; dB and dC zero on entry)
template <typename T>
int scan_backward(const int64_t* sizes, const T* const* inputs, int softplus, const T* checkpoints, const T* grad_y,
                  T* const* grads, int threads) {
    const Problem<T> p = problem<T>(sizes, inputs, softplus);
    if (!supported(p)) return 1;
    const Gradients<T> g{checkpoints, grad_y, grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], grads[6]};
    if (p.lanes * sizeof(T) == 32)
        backward<T, 32 / sizeof(T)>(p, g, threads);
    else
        backward<T, 64 / sizeof(T)>(p, g, threads);
    return 0;
}

}  // namespace

extern "C" {

// Returns 0, or 1 for sizes the kernels do not support (see `supported`). checkpoints may be null in the forward
// (no backward to follow).
#define SELECTIVE_SCAN_ENTRIES(SUFFIX, T)                                                                            \
    int selective_scan_forward_##SUFFIX(const int64_t* sizes, const T* const* inputs, int softplus, T* y,            \
                                        T* checkpoints, int threads) {                                               \
        return scan_forward<T>(sizes, inputs, softplus, y, checkpoints, threads);                                     \
    }                                                                                                                \
    int selective_scan_backward_##SUFFIX(const int64_t* sizes, const T* const* inputs, int softplus,                 \
                                         const T* checkpoints, const T* grad_y, T* const* grads, int threads) {      \
        return scan_backward<T>(sizes, inputs, softplus, checkpoints, grad_y, grads, threads);                        \
    }
SELECTIVE_SCAN_ENTRIES(f32, float)
SELECTIVE_SCAN_ENTRIES(f64, double)
}
