// Elementwise ops and their backward passes (ops/elementwise.go), casts,
// and the embedding backward (ops/embedding.go). One thread per value
// unless said otherwise; "b (bn)" operands repeat every bn values (bn = n:
// value for value; bn = c: one row broadcast over the rows).
#include "common.cuh"

// out (n) = a + b[i % bn]
extern "C" __global__ void add_bcast(float* out, const float* a, const float* b, int n, int bn) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __fadd_rn(a[i], b[i % bn]);
}

// dst (n) += s·src (s = 1: the backward of add and of any copy)
extern "C" __global__ void axpy(float* dst, const float* src, float s, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __fadd_rn(dst[i], s == 1.0f ? src[i] : __fmul_rn(s, src[i]));
}

// dst (n) += s[0]·src, or += s[0] when src is NULL: a scale that lives on
// the device (d(loss) in a backward pass), so no host round trip.
extern "C" __global__ void axpy_dev(float* dst, const float* src, const float* s, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __fadd_rn(dst[i], src != NULL ? __fmul_rn(s[0], src[i]) : s[0]);
}

// out (n) = s·a
extern "C" __global__ void scale(float* out, const float* a, float s, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __fmul_rn(s, a[i]);
}

// out (n) = a ⊙ b[i % bn]
extern "C" __global__ void mul_bcast(float* out, const float* a, const float* b, int n, int bn) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __fmul_rn(a[i], b[i % bn]);
}

// da (n) += dout ⊙ b[i % bn]
extern "C" __global__ void mul_bwd_a(float* da, const float* dout, const float* b, int n, int bn) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) da[i] = __fadd_rn(da[i], __fmul_rn(dout[i], b[i % bn]));
}

// db (bn) += Σ over the n/bn repeats of dout ⊙ a: one thread per b value,
// adding the repeats in order as the CPU does (same bits).
extern "C" __global__ void mul_bwd_b(float* db, const float* dout, const float* a, int n, int bn) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= bn) return;
    float s = db[j];
    for (int i = j; i < n; i += bn) s = __fadd_rn(s, __fmul_rn(dout[i], a[i]));
    db[j] = s;
}

// μ = sigmoid(α/T) in double, as ops.sigmoid.
__device__ __forceinline__ float gate_mu(float alpha, float temp) {
    return (float)(1.0 / (1.0 + exp(-(double)__fdiv_rn(alpha, temp))));
}

// out (n, c) = μ⊙a + (1−μ)⊙b, alpha (ngate): ngate 1 (scalar) or c (per column).
extern "C" __global__ void gated_mix_fwd(float* out, const float* a, const float* b, const float* alpha, int n, int c, int ngate, float temp) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * c) return;
    float m = gate_mu(alpha[(i % c) % ngate], temp);
    out[i] = __fadd_rn(__fmul_rn(m, a[i]), __fmul_rn(__fsub_rn(1.0f, m), b[i]));
}

// da += μ·dout, db += (1−μ)·dout (either may be NULL).
extern "C" __global__ void gated_mix_bwd_inputs(float* da, float* db, const float* dout, const float* alpha, int n, int c, int ngate, float temp) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * c) return;
    float m = gate_mu(alpha[(i % c) % ngate], temp), g = dout[i];
    if (da != NULL) da[i] = __fadd_rn(da[i], __fmul_rn(m, g));
    if (db != NULL) db[i] = __fadd_rn(db[i], __fmul_rn(__fsub_rn(1.0f, m), g));
}

// dalpha (ngate) += Σ dout·(a−b) (in double) · μ(1−μ)/T. Per-column gates:
// one thread per column adds the rows in order (the CPU's order). A scalar
// gate: one block sums everything (launch with one block).
extern "C" __global__ void gated_mix_bwd_gate(float* dalpha, const float* dout, const float* a, const float* b, const float* alpha,
                                              int n, int c, int ngate, float temp) {
    double s = 0.0;
    int k;
    if (ngate == 1) {
        k = 0;
        for (int i = threadIdx.x; i < n * c; i += blockDim.x) s += (double)__fmul_rn(dout[i], __fsub_rn(a[i], b[i]));
        s = block_sum_d(s);
        if (threadIdx.x != 0) return;
    } else {
        k = blockIdx.x * blockDim.x + threadIdx.x;
        if (k >= c) return;
        for (int r = 0; r < n; r++) {
            size_t i = (size_t)r * c + k;
            s += (double)__fmul_rn(dout[i], __fsub_rn(a[i], b[i]));
        }
    }
    float m = gate_mu(alpha[k], temp);
    float g = __fdiv_rn(__fmul_rn(__fmul_rn((float)s, m), __fsub_rn(1.0f, m)), temp);
    dalpha[k] = __fadd_rn(dalpha[k], g);
}

// out (n) halves = f32 rounded to nearest even (gguf.F32ToF16).
extern "C" __global__ void cast_f32_f16(unsigned short* out, const float* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __half_as_ushort(__float2half_rn(in[i]));
}

// out (n) floats = halves, exactly.
extern "C" __global__ void cast_f16_f32(float* out, const unsigned short* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = half_bits_to_f32(in[i]);
}

// out (n) floats = doubles rounded to nearest (per-row losses as f32).
extern "C" __global__ void cast_f64_f32(float* out, const double* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (float)in[i];
}

// out (n) bf16 = f32 rounded to nearest even, NaNs quieted, subnormals
// flushed to zero: ggml_compute_fp32_to_bf16 (gguf.F32ToBF16), in integer
// operations (the simulator has no bf16 conversion).
extern "C" __global__ void cast_f32_bf16(unsigned short* out, const float* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t u = __float_as_uint(in[i]);
    uint32_t h;
    if ((u & 0x7fffffffu) > 0x7f800000u) h = (u >> 16) | 64u;
    else if ((u & 0x7f800000u) == 0) h = (u & 0x80000000u) >> 16;
    else h = (u + (0x7fffu + ((u >> 16) & 1u))) >> 16;
    out[i] = (unsigned short)h;
}

// out (n) floats = bf16 values, exactly.
extern "C" __global__ void cast_bf16_f32(float* out, const unsigned short* in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = bf16_bits_to_f32(in[i]);
}

// dtable (vocab, c) [ids[i]] += dout (n, c) [i]: one thread per column adds
// the rows in order, so repeated ids sum in the CPU's order, no atomics.
extern "C" __global__ void embedding_bwd(float* dtable, const float* dout, const int* ids, int n, int c) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= c) return;
    for (int i = 0; i < n; i++) {
        float* d = dtable + (size_t)ids[i] * c + j;
        *d = __fadd_rn(*d, dout[(size_t)i * c + j]);
    }
}
