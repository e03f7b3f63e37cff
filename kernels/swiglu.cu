// SwiGLU, ggml_swiglu_split, and SiLU (ops/swiglu.go): out = silu(gate)·up,
// silu(x) = x/(1+e^-x). gate, up, out have n values.
#include "common.cuh"

__device__ __forceinline__ float sigmoidf(float x) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x))); }

extern "C" __global__ void swiglu_fwd(float* __restrict__ out, const float* __restrict__ gate, const float* __restrict__ up, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i];
    out[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
}

// dgate += dout·up·σ(g)·(1 + g·(1−σ(g))), dup += dout·g·σ(g); either may be NULL.
extern "C" __global__ void swiglu_bwd(float* __restrict__ dgate, float* __restrict__ dup, const float* __restrict__ dout,
                                      const float* __restrict__ gate, const float* __restrict__ up, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i], s = sigmoidf(g), d = dout[i];
    if (dup != NULL) dup[i] = __fadd_rn(dup[i], __fmul_rn(__fmul_rn(d, g), s));
    if (dgate != NULL) {
        float ds = __fmul_rn(__fmul_rn(__fmul_rn(d, up[i]), s), __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, s))));
        dgate[i] = __fadd_rn(dgate[i], ds);
    }
}

// out (n) = silu(inp)
extern "C" __global__ void silu_fwd(float* __restrict__ out, const float* __restrict__ inp, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i];
    out[i] = __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
}

// dinp (n) += dout·σ(x)·(1 + x·(1−σ(x)))
extern "C" __global__ void silu_bwd(float* __restrict__ dinp, const float* __restrict__ dout, const float* __restrict__ inp, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i], s = sigmoidf(x);
    dinp[i] = __fadd_rn(dinp[i], __fmul_rn(__fmul_rn(dout[i], s), __fadd_rn(1.0f, __fmul_rn(x, __fsub_rn(1.0f, s)))));
}
