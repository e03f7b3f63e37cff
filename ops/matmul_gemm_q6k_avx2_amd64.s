//go:build goexperiment.simd && amd64

#include "textflag.h"

// One activation row's int16 pair (4 bytes at p) broadcast, times both
// halves of the panel chunk (Y8: rows 0..7, Y9: rows 8..15), into the row's
// two int32 accumulators.
#define Q6K_ROW(p, lo, hi) \
	VPBROADCASTD p, Y10; \
	VPMADDWD Y10, Y8, Y11; \
	VPADDD Y11, lo, lo; \
	VPMADDWD Y10, Y9, Y12; \
	VPADDD Y12, hi, hi

// A row's sums of one super-block to float32, times d_w (Y8, Y9) · d_a
// (broadcast from daddr), added into its 16 outputs at c0 (rows 0..7) and
// c1 (rows 8..15).
#define Q6K_END(lo, hi, daddr, c0, c1) \
	VBROADCASTSS daddr, Y10; \
	VMULPS Y8, Y10, Y11; \
	VMULPS Y9, Y10, Y12; \
	VCVTDQ2PS lo, lo; \
	VCVTDQ2PS hi, hi; \
	VMOVUPS c0, Y13; \
	VFMADD231PS Y11, lo, Y13; \
	VMOVUPS Y13, c0; \
	VMOVUPS c1, Y13; \
	VFMADD231PS Y12, hi, Y13; \
	VMOVUPS Y13, c1

// func q6kKernel4x16AVX2(panel *byte, a *int16, lda int, d *float32, ldd, nsb int, c *float32, ldc int, accumulate bool)
//
// The q6kKernel contract (matmul_gemm_q6k.go) with lda, ldd and ldc in
// elements. Registers: SI panel, DI/R13/R14/R15 the four activation rows
// (advanced a super-block at a time), AX the pair offset, R9 the four
// rows' d_a (stride R10 bytes), DX c (row stride R11 bytes), CX
// super-blocks left, BX pairs left.
TEXT ·q6kKernel4x16AVX2(SB), NOSPLIT, $0-65
	MOVQ panel+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ lda+16(FP), R8
	SHLQ $1, R8
	MOVQ d+24(FP), R9
	MOVQ ldd+32(FP), R10
	SHLQ $2, R10
	MOVQ nsb+40(FP), CX
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R11
	SHLQ $2, R11
	LEAQ (DI)(R8*1), R13
	LEAQ (DI)(R8*2), R14
	LEAQ (R13)(R8*2), R15
	// c rows 2 and 3 at R12 = DX + 2·ldc; rows 0, 1 at DX, DX + ldc.
	LEAQ (DX)(R11*2), R12
	MOVBLZX accumulate+64(FP), AX
	TESTQ AX, AX
	JNE sb
	VXORPS Y13, Y13, Y13
	VMOVUPS Y13, (DX)
	VMOVUPS Y13, 32(DX)
	VMOVUPS Y13, (DX)(R11*1)
	VMOVUPS Y13, 32(DX)(R11*1)
	VMOVUPS Y13, (R12)
	VMOVUPS Y13, 32(R12)
	VMOVUPS Y13, (R12)(R11*1)
	VMOVUPS Y13, 32(R12)(R11*1)
sb:
	TESTQ CX, CX
	JLE done
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	XORQ AX, AX
	MOVQ $64, BX
pairs:
	VMOVDQU (SI), Y8
	VMOVDQU 32(SI), Y9
	Q6K_ROW((DI)(AX*1), Y0, Y1)
	Q6K_ROW((R13)(AX*1), Y2, Y3)
	Q6K_ROW((R14)(AX*1), Y4, Y5)
	Q6K_ROW((R15)(AX*1), Y6, Y7)
	VMOVDQU 64(SI), Y8
	VMOVDQU 96(SI), Y9
	Q6K_ROW(4(DI)(AX*1), Y0, Y1)
	Q6K_ROW(4(R13)(AX*1), Y2, Y3)
	Q6K_ROW(4(R14)(AX*1), Y4, Y5)
	Q6K_ROW(4(R15)(AX*1), Y6, Y7)
	ADDQ $128, SI
	ADDQ $8, AX
	DECQ BX
	JNZ pairs
	// SI at the 16 row scales d_w
	VMOVUPS (SI), Y8
	VMOVUPS 32(SI), Y9
	Q6K_END(Y0, Y1, (R9), (DX), 32(DX))
	Q6K_END(Y2, Y3, (R9)(R10*1), (DX)(R11*1), 32(DX)(R11*1))
	Q6K_END(Y4, Y5, (R9)(R10*2), (R12), 32(R12))
	LEAQ (R9)(R10*2), AX
	Q6K_END(Y6, Y7, (AX)(R10*1), (R12)(R11*1), 32(R12)(R11*1))
	ADDQ $64, SI
	ADDQ $512, DI
	ADDQ $512, R13
	ADDQ $512, R14
	ADDQ $512, R15
	ADDQ $4, R9
	DECQ CX
	JMP sb
done:
	VZEROUPPER
	RET

// One quant plane's 32 values (bytes in yp, xp its low half) widened to
// int16, less 32, times scales s0 (values 0..15) and s1 (16..31), stored
// at off(DX).
#define Q6_PLANE_OUT(yp, xp, s0, s1, off) \
	VPMOVZXBW xp, Y5; \
	VEXTRACTI128 $1, yp, X6; \
	VPMOVZXBW X6, Y6; \
	VPSUBW Y13, Y5, Y5; \
	VPSUBW Y13, Y6, Y6; \
	MOVBLSX s0(R8), AX; \
	VMOVD AX, X7; \
	VPBROADCASTW X7, Y7; \
	VPMULLW Y7, Y5, Y5; \
	MOVBLSX s1(R8), AX; \
	VMOVD AX, X7; \
	VPBROADCASTW X7, Y7; \
	VPMULLW Y7, Y6, Y6; \
	VMOVDQU Y5, off(DX); \
	VMOVDQU Y6, off+32(DX)

// func q6kHalfAVX2(ql, qh, sc *byte, v *int16)
//
// q6KValues for one half super-block: ql its 64 low-bit bytes, qh its 32
// high-bit bytes, sc its 8 scales; v receives the 128 values sc·(q−32),
// plane k (values 32k..32k+31) from the low (k < 2) or high (k >= 2)
// nibbles of ql[0:32] (k = 0, 2) or ql[32:64] (k = 1, 3) and two bits of qh.
TEXT ·q6kHalfAVX2(SB), NOSPLIT, $0-32
	MOVQ ql+0(FP), SI
	MOVQ qh+8(FP), DI
	MOVQ sc+16(FP), R8
	MOVQ v+24(FP), DX
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x30303030, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x00200020, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU (DI), Y2
	// plane 0: ql[l] & 15 | (qh[l] & 3) << 4
	VPAND Y15, Y0, Y3
	VPSLLW $4, Y2, Y4
	VPAND Y14, Y4, Y4
	VPOR Y4, Y3, Y3
	Q6_PLANE_OUT(Y3, X3, 0, 1, 0)
	// plane 1: ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4
	VPAND Y15, Y1, Y3
	VPSLLW $2, Y2, Y4
	VPAND Y14, Y4, Y4
	VPOR Y4, Y3, Y3
	Q6_PLANE_OUT(Y3, X3, 2, 3, 64)
	// plane 2: ql[l] >> 4 | (qh[l] >> 4 & 3) << 4
	VPSRLW $4, Y0, Y3
	VPAND Y15, Y3, Y3
	VPAND Y14, Y2, Y4
	VPOR Y4, Y3, Y3
	Q6_PLANE_OUT(Y3, X3, 4, 5, 128)
	// plane 3: ql[l+32] >> 4 | (qh[l] >> 6) << 4
	VPSRLW $4, Y1, Y3
	VPAND Y15, Y3, Y3
	VPSRLW $2, Y2, Y4
	VPAND Y14, Y4, Y4
	VPOR Y4, Y3, Y3
	Q6_PLANE_OUT(Y3, X3, 6, 7, 192)
	VZEROUPPER
	RET
