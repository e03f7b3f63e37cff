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
