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
