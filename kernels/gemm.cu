// f32 GEMM for the trainable matrices (side network, LoRA pairs), one
// kernel with strided operands so the three products of a linear layer are
// the same code:
//
//   C (M, N) (+)= A (M, K) · B (K, N),  A[m][k] = a[m*sam + k*sak],  B[k][n] = b[k*sbk + n*sbn]
//
//   forward  out (n, rows)   = x (n, cols) · Wᵀ      A = x, B = Wᵀ
//   dX       dx (n, cols)   += dout (n, rows) · W    A = dout, B = W
//   dW       dw (rows, cols) += doutᵀ · x (n, cols)  A = doutᵀ, B = x
//
// 32×32 output tiles, 256 threads with 2×2 outputs each, operands staged
// through shared memory 32 deep; float32 accumulation with fma.
#include "common.cuh"

#define GT 32
#define GTPB 16

extern "C" __global__ void __launch_bounds__(GTPB* GTPB)
    gemm_f32(float* __restrict__ c, const float* __restrict__ a, const float* __restrict__ b, int M, int N, int K,
             long long sam, long long sak, long long sbk, long long sbn, int accumulate) {
    __shared__ float as[GT][GT + 1]; // as[k][m]
    __shared__ float bs[GT][GT + 1]; // bs[k][n]
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * GTPB + tx;
    int m0 = blockIdx.y * GT, n0 = blockIdx.x * GT;
    float acc[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    bool live = (m0 + ty < M) && (n0 + tx < N);
    for (int k0 = 0; k0 < K; k0 += GT) {
        for (int e = tid; e < GT * GT; e += GTPB * GTPB) {
            // Consecutive threads take consecutive k for A when A is
            // k-contiguous, else consecutive m; the same for B and n.
            int r, kk;
            if (sak == 1) { r = e / GT; kk = e % GT; } else { kk = e / GT; r = e % GT; }
            int m = m0 + r, k = k0 + kk;
            as[kk][r] = (m < M && k < K) ? a[m * sam + k * sak] : 0.f;
            if (sbk == 1) { r = e / GT; kk = e % GT; } else { kk = e / GT; r = e % GT; }
            int n = n0 + r;
            k = k0 + kk;
            bs[kk][r] = (n < N && k < K) ? b[k * sbk + n * sbn] : 0.f;
        }
        __syncthreads();
        if (live) {
#pragma unroll 8
            for (int kk = 0; kk < GT; kk++) {
                float a0 = as[kk][ty], a1 = as[kk][ty + GTPB];
                float b0 = bs[kk][tx], b1 = bs[kk][tx + GTPB];
                acc[0][0] = fmaf(a0, b0, acc[0][0]);
                acc[0][1] = fmaf(a0, b1, acc[0][1]);
                acc[1][0] = fmaf(a1, b0, acc[1][0]);
                acc[1][1] = fmaf(a1, b1, acc[1][1]);
            }
        }
        __syncthreads();
    }
    for (int p = 0; p < 2; p++) {
        int m = m0 + ty + p * GTPB;
        if (m >= M) continue;
        for (int q = 0; q < 2; q++) {
            int n = n0 + tx + q * GTPB;
            if (n >= N) continue;
            float* o = c + (size_t)m * N + n;
            *o = accumulate ? *o + acc[p][q] : acc[p][q];
        }
    }
}
