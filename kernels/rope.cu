// RoPE as ggml_rope_ext without YaRN (ops/rope.go), in place on
// x (n, nHead*headDim), pos (n) int32. Pair i of each head turns by
// θ_i = pos·thetaScale^i / freqFactors[i] (freqFactors (headDim/2) or NULL),
// θ built by repeated float multiplication as ggml does, cos and sin in
// double rounded to float. NORM mode pairs (2i, 2i+1), NEOX (i, i+headDim/2).
// sinSign −1 turns by −θ: the backward pass (the rotation is orthogonal).
// One thread per (row, pair), looping over heads.
#include "common.cuh"

extern "C" __global__ void rope(float* __restrict__ x, const int* __restrict__ pos, const float* __restrict__ freq_factors,
                                int n, int n_head, int head_dim, float theta_scale, int neox, float sin_sign) {
    int half = head_dim / 2;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= half) return;
    for (int r = blockIdx.y; r < n; r += gridDim.y) { // grid.y is capped at 65535
        float theta = (float)pos[r];
        for (int s = 0; s < i; s++) theta = __fmul_rn(theta, theta_scale);
        float t = freq_factors != NULL ? __fdiv_rn(theta, freq_factors[i]) : theta;
        float cs = (float)cos((double)t);
        float sn = __fmul_rn((float)sin((double)t), sin_sign);
        int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float* row = x + (size_t)r * n_head * head_dim;
        for (int h = 0; h < n_head; h++) {
            float* hd = row + h * head_dim;
            float x0 = hd[i0], x1 = hd[i1];
            hd[i0] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
            hd[i1] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
        }
    }
}
