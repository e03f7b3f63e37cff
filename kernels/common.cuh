// Shared helpers of the kernels: little-endian loads that need no
// alignment, half/bf16 decoding with plain integer and scalar conversion
// instructions (the compute_70 path: no bf16 cvt, no f16x2 arithmetic), and
// warp reductions.
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

typedef unsigned char u8;

// Block layouts are byte-packed (18, 22, 110 bytes...): read bytes, never
// wider words, so no load is ever misaligned.
__device__ __forceinline__ uint32_t ld_u16(const u8* p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
__device__ __forceinline__ uint32_t ld_u32(const u8* p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// An IEEE half (its bits) as float: exact (cvt.f32.f16).
__device__ __forceinline__ float half_bits_to_f32(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)h)); }
__device__ __forceinline__ float ld_half(const u8* p) { return half_bits_to_f32(ld_u16(p)); }

// A brain float is the top half of a float32: a shift, no bf16 instruction.
__device__ __forceinline__ float bf16_bits_to_f32(uint32_t h) { return __uint_as_float(h << 16); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block_sum_d sums one double per thread over the block (blockDim.x a
// multiple of 32, at most 1024); every thread gets the total. The order is
// fixed, so results are deterministic.
__device__ __forceinline__ double block_sum_d(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_d(v);
    __syncthreads(); // part may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? part[lane] : 0.0;
    return warp_sum_d(v);
}
__device__ __forceinline__ float block_max(float v) {
    __shared__ float partm[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partm[warp] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? partm[lane] : -INFINITY;
    return warp_max(v);
}
