// RMSNorm, as ggml_rms_norm followed by ggml_mul (ops/rmsnorm.go):
//   rstd = 1/sqrtf(float(Σx²/c) + eps), the sum of float32 squares in double
//   out = (x·rstd)·w
// inp, out (n, c); weight (c) or NULL; rstd (n) or NULL (kept for backward).
// One block per row. The double sum runs in a different order than the
// CPU's sequential one; rounded to float the mean almost always agrees.
#include "common.cuh"

extern "C" __global__ void rmsnorm_fwd(float* __restrict__ out, float* __restrict__ rstd, const float* __restrict__ inp,
                                       const float* __restrict__ weight, int n, int c, float eps) {
    int r = blockIdx.x;
    if (r >= n) return;
    const float* x = inp + (size_t)r * c;
    double s = 0.0;
    for (int i = threadIdx.x; i < c; i += blockDim.x) s += (double)__fmul_rn(x[i], x[i]);
    s = block_sum_d(s);
    float mean = (float)(s / (double)c);
    float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
    if (rstd != NULL && threadIdx.x == 0) rstd[r] = scale;
    float* y = out + (size_t)r * c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        float v = __fmul_rn(x[i], scale);
        y[i] = weight != NULL ? __fmul_rn(v, weight[i]) : v;
    }
}

// dinp (n, c) += rstd·w·dy − rstd³/c · x · Σ dy·w·x (the dot in double).
extern "C" __global__ void rmsnorm_bwd_input(float* __restrict__ dinp, const float* __restrict__ dout, const float* __restrict__ inp,
                                             const float* __restrict__ weight, const float* __restrict__ rstd, int n, int c) {
    int r = blockIdx.x;
    if (r >= n) return;
    const float* x = inp + (size_t)r * c;
    const float* dy = dout + (size_t)r * c;
    double s = 0.0;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        float g = weight != NULL ? __fmul_rn(dy[i], weight[i]) : dy[i];
        s += (double)__fmul_rn(g, x[i]);
    }
    s = block_sum_d(s);
    float rs = rstd[r];
    float k = __fmul_rn(__fmul_rn(__fmul_rn(rs, rs), rs), (float)(s / (double)c));
    float* dx = dinp + (size_t)r * c;
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        float a = weight != NULL ? __fmul_rn(__fmul_rn(rs, weight[i]), dy[i]) : __fmul_rn(rs, dy[i]);
        dx[i] = __fadd_rn(dx[i], __fsub_rn(a, __fmul_rn(k, x[i])));
    }
}

// dweight (c) += Σ_rows dy·x·rstd: one thread per column adds the rows in
// order, the CPU's order, so the result is the same bits.
extern "C" __global__ void rmsnorm_bwd_weight(float* __restrict__ dweight, const float* __restrict__ dout, const float* __restrict__ inp,
                                              const float* __restrict__ rstd, int n, int c) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= c) return;
    float dw = dweight[i];
    for (int r = 0; r < n; r++) {
        size_t o = (size_t)r * c + i;
        dw = __fadd_rn(dw, __fmul_rn(__fmul_rn(dout[o], inp[o]), rstd[r]));
    }
    dweight[i] = dw;
}
