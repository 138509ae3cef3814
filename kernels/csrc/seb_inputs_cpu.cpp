// The SEB's per-token inputs of the 2D scan (models/seb.py), fused for inference: from the key projection k and the
// decay and learning-rate LoRA outputs, per token and head,
//   k_hat = l2norm(k * key_norm_scale)        eta = sigmoid(eta_bias + lora_eta)
//   a = -k_hat   b = eta * k_hat   k_tilde = k * (1 + (eta - 1) * key_eta_scale)
//   gk = -exp(-0.5) * sigmoid(decay_bias + lora_decay)
// in one pass over the rows instead of a dozen elementwise torch ops, each reading and writing [B, T, C]. fp32 only;
// the training path keeps the torch ops (autograd). Built by kernels/fused_cpu.py with the other kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "vector_math.h"

namespace {

constexpr int W = 16;  // fp32 lanes of a 64-byte vector
typedef Vec<float, W> V;

// n (<= W) entries of p: a whole vector, or the first n lanes and zeros
inline V load_n(const float* p, int64_t n) { return n == W ? load<float, W>(p) : load_head<float, W>(p, n); }
inline void store_n(float* p, V v, int64_t n) {
    if (n == W)
        store<float, W>(p, v);
    else
        store_head<float, W>(p, v, n, false);
}

void seb_inputs(int64_t rows, int64_t heads, int64_t head_size, const float* k, const float* lora_decay,
                const float* lora_eta, const float* decay_bias, const float* eta_bias, const float* key_norm_scale,
                const float* key_eta_scale, float* gk, float* a, float* b, float* k_tilde, int threads) {
    const int64_t channels = heads * head_size;
    const float decay_scale = -std::exp(-0.5f);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
        for (int64_t h = 0; h < heads; ++h) {
            const int64_t base = row * channels + h * head_size, c0 = h * head_size;
            V squares{};
            for (int64_t e = 0; e < head_size; e += W) {
                const int64_t n = std::min<int64_t>(W, head_size - e);
                const V scaled = load_n(k + base + e, n) * load_n(key_norm_scale + c0 + e, n);
                squares += scaled * scaled;
            }
            // F.normalize: x / max(|x|, 1e-12)
            const float inverse = 1.0f / std::max(std::sqrt(sum_lanes<float, W>(squares)), 1e-12f);
            for (int64_t e = 0; e < head_size; e += W) {
                const int64_t n = std::min<int64_t>(W, head_size - e), at = base + e, c = c0 + e;
                const V key = load_n(k + at, n);
                const V k_hat = key * load_n(key_norm_scale + c, n) * inverse;
                const V eta = VectorMath<float, W>::sigmoid(load_n(eta_bias + c, n) + load_n(lora_eta + at, n));
                const V decay = VectorMath<float, W>::sigmoid(load_n(decay_bias + c, n) + load_n(lora_decay + at, n));
                store_n(a + at, -k_hat, n);
                store_n(b + at, eta * k_hat, n);
                store_n(k_tilde + at, key * (1.0f + (eta - 1.0f) * load_n(key_eta_scale + c, n)), n);
                store_n(gk + at, decay_scale * decay, n);
            }
        }
    }
}

}  // namespace

extern "C" {

// rows = B * T tokens of C = heads * head_size channels, every [rows, C] tensor contiguous; the parameters [C].
int seb_inputs_f32(int64_t rows, int64_t heads, int64_t head_size, const float* k, const float* lora_decay,
                   const float* lora_eta, const float* decay_bias, const float* eta_bias, const float* key_norm_scale,
                   const float* key_eta_scale, float* gk, float* a, float* b, float* k_tilde, int threads) {
    seb_inputs(rows, heads, head_size, k, lora_decay, lora_eta, decay_bias, eta_bias, key_norm_scale, key_eta_scale,
               gk, a, b, k_tilde, threads);
    return 0;
}
}
