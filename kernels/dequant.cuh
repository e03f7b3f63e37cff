// Per-element decoding of GGUF weight rows, one function per type, each the
// same float operations as gguf's decoders (llama.cpp's dequantize_row_*),
// so dequantized values are bit-exact: products that feed an add use
// __fmul_rn/__fadd_rn so nvcc cannot fuse them into an fma.
//
// deq<T>(row, k) is element k of a row that starts at byte row. The kernels
// call it per element; K-quants recompute their sub-block scale each time,
// which costs a few integer operations and keeps every tile independent of
// block boundaries.
#pragma once
#include "common.cuh"

// ggml type ids (gguf.Type).
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q2_K 10
#define T_Q3_K 11
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14
#define T_IQ4_NL 20
#define T_IQ4_XS 23
#define T_BF16 30

// kvalues_iq4nl(q) is ggml's kvalues_iq4nl[q]: {-127, -104, -83, -65, -49,
// -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}, packed as bytes into
// immediates. A __constant__ table would be simpler, but the simulator does
// not load the initialisers of module constants (it read wrong values).
__device__ __forceinline__ int kvalues_iq4nl(uint32_t q) {
    uint32_t w = q < 8 ? (q < 4 ? 0xbfad9881u : 0xf6eaddcfu) : (q < 12 ? 0x26190d01u : 0x71594535u);
    return (int)(int8_t)(w >> (8 * (q & 3)));
}

// nibble j of a 32-weight block packed as Q4_0: element j < 16 in the low
// nibble of qs[j], element j >= 16 in the high nibble of qs[j-16].
__device__ __forceinline__ uint32_t nib32(const u8* qs, int j) {
    return j < 16 ? (qs[j] & 15u) : (qs[j - 16] >> 4);
}

// scale and min of sub-block j of a Q4_K/Q5_K block (get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const u8* q, uint32_t* d, uint32_t* m) {
    if (j < 4) {
        *d = q[j] & 63u;
        *m = q[j + 4] & 63u;
    } else {
        *d = (q[j + 4] & 15u) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <int T> struct qtype;
template <> struct qtype<T_F32> { enum { bs = 1, ts = 4 }; };
template <> struct qtype<T_F16> { enum { bs = 1, ts = 2 }; };
template <> struct qtype<T_BF16> { enum { bs = 1, ts = 2 }; };
template <> struct qtype<T_Q4_0> { enum { bs = 32, ts = 18 }; };
template <> struct qtype<T_Q4_1> { enum { bs = 32, ts = 20 }; };
template <> struct qtype<T_Q5_0> { enum { bs = 32, ts = 22 }; };
template <> struct qtype<T_Q5_1> { enum { bs = 32, ts = 24 }; };
template <> struct qtype<T_Q8_0> { enum { bs = 32, ts = 34 }; };
template <> struct qtype<T_Q2_K> { enum { bs = 256, ts = 84 }; };
template <> struct qtype<T_Q3_K> { enum { bs = 256, ts = 110 }; };
template <> struct qtype<T_Q4_K> { enum { bs = 256, ts = 144 }; };
template <> struct qtype<T_Q5_K> { enum { bs = 256, ts = 176 }; };
template <> struct qtype<T_Q6_K> { enum { bs = 256, ts = 210 }; };
template <> struct qtype<T_IQ4_NL> { enum { bs = 32, ts = 18 }; };
template <> struct qtype<T_IQ4_XS> { enum { bs = 256, ts = 136 }; };

// deq_block<T>(b, j) is element j of the block at b.
template <int T> __device__ __forceinline__ float deq_block(const u8* b, int j);

template <> __device__ __forceinline__ float deq_block<T_F32>(const u8* b, int) { return __uint_as_float(ld_u32(b)); }
template <> __device__ __forceinline__ float deq_block<T_F16>(const u8* b, int) { return ld_half(b); }
template <> __device__ __forceinline__ float deq_block<T_BF16>(const u8* b, int) { return bf16_bits_to_f32(ld_u16(b)); }

// x = (q - 8) * d
template <> __device__ __forceinline__ float deq_block<T_Q4_0>(const u8* b, int j) {
    return (float)((int)nib32(b + 2, j) - 8) * ld_half(b);
}
// x = q * d + m
template <> __device__ __forceinline__ float deq_block<T_Q4_1>(const u8* b, int j) {
    return __fadd_rn(__fmul_rn((float)nib32(b + 4, j), ld_half(b)), ld_half(b + 2));
}
// x = (q - 16) * d, bit j of qh the fifth bit
template <> __device__ __forceinline__ float deq_block<T_Q5_0>(const u8* b, int j) {
    uint32_t q = nib32(b + 6, j) | (((ld_u32(b + 2) >> j) & 1u) << 4);
    return (float)((int)q - 16) * ld_half(b);
}
template <> __device__ __forceinline__ float deq_block<T_Q5_1>(const u8* b, int j) {
    uint32_t q = nib32(b + 8, j) | (((ld_u32(b + 4) >> j) & 1u) << 4);
    return __fadd_rn(__fmul_rn((float)q, ld_half(b)), ld_half(b + 2));
}
template <> __device__ __forceinline__ float deq_block<T_Q8_0>(const u8* b, int j) {
    return (float)(int8_t)b[2 + j] * ld_half(b);
}
template <> __device__ __forceinline__ float deq_block<T_IQ4_NL>(const u8* b, int j) {
    return ld_half(b) * (float)kvalues_iq4nl(nib32(b + 2, j));
}

// Q2_K { scales[16]; qs[64]; d; dmin }: weight j = 128h + 32k + 16s + l sits
// in bits 2k of qs[32h + 16s + l], sub-block 8h + 2k + s.
template <> __device__ __forceinline__ float deq_block<T_Q2_K>(const u8* b, int j) {
    int h = j >> 7, k = (j >> 5) & 3, s = (j >> 4) & 1, l = j & 15;
    uint32_t sc = b[8 * h + 2 * k + s];
    uint32_t q = (b[16 + 32 * h + 16 * s + l] >> (2 * k)) & 3u;
    float dl = __fmul_rn(ld_half(b + 80), (float)(sc & 15u));
    float ml = __fmul_rn(ld_half(b + 82), (float)(sc >> 4));
    return __fsub_rn(__fmul_rn(dl, (float)q), ml);
}

// Q3_K { hmask[32]; qs[64]; scales[12]; d }: low bits as Q2_K, high bit
// 4h + k of hmask[16s + l] (clear means minus 4), 6-bit scales minus 32.
template <> __device__ __forceinline__ float deq_block<T_Q3_K>(const u8* b, int j) {
    int h = j >> 7, k = (j >> 5) & 3, s = (j >> 4) & 1, l = j & 15;
    int is = 8 * h + 2 * k + s;
    const u8* sc = b + 96;
    int a = is >> 2, c = is & 3;
    uint32_t lo = (a & 1) ? sc[4 + c] : sc[c];
    lo = (a >= 2) ? (lo >> 4) : (lo & 15u);
    uint32_t hi = (sc[8 + c] >> (2 * a)) & 3u;
    int scale = (int)(lo | (hi << 4)) - 32;
    int v = (int)((b[32 + 32 * h + 16 * s + l] >> (2 * k)) & 3u);
    if ((b[16 * s + l] & (1u << (4 * h + k))) == 0) v -= 4;
    float dl = ld_half(b + 108) * (float)scale;
    return dl * (float)v;
}

// Q4_K { d; dmin; scales[12]; qs[128] }: weight j = 64g + 32u + l in nibble
// u of qs[32g + l], sub-block 2g + u.
template <> __device__ __forceinline__ float deq_block<T_Q4_K>(const u8* b, int j) {
    int g = j >> 6, u = (j >> 5) & 1, l = j & 31;
    uint32_t sc, m;
    scale_min_k4(2 * g + u, b + 4, &sc, &m);
    uint32_t qb = b[16 + 32 * g + l];
    uint32_t q = u ? (qb >> 4) : (qb & 15u);
    float d1 = ld_half(b) * (float)sc, m1 = ld_half(b + 2) * (float)m;
    return __fsub_rn(__fmul_rn(d1, (float)q), m1);
}

// Q5_K { d; dmin; scales[12]; qh[32]; qs[128] }: as Q4_K, fifth bit 2g + u of qh[l].
template <> __device__ __forceinline__ float deq_block<T_Q5_K>(const u8* b, int j) {
    int g = j >> 6, u = (j >> 5) & 1, l = j & 31;
    uint32_t sc, m;
    scale_min_k4(2 * g + u, b + 4, &sc, &m);
    uint32_t qb = b[48 + 32 * g + l];
    uint32_t q = (u ? (qb >> 4) : (qb & 15u)) + (((b[16 + l] >> (2 * g + u)) & 1u) << 4);
    float d1 = ld_half(b) * (float)sc, m1 = ld_half(b + 2) * (float)m;
    return __fsub_rn(__fmul_rn(d1, (float)q), m1);
}

// Q6_K { ql[128]; qh[64]; scales[16]; d }: weight j = 128h + 32k + l takes
// nibble k/2 of ql[64h + l + 32(k&1)], bits 2k of qh[32h + l], scale
// 8h + l/16 + 2k.
template <> __device__ __forceinline__ float deq_block<T_Q6_K>(const u8* b, int j) {
    int h = j >> 7, k = (j >> 5) & 3, l = j & 31;
    uint32_t qlb = b[64 * h + l + 32 * (k & 1)];
    uint32_t lo = (k >= 2) ? (qlb >> 4) : (qlb & 15u);
    uint32_t hi = (b[128 + 32 * h + l] >> (2 * k)) & 3u;
    int q = (int)(lo | (hi << 4)) - 32;
    float sc = (float)(int8_t)b[192 + 8 * h + (l >> 4) + 2 * k];
    return (ld_half(b + 208) * sc) * (float)q;
}

// IQ4_XS { d; scales_h (u16); scales_l[4]; qs[128] }: sub-block ib of 32
// weights with scale ls - 32, nibbles packed as Q4_0.
template <> __device__ __forceinline__ float deq_block<T_IQ4_XS>(const u8* b, int j) {
    int ib = j >> 5;
    uint32_t ls = ((b[4 + (ib >> 1)] >> (4 * (ib & 1))) & 15u) | (((ld_u16(b + 2) >> (2 * ib)) & 3u) << 4);
    float dl = ld_half(b) * (float)((int)ls - 32);
    return dl * (float)kvalues_iq4nl(nib32(b + 8 + 16 * ib, j & 31));
}

// deq<T>(row, k): element k of a row starting at byte row.
template <int T> __device__ __forceinline__ float deq(const u8* row, int k) {
    int blk = k / qtype<T>::bs;
    return deq_block<T>(row + (size_t)blk * qtype<T>::ts, k - blk * qtype<T>::bs);
}

// FOR_EACH_TYPE(X) instantiates X(suffix, type id) for every weight type.
#define FOR_EACH_TYPE(X) \
    X(f32, T_F32)        \
    X(f16, T_F16)        \
    X(bf16, T_BF16)      \
    X(q4_0, T_Q4_0)      \
    X(q4_1, T_Q4_1)      \
    X(q5_0, T_Q5_0)      \
    X(q5_1, T_Q5_1)      \
    X(q8_0, T_Q8_0)      \
    X(q2_K, T_Q2_K)      \
    X(q3_K, T_Q3_K)      \
    X(q4_K, T_Q4_K)      \
    X(q5_K, T_Q5_K)      \
    X(q6_K, T_Q6_K)      \
    X(iq4_nl, T_IQ4_NL)  \
    X(iq4_xs, T_IQ4_XS)
