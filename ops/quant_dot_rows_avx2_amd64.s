//go:build goexperiment.simd && amd64

#include "textflag.h"
#include "q8_0_avx2_amd64.h"

// PFDIST is how far ahead of the weight loads the row kernels prefetch
// (PREFETCHT0): the rows of a call are one address-ordered stream, so this
// runs into the next rows. 1 KiB measured better than none on the shared
// EPYC (Zen 3) this was tuned on, 5.4-8.6 against 6.2-9.9 GB/s out of
// DRAM for Q8_0, one thread; a build can override it with
// -asmflags=ladder-engine/ops=-D=PFDIST=n.
#ifndef PFDIST
#define PFDIST 1024
#endif

// Decode row kernels for AVX2 (no AVX-512): every weight row of a DotRows
// call in one assembly loop, the constants held in registers, one row at a
// time in address order (see quant_dot_rows_simd.go on DRAM streaming).
// The 8-bit products are ggml's AVX2 mul_sum_i8_pairs: VPABSB of the
// weight, VPSIGNB of the activation by it, VPMADDUBSW (pair sums at most
// 2·128·127 = 32512, no saturation), VPMADDWD by ones. Integer block sums
// are exact; each block scale product dw·da rounds once as in the
// references (both halves widened exactly by VCVTPH2PS); only the float32
// accumulation order differs. Each row's eight lanes end summed as hsum8
// does: u = lo + hi, then (u0 + u1) + (u2 + u3).

// Every instruction here is VEX-encoded: constants reach the vector
// registers by VMOVQ, not MOVQ, which assembles to the legacy SSE
// encoding; with the upper halves dirty, the Q4_0 kernel ran 20× slower
// with one such MOVQ in its loop on the CPU this was written on.

// HSUM8 leaves in the low lane of X0 the sum of the eight lanes of Y0,
// (u0 + u1) + (u2 + u3) with u = lo + hi (hsum8's order). Clobbers X1.
#define HSUM8 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VPERMILPS $0xb1, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDSS X1, X0, X0

// WIDEN_F16 and WIDEN_BF16 widen eight 16-bit floats at src to float32
// in dst, exactly: F16C's VCVTPH2PS; zero-extension and a shift by 16.
#define WIDEN_F16(src, dst) VCVTPH2PS src, dst
#define WIDEN_BF16(src, dst) VPMOVZXWD src, dst; VPSLLD $16, dst, dst

// ROWS16 is the body of the 16-bit float row kernels below, WIDEN their
// conversion: per row, two accumulators over groups of 16 (Y0 the first
// 8, Y1 the second), two groups a step, then HSUM8.
#define ROWS16(WIDEN) \
	MOVQ w+0(FP), SI; \
	MOVQ rowBytes+8(FP), R8; \
	MOVQ rows+16(FP), R9; \
	MOVQ n16+24(FP), CX; \
	MOVQ a+32(FP), DI; \
	MOVQ out+40(FP), DX; \
row: \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	MOVQ SI, AX; \
	MOVQ DI, BX; \
	MOVQ CX, R10; \
	SHRQ $1, R10; \
	JEQ odd; \
loop: \
	WIDEN(0(AX), Y2); \
	VFMADD231PS 0(BX), Y2, Y0; \
	WIDEN(16(AX), Y3); \
	VFMADD231PS 32(BX), Y3, Y1; \
	WIDEN(32(AX), Y4); \
	VFMADD231PS 64(BX), Y4, Y0; \
	WIDEN(48(AX), Y5); \
	VFMADD231PS 96(BX), Y5, Y1; \
	PREFETCHT0 PFDIST(AX); \
	ADDQ $64, AX; \
	ADDQ $128, BX; \
	DECQ R10; \
	JNZ loop; \
odd: \
	TESTQ $1, CX; \
	JEQ sum; \
	WIDEN(0(AX), Y2); \
	VFMADD231PS 0(BX), Y2, Y0; \
	WIDEN(16(AX), Y3); \
	VFMADD231PS 32(BX), Y3, Y1; \
sum: \
	VADDPS Y1, Y0, Y0; \
	HSUM8; \
	VMOVSS X0, (DX); \
	ADDQ $4, DX; \
	ADDQ R8, SI; \
	DECQ R9; \
	JNZ row; \
	VZEROUPPER; \
	RET

// Q8BLOCK adds to ACC the Q8_0 weight block at off(AX) times the prepared
// activation block at aoff(BX) (32 quants, then its scale in 8 lanes).
#define Q8BLOCK(off, aoff, ACC, T0, T1, T2, T3, XT3) \
	VMOVDQU off+2(AX), T0; \
	VPABSB T0, T1; \
	VMOVDQU aoff(BX), T2; \
	VPSIGNB T0, T2, T2; \
	VPMADDUBSW T2, T1, T1; \
	VPMADDWD Y15, T1, T1; \
	VCVTDQ2PS T1, T1; \
	VPBROADCASTW off(AX), XT3; \
	VCVTPH2PS XT3, T3; \
	VMULPS aoff+32(BX), T3, T3; \
	VFMADD231PS T3, T1, ACC

// func dotRowsQ8_0Asm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)
//
// out[r] = Σ over the nb Q8_0 blocks of row r (at w + r·rowBytes) against
// the activation row a laid out by prepRowsQ8_0Dup (per block, 32 quants
// and the scale as float32 in eight lanes: 64 bytes). rows >= 1, nb >= 1.
// Even and odd blocks go to two accumulators, as in dotQ8_0AVX2.
TEXT ·dotRowsQ8_0Asm(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R8
	MOVQ rows+16(FP), R9
	MOVQ nb+24(FP), CX
	MOVQ a+32(FP), DI
	MOVQ out+40(FP), DX
	MOVL $0x00010001, AX
	VMOVQ AX, X15
	VPBROADCASTD X15, Y15 // int16 ones

q8row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ CX, R10
	SHRQ $1, R10
	JEQ q8odd

q8pair:
	Q8BLOCK(0, 0, Y0, Y4, Y5, Y6, Y7, X7)
	Q8BLOCK(34, 64, Y1, Y8, Y9, Y10, Y11, X11)
	PREFETCHT0 PFDIST(AX)
	ADDQ $68, AX
	ADDQ $128, BX
	DECQ R10
	JNZ q8pair

q8odd:
	TESTQ $1, CX
	JEQ q8sum
	Q8BLOCK(0, 0, Y0, Y4, Y5, Y6, Y7, X7)

q8sum:
	VADDPS Y1, Y0, Y0
	HSUM8
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R8, SI
	DECQ R9
	JNZ q8row
	VZEROUPPER
	RET

// func dotRowsF16Asm(w *byte, rowBytes, rows, n16 int, a *float32, out *float32)
//
// out[r] = Σ over 16·n16 halves of row r (at w + r·rowBytes) times the
// activations a, float32 (the F16 activation row widened by
// prepRowsF16). Products are exact (float32 · float32 of halves); two
// accumulators as dotF16F16C and the same final sum, so each row equals
// dotF16F16CRow's bit for bit. rows >= 1, n16 >= 1.
TEXT ·dotRowsF16Asm(SB), NOSPLIT, $0-48
	ROWS16(WIDEN_F16)

// func dotRowsBF16Asm(w *byte, rowBytes, rows, n16 int, a *float32, out *float32)
//
// dotRowsF16Asm for bfloat16 weights, against the BF16 activation row
// widened by prepRowsBF16; the accumulators and final sum of dotBF16Asm,
// so each row equals dotBF16AVX2's bit for bit. rows >= 1, n16 >= 1.
TEXT ·dotRowsBF16Asm(SB), NOSPLIT, $0-48
	ROWS16(WIDEN_BF16)

// Q4PAIR sets P to the int32 partial sums Σ(q−8)·y of the two Q4_0 blocks
// at off(AX) (block 2k in the low 128 bits, 2k+1 in the high) against pair
// k of the q8_0Prep at BX, as q4_0Pair: the nibbles unsigned into
// VPMADDUBSW with the low and high activation halves, the prepared
// correction 8·(y_j + y_j+1) subtracted, VPMADDWD by ones.
#define Q4PAIR(off, lo, hi, corr, XP, P, T) \
	VMOVDQU off+2(AX), XP; \
	VINSERTI128 $1, off+20(AX), P, P; \
	VPSRLW $4, P, T; \
	VPAND Y14, P, P; \
	VPAND Y14, T, T; \
	VPMADDUBSW lo(BX), P, P; \
	VPMADDUBSW hi(BX), T, T; \
	VPADDW T, P, P; \
	VPSUBW corr(BX), P, P; \
	VPMADDWD Y15, P, P

// func dotRowsQ4_0Asm(w *byte, rowBytes, rows, groups int, a *byte, out *float32)
//
// q4_0Row in assembly: out[r] = the lane sum over groups·8 Q4_0 blocks of
// row r (at w + r·rowBytes) against the activation row prepared by
// prepRowsQ8_0 (groups q8_0Preps). Per group: four block pairs, VPHADDD
// to the eight block sums in hOrder, one VCVTDQ2PS and one FMA by the
// scale products. The weight scales are gathered in general registers and
// widened as q4_0Scales8 does (sign-extended halves shifted 13 up, masked
// to sign, exponent and mantissa: the value times 2^-112, folded back by
// the prepared activation scales), so each product rounds once.
// rows >= 1, groups >= 1.
TEXT ·dotRowsQ4_0Asm(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R8
	MOVQ rows+16(FP), R9
	MOVQ groups+24(FP), CX
	MOVQ a+32(FP), DI
	MOVQ out+40(FP), DX
	MOVL $0x00010001, AX
	VMOVQ AX, X15
	VPBROADCASTD X15, Y15 // int16 ones
	MOVL $0x0f0f0f0f, AX
	VMOVQ AX, X14
	VPBROADCASTD X14, Y14 // nibble mask
	MOVL $0x8fffe000, AX
	VMOVQ AX, X13
	VPBROADCASTD X13, Y13 // sign, exponent and mantissa of a half 13 up

q4row:
	VXORPS Y0, Y0, Y0
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ CX, R10

q4group:
	Q4PAIR(0, 0, 128, 256, X1, Y1, Y5)
	Q4PAIR(36, 32, 160, 288, X2, Y2, Y6)
	Q4PAIR(72, 64, 192, 320, X3, Y3, Y7)
	Q4PAIR(108, 96, 224, 352, X4, Y4, Y8)
	VPHADDD Y2, Y1, Y1
	VPHADDD Y4, Y3, Y3
	VPHADDD Y3, Y1, Y1 // block sums in hOrder: 0 2 4 6 | 1 3 5 7
	VCVTDQ2PS Y1, Y1
	// the eight scales, in hOrder, as halves: 0 36 72 108 | 18 54 90 126
	MOVWLZX 0(AX), R11
	MOVWLZX 36(AX), R12
	SHLL $16, R12
	ORL R12, R11
	MOVWLZX 72(AX), R12
	MOVWLZX 108(AX), R13
	SHLL $16, R13
	ORL R13, R12
	SHLQ $32, R12
	ORQ R12, R11
	MOVWLZX 18(AX), R12
	MOVWLZX 54(AX), R13
	SHLL $16, R13
	ORL R13, R12
	MOVWLZX 90(AX), R13
	MOVWLZX 126(AX), R14
	SHLL $16, R14
	ORL R14, R13
	SHLQ $32, R13
	ORQ R13, R12
	VMOVQ R11, X9
	VPINSRQ $1, R12, X9, X9
	VPMOVSXWD X9, Y9
	VPSLLD $13, Y9, Y9
	VPAND Y13, Y9, Y9
	VMULPS 384(BX), Y9, Y9
	VFMADD231PS Y9, Y1, Y0
	PREFETCHT0 PFDIST(AX)
	PREFETCHT0 (PFDIST+64)(AX)
	PREFETCHT0 (PFDIST+128)(AX)
	ADDQ $144, AX
	ADDQ $416, BX
	DECQ R10
	JNZ q4group

	HSUM8
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R8, SI
	DECQ R9
	JNZ q4row
	VZEROUPPER
	RET

// func prepQ8_0DupAsm(enc *byte, nb int, prep *byte)
//
// prepRowsQ8_0Dup: per Q8_0 block of enc (34 bytes), its 32 quants and its
// scale widened by VCVTPH2PS (exact) in eight float32 lanes. nb >= 1.
TEXT ·prepQ8_0DupAsm(SB), NOSPLIT, $0-24
	MOVQ enc+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ prep+16(FP), DI

pq8loop:
	VMOVDQU 2(SI), Y0
	VPBROADCASTW (SI), X1
	VCVTPH2PS X1, Y1
	VMOVDQU Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $34, SI
	ADDQ $64, DI
	DECQ CX
	JNZ pq8loop
	VZEROUPPER
	RET

// func widenF16Asm(h *byte, n8 int, f *float32)
//
// f[i] = half h[i] for 8·n8 halves, by VCVTPH2PS (exact). n8 >= 1.
TEXT ·widenF16Asm(SB), NOSPLIT, $0-24
	MOVQ h+0(FP), SI
	MOVQ n8+8(FP), CX
	MOVQ f+16(FP), DI

wf16loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ wf16loop
	VZEROUPPER
	RET

// func narrowF16Asm(f *float32, n8 int, h *byte)
//
// h[i] = f[i] rounded to half, to nearest even (VCVTPS2PH $0: as
// gguf.F32ToF16, overflow to infinity, NaNs quieted), for 8·n8 values.
// n8 >= 1.
TEXT ·narrowF16Asm(SB), NOSPLIT, $0-24
	MOVQ f+0(FP), SI
	MOVQ n8+8(FP), CX
	MOVQ h+16(FP), DI

nf16loop:
	VMOVUPS (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VMOVDQU X0, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNZ nf16loop
	VZEROUPPER
	RET

// func quantizeQ8_0Asm(x *float32, nb int, dst *byte)
//
// QuantizeActQ8_0 on nb blocks (dst: 34 bytes a block, the f16 scale then
// 32 quants), the float32 operations of quantizeQ8_0I8AVX2: amax,
// d = amax/127 rounded to half by VCVTPS2PH (nearest even, as
// gguf.F32ToF16), id = 127/amax (0 for an all-zero block), x·id rounded to
// nearest even by VCVTPS2DQ (MXCSR's default mode), packed with
// saturation (never reached: |x·id| <= 127). nb >= 1.
TEXT ·quantizeQ8_0Asm(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ dst+16(FP), DI
	Q8_0_CONSTS(q8PackOrder<>(SB))

aqloop:
	Q8_0_SCALE
	VMOVD X6, AX
	MOVW AX, (DI)
	Q8_0_QUANTS
	VMOVDQU Y0, 2(DI)
	ADDQ $128, SI
	ADDQ $34, DI
	DECQ CX
	JNZ aqloop
	VZEROUPPER
	RET

// VPACKSSDW and VPACKSSWB interleave the 128-bit lanes: this VPERMD order
// puts the 32 quants back in element order.
DATA q8PackOrder<>+0(SB)/4, $0
DATA q8PackOrder<>+4(SB)/4, $4
DATA q8PackOrder<>+8(SB)/4, $1
DATA q8PackOrder<>+12(SB)/4, $5
DATA q8PackOrder<>+16(SB)/4, $2
DATA q8PackOrder<>+20(SB)/4, $6
DATA q8PackOrder<>+24(SB)/4, $3
DATA q8PackOrder<>+28(SB)/4, $7
GLOBL q8PackOrder<>(SB), RODATA|NOPTR, $32
