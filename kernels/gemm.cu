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
//
// A and B may each be f32, f16 or bf16 (gemm_<A>_<B>): half-precision
// operands (weights or saved activations kept small) widen exactly to f32
// as they are staged; C is always f32.
#include "common.cuh"

#define D_F32 0
#define D_F16 1
#define D_BF16 2

template <int D> __device__ __forceinline__ float ld_elem(const void* p, long long i);
template <> __device__ __forceinline__ float ld_elem<D_F32>(const void* p, long long i) { return ((const float*)p)[i]; }
template <> __device__ __forceinline__ float ld_elem<D_F16>(const void* p, long long i) {
    return half_bits_to_f32(((const unsigned short*)p)[i]);
}
template <> __device__ __forceinline__ float ld_elem<D_BF16>(const void* p, long long i) {
    return bf16_bits_to_f32(((const unsigned short*)p)[i]);
}

#define GT 32
#define GTPB 16

template <int DA, int DB>
__device__ void gemm(float* __restrict__ c, const void* __restrict__ a, const void* __restrict__ b, int M, int N, int K,
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
            as[kk][r] = (m < M && k < K) ? ld_elem<DA>(a, m * sam + k * sak) : 0.f;
            if (sbk == 1) { r = e / GT; kk = e % GT; } else { kk = e / GT; r = e % GT; }
            int n = n0 + r;
            k = k0 + kk;
            bs[kk][r] = (n < N && k < K) ? ld_elem<DB>(b, k * sbk + n * sbn) : 0.f;
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

#define GEMM(na, DA, nb, DB)                                                                                            \
    extern "C" __global__ void __launch_bounds__(GTPB* GTPB)                                                           \
        gemm_##na##_##nb(float* c, const void* a, const void* b, int M, int N, int K, long long sam, long long sak,     \
                         long long sbk, long long sbn, int accumulate) {                                               \
        gemm<DA, DB>(c, a, b, M, N, K, sam, sak, sbk, sbn, accumulate);                                                \
    }
#define GEMM_B(na, DA) GEMM(na, DA, f32, D_F32) GEMM(na, DA, f16, D_F16) GEMM(na, DA, bf16, D_BF16)
GEMM_B(f32, D_F32)
GEMM_B(f16, D_F16)
GEMM_B(bf16, D_BF16)
