// Vector helpers of the fused selective scan (selective_scan_cpu.cpp): GCC vector types of W lanes, loads of a
// partial tile, exp / softplus / sigmoid of a vector, and the sums of W vectors at once.
//
// fp32 has polynomial versions: the scan takes an exp per state entry and token, and a libm call per lane would be
// most of its time. fp64, which only the oracle tests run, calls libm lane by lane and so stays exact to rounding.
// The fp32 exp (Cody-Waite reduction to |r| <= ln2 / 2, Taylor polynomial of degree 7) is within 2 ulp; it returns 0
// below e^-87.3 (where libm returns subnormals) and saturates near e^88.4 (where libm overflows to inf).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

template <typename T> struct LaneInt;
template <> struct LaneInt<float> { typedef int32_t type; };
template <> struct LaneInt<double> { typedef int64_t type; };

template <typename T, int W> struct VectorTypes {
    typedef T vec __attribute__((vector_size(W * sizeof(T))));
    typedef typename LaneInt<T>::type lane_int;
    typedef lane_int mask __attribute__((vector_size(W * sizeof(T))));  // what comparisons return, and shuffle masks
};
template <typename T, int W> using Vec = typename VectorTypes<T, W>::vec;
template <typename T, int W> using Mask = typename VectorTypes<T, W>::mask;

template <typename T, int W> inline Vec<T, W> splat(T x) { return Vec<T, W>{} + x; }

// fixed-size memcpy: one unaligned vector load or store
template <typename T, int W> inline Vec<T, W> load(const T* p) {
    Vec<T, W> v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
template <typename T, int W> inline void store(T* p, Vec<T, W> v) { std::memcpy(p, &v, sizeof(v)); }

// the first `count` entries of p, zeros in the other lanes (a sequence's last, partial tile of tokens)
template <typename T, int W> inline Vec<T, W> load_head(const T* p, int64_t count) {
    if (count == W) return load<T, W>(p);
    Vec<T, W> v{};
    for (int64_t i = 0; i < count; ++i) v[i] = p[i];
    return v;
}
// p[:count] = v[:count] (replace) or p[:count] += v[:count] (accumulate)
template <typename T, int W> inline void store_head(T* p, Vec<T, W> v, int64_t count, bool accumulate) {
    if (count == W) {
        store<T, W>(p, accumulate ? load<T, W>(p) + v : v);
        return;
    }
    for (int64_t i = 0; i < count; ++i) p[i] = accumulate ? p[i] + v[i] : v[i];
}

template <typename T, int W> inline T sum_lanes(Vec<T, W> v) {
    T total = 0;
    for (int i = 0; i < W; ++i) total += v[i];
    return total;
}

template <typename T, int W> struct VectorMath;

template <int W> struct VectorMath<float, W> {
    typedef Vec<float, W> V;
    typedef Mask<float, W> M;

    static V exp(V x) {
        const V high = splat<float, W>(88.3762626647949f), low = splat<float, W>(-87.33654475f);
        V clamped = x > high ? high : x;
        clamped = clamped < low ? low : clamped;
        // adding 1.5 * 2^23 rounds to an integer k and leaves k in the low mantissa bits
        const V magic = splat<float, W>(12582912.0f);
        const V t = clamped * 1.44269504088896341f + magic;
        const V k = t - magic;
        const V r = (clamped - k * 0.693359375f) - k * -2.12194440e-4f;  // x - k ln2, ln2 in two parts
        V p = splat<float, W>(1.0f / 5040);
        p = p * r + 1.0f / 720;
        p = p * r + 1.0f / 120;
        p = p * r + 1.0f / 24;
        p = p * r + 1.0f / 6;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        const M exponent = ((M)t - (M)magic + 127) << 23;  // the bits of 2^k
        const V result = p * (V)exponent;
        return x < low ? V{} : result;
    }

    // log(w) for w in [1, 2]: w = 2^e m with m in [sqrt(1/2), sqrt(2)], log m = 2 atanh(s), s = (m - 1) / (m + 1)
    static V log_1_to_2(V w) {
        const M big = w > 1.41421356f;
        const V m = big ? w * 0.5f : w;
        const V f = m - 1.0f;  // exact (Sterbenz)
        const V s = f / (f + 2.0f), s2 = s * s;
        V series = splat<float, W>(1.0f / 9);
        series = series * s2 + 1.0f / 7;
        series = series * s2 + 1.0f / 5;
        series = series * s2 + 1.0f / 3;
        series = series * s2 + 1.0f;
        return 2.0f * s * series + (big ? splat<float, W>(0.693147181f) : V{});
    }

    // torch's softplus (threshold 20): x above it, else max(x, 0) + log1p(e^-|x|)
    static V softplus(V x) {
        const V magnitude = x < 0.0f ? -x : x;
        const V z = exp(-magnitude), w = z + 1.0f, rounded = w - 1.0f;
        // log1p(z) = log(w) z / (w - 1): the rounding of w = 1 + z cancels (exact where z is below an ulp of 1)
        const V log1p = rounded == 0.0f ? z : log_1_to_2(w) * (z / (rounded == 0.0f ? splat<float, W>(1.0f) : rounded));
        const V result = (x > 0.0f ? x : V{}) + log1p;
        return x > 20.0f ? x : result;
    }

    // the derivative of softplus: 1 above the threshold, else the logistic function
    static V sigmoid(V x) {
        const V magnitude = x < 0.0f ? -x : x;
        const V z = exp(-magnitude), inverse = 1.0f / (z + 1.0f);
        const V result = x < 0.0f ? z * inverse : inverse;
        return x > 20.0f ? splat<float, W>(1.0f) : result;
    }
};

template <int W> struct VectorMath<double, W> {
    typedef Vec<double, W> V;

    static V exp(V x) {
        for (int i = 0; i < W; ++i) x[i] = std::exp(x[i]);
        return x;
    }
    static V softplus(V x) {  // as torch: log1p(exp(x)), x itself above the threshold 20
        for (int i = 0; i < W; ++i) x[i] = x[i] > 20 ? x[i] : std::log1p(std::exp(x[i]));
        return x;
    }
    static V sigmoid(V x) {  // as torch's softplus backward: e^x / (e^x + 1), 1 above the threshold
        for (int i = 0; i < W; ++i) {
            const double z = std::exp(x[i]);
            x[i] = x[i] > 20 ? 1.0 : z / (z + 1);
        }
        return x;
    }
};

template <typename T, int W, std::size_t... J>
constexpr Mask<T, W> strided_lanes(std::index_sequence<J...>, int first) {
    return Mask<T, W>{typename LaneInt<T>::type(2 * J + first)...};
}

// Lane j of the result is the sum of the lanes of p[j] (p is overwritten). Each round adds neighbouring lanes of
// two vectors and packs both into one (the even and the odd lanes of their concatenation), so W sums cost W - 1
// pairs of shuffles and adds instead of W horizontal sums of log2 W steps each, and come out in order.
template <typename T, int W> inline Vec<T, W> lane_sums(Vec<T, W>* p) {
#if defined(__clang__) || defined(REPRO_PORTABLE_SUMS)  // clang has no __builtin_shuffle: a sum per vector
    Vec<T, W> sums{};
    for (int j = 0; j < W; ++j) sums[j] = sum_lanes<T, W>(p[j]);
    return sums;
#else
    constexpr Mask<T, W> even = strided_lanes<T, W>(std::make_index_sequence<W>(), 0);
    constexpr Mask<T, W> odd = strided_lanes<T, W>(std::make_index_sequence<W>(), 1);
    for (int count = W; count > 1; count /= 2)
        for (int j = 0; j < count / 2; ++j)
            p[j] = __builtin_shuffle(p[2 * j], p[2 * j + 1], even) + __builtin_shuffle(p[2 * j], p[2 * j + 1], odd);
    return p[0];
#endif
}
