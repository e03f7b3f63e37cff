// Products with frozen weights in their GGUF encoding, and row gathers.
//
//   get_rows_T:    out (nids, cols) = dequant(W)[ids]             (embedding, dequantize)
//   matmul_T:      out (n, rows) (+)= x (n, cols) · dequant(W)ᵀ    (batched, tiled)
//   matvec_T:      out (rows) (+)= dequant(W) · x (cols)          (n = 1, decoding)
//   matmul_bwd_T:  dx (n, cols) (+)= dout (n, rows) · dequant(W)  (input gradient)
//
// W is (rows, cols) stored as rows of row_bytes bytes (gguf.RowSize). The
// tiled kernels dequantize a tile of W into shared memory, then every thread
// accumulates a 2×2 patch of outputs in float32 with fma.
#include "dequant.cuh"

#define TILE 32 // outputs per tile side and depth per step
#define TPB 16  // threads per tile side (each thread does 2×2 outputs)

template <int T>
__device__ void get_rows(float* __restrict__ out, const u8* __restrict__ w, const int* __restrict__ ids, int nids, int cols, long long row_bytes) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    // grid.y is capped at 65535: blocks stride over the ids.
    for (int i = blockIdx.y; i < nids; i += gridDim.y) out[(size_t)i * cols + c] = deq<T>(w + (size_t)ids[i] * row_bytes, c);
}

// tiled_product computes out (n, N) (+)= a (n, K) · B (K, N) where B is W
// read as Wᵀ (trans = 0: B[k][j] = W[j][k], the forward) or as W itself
// (trans = 1: B[k][j] = W[k][j], the input gradient).
template <int T, int TRANS>
__device__ void tiled_product(float* __restrict__ out, const float* __restrict__ a, const u8* __restrict__ w,
                              int n, int K, int N, long long row_bytes, int accumulate) {
    __shared__ float as[TILE][TILE + 1]; // as[k][i]
    __shared__ float bs[TILE][TILE + 1]; // bs[k][j]
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TPB + tx;
    int i0 = blockIdx.y * TILE, j0 = blockIdx.x * TILE;
    float acc[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    // Threads whose outputs all lie outside the matrix still load and sync,
    // but skip the arithmetic (small batches leave most of a tile empty).
    bool live = (i0 + ty < n) && (j0 + tx < N);
    for (int k0 = 0; k0 < K; k0 += TILE) {
        for (int e = tid; e < TILE * TILE; e += TPB * TPB) {
            int r = e / TILE, kk = e % TILE;
            int i = i0 + r, k = k0 + kk;
            as[kk][r] = (i < n && k < K) ? a[(size_t)i * K + k] : 0.f;
            int j = j0 + r;
            float v = 0.f;
            if (j < N && k < K) {
                v = TRANS ? deq<T>(w + (size_t)k * row_bytes, j) : deq<T>(w + (size_t)j * row_bytes, k);
            }
            bs[kk][r] = v;
        }
        __syncthreads();
        if (live) {
#pragma unroll 8
            for (int kk = 0; kk < TILE; kk++) {
                float a0 = as[kk][ty], a1 = as[kk][ty + TPB];
                float b0 = bs[kk][tx], b1 = bs[kk][tx + TPB];
                acc[0][0] = fmaf(a0, b0, acc[0][0]);
                acc[0][1] = fmaf(a0, b1, acc[0][1]);
                acc[1][0] = fmaf(a1, b0, acc[1][0]);
                acc[1][1] = fmaf(a1, b1, acc[1][1]);
            }
        }
        __syncthreads();
    }
    for (int p = 0; p < 2; p++) {
        int i = i0 + ty + p * TPB;
        if (i >= n) continue;
        for (int q = 0; q < 2; q++) {
            int j = j0 + tx + q * TPB;
            if (j >= N) continue;
            float* o = out + (size_t)i * N + j;
            *o = accumulate ? *o + acc[p][q] : acc[p][q];
        }
    }
}

// matvec: one warp per weight row, lanes stride over the columns, then a
// butterfly sum. blockDim (32, 4).
template <int T>
__device__ void matvec(float* __restrict__ out, const u8* __restrict__ w, const float* __restrict__ x, int rows, int cols, long long row_bytes, int accumulate) {
    int r = blockIdx.x * blockDim.y + threadIdx.y;
    if (r >= rows) return;
    const u8* row = w + (size_t)r * row_bytes;
    float s = 0.f;
    for (int k = threadIdx.x; k < cols; k += 32) s = fmaf(x[k], deq<T>(row, k), s);
    s = warp_sum(s);
    if (threadIdx.x == 0) out[r] = accumulate ? out[r] + s : s;
}

#define QUANT_KERNELS(name, T)                                                                                         \
    extern "C" __global__ void get_rows_##name(float* out, const u8* w, const int* ids, int nids, int cols, long long rb) { \
        get_rows<T>(out, w, ids, nids, cols, rb);                                                                      \
    }                                                                                                                  \
    extern "C" __global__ void __launch_bounds__(TPB* TPB)                                                             \
        matmul_##name(float* out, const float* x, const u8* w, int n, int rows, int cols, long long rb, int acc) {      \
        tiled_product<T, 0>(out, x, w, n, cols, rows, rb, acc);                                                        \
    }                                                                                                                  \
    extern "C" __global__ void __launch_bounds__(TPB* TPB)                                                             \
        matmul_bwd_##name(float* dx, const float* dout, const u8* w, int n, int rows, int cols, long long rb, int acc) { \
        tiled_product<T, 1>(dx, dout, w, n, rows, cols, rb, acc);                                                      \
    }                                                                                                                  \
    extern "C" __global__ void matvec_##name(float* out, const u8* w, const float* x, int rows, int cols, long long rb, int acc) { \
        matvec<T>(out, w, x, rows, cols, rb, acc);                                                                     \
    }

FOR_EACH_TYPE(QUANT_KERNELS)
