// AdamW step and the reductions a training step reads back.
#include "common.cuh"

// adamw updates p, m, v (n) in place from the gradient g, as optim's
// adamUpdate, operation for operation (same bits):
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g·g
//   p = p·decay − stepSize·m/(sqrt(v)/sqrt(1−β2^t) + eps)
// stepSize = lr/(1−β1^t), decay = 1 − lr·weightDecay (1 for parameters without decay).
extern "C" __global__ void adamw(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m, float* __restrict__ v, int n,
                                 float b1, float b2, float eps, float step_size, float bc2_sqrt, float decay) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), gi));
    float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), gi), gi));
    m[i] = mi;
    v[i] = vi;
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
    p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denom)));
}

// reduce_sum: out[0] (a double) = Σ x (or Σ x² with squares), in double,
// or adds it to out[0] with accumulate (one gradient norm over many
// buffers). One block grid-strides over x: a fixed order, deterministic.
extern "C" __global__ void reduce_sum(double* out, const float* __restrict__ x, long long n, int squares, int accumulate) {
    double s = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        float v = x[i];
        s += squares ? (double)v * (double)v : (double)v;
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) out[0] = accumulate ? out[0] + s : s;
}

// sum_f64: out[0] (a float) = (float)(scale · Σ x) over n doubles, summed
// in double: a loss from per-row losses (ops' lossScale·Σ nll), or a
// reduce_sum result handed on as an f32 scalar. One block, fixed order.
extern "C" __global__ void sum_f64(float* out, const double* __restrict__ x, int n, double scale) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) out[0] = (float)(s * scale);
}

// 8-bit AdamW (optim's EightBit, the bitsandbytes design): each block of bs
// values keeps both moments as bytes indexing a 256-entry code book on
// [-1, 1] (signed, first moment) or [0, 1] (unsigned, second moment), scaled
// by the block's absolute maximum. One CUDA block per quantization block:
// dequantize, update as adamw above, take the new maxima, requantize to the
// nearest codes. codes holds the signed book then the unsigned one (512
// floats, kernels.DynamicCodes).

// nearest_nonneg is optim's bucketTable.nearestNonNeg: the index of the code
// nearest to x in [0, 1], ties to the upper code; a value whose top 16 bits
// exceed those of 1.0 (above 1, NaN, or −0) gives 255, as there.
__device__ int nearest_nonneg(const float* code, float x) {
    if ((__float_as_uint(x) >> 16) > (__float_as_uint(1.0f) >> 16)) return 255;
    int lo = 0, hi = 255; // the largest i with code[i] <= x (code[0] <= 0 <= x)
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (code[mid] <= x) lo = mid; else hi = mid - 1;
    }
    if (lo < 255 && !(__fsub_rn(x, code[lo]) < __fsub_rn(code[lo + 1], x))) lo++;
    return lo;
}

extern "C" __global__ void adamw8(float* __restrict__ p, const float* __restrict__ g, u8* __restrict__ c1, u8* __restrict__ c2,
                                  float* __restrict__ max1, float* __restrict__ max2, const float* __restrict__ codes, int n, int bs,
                                  float b1, float b2, float eps, float step_size, float bc2_sqrt, float decay) {
    extern __shared__ float sm8[];
    float* sc = sm8;       // [256] signed codes
    float* uc = sm8 + 256; // [256] unsigned codes
    float* ms = sm8 + 512; // [bs] updated first moments
    float* vs = ms + bs;   // [bs] updated second moments
    int b = blockIdx.x;
    int lo = b * bs, len = min(bs, n - lo);
    if (len <= 0) return;
    for (int i = threadIdx.x; i < 512; i += blockDim.x) sm8[i] = codes[i];
    __syncthreads();
    float a1 = max1[b], a2 = max2[b], am = 0.f, av = 0.f;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        int i = lo + j;
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(b1, __fmul_rn(sc[c1[i]], a1)), __fmul_rn(__fsub_rn(1.0f, b1), gi));
        float vi = __fadd_rn(__fmul_rn(b2, __fmul_rn(uc[c2[i]], a2)), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fmul_rn(step_size, __fdiv_rn(mi, denom)));
        ms[j] = mi;
        vs[j] = vi;
        am = fmaxf(am, fabsf(mi));
        av = fmaxf(av, vi);
    }
    am = block_max(am);
    av = block_max(av);
    float inv1 = am != 0.f ? __fdiv_rn(1.0f, am) : 0.f, inv2 = av != 0.f ? __fdiv_rn(1.0f, av) : 0.f;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        int i = lo + j;
        float mv = ms[j], vv = vs[j];
        int c = 127; // the signed book's zero
        if (am != 0.f) {
            float x = __fmul_rn(mv, inv1);
            if (x >= 0.f) {
                c = nearest_nonneg(sc, x);
            } else {
                int k = nearest_nonneg(sc, -x);
                c = k == 255 ? 0 : 254 - k;
            }
            float q = sc[c]; // keep the sign: move one code towards it
            if (mv > 0.f && q < 0.f) c++;
            else if (mv < 0.f && q > 0.f) c--;
        }
        c1[i] = (u8)c;
        int u = 0;
        if (av != 0.f) {
            u = nearest_nonneg(uc, __fmul_rn(vv, inv2));
            if (u == 0 && vv > 0.f) u = 1; // a positive v never becomes 0
        }
        c2[i] = (u8)u;
    }
    if (threadIdx.x == 0) {
        max1[b] = am;
        max2[b] = av;
    }
}
