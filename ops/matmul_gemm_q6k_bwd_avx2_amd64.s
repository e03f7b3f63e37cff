//go:build goexperiment.simd && amd64

#include "textflag.h"

// One gradient row's pair (4 bytes at addr) broadcast, times the panel
// pair's two halves (Y12: columns 0..7, Y13: 8..15), into the row's two
// int32 accumulators.
#define BWD_ROW(addr, lo, hi) \
	VPBROADCASTD addr, Y14; \
	VPMADDWD Y14, Y12, Y15; \
	VPADDD Y15, lo, lo; \
	VPMADDWD Y14, Y13, Y15; \
	VPADDD Y15, hi, hi

// A row's block sums to float32, added into its 16 outputs (c0: columns
// 0..7, c1: 8..15) with one fma by the block's scale at eaddr.
#define BWD_END(lo, hi, eaddr, c0, c1) \
	VBROADCASTSS eaddr, Y12; \
	VCVTDQ2PS lo, lo; \
	VCVTDQ2PS hi, hi; \
	VMOVUPS c0, Y13; \
	VFMADD231PS Y12, lo, Y13; \
	VMOVUPS Y13, c0; \
	VMOVUPS c1, Y13; \
	VFMADD231PS Y12, hi, Y13; \
	VMOVUPS Y13, c1

// func q6kBwdKernel6x16AVX2(panel *byte, k *int16, ldk int, e *float32, nblk int, c *float32, ldc int)
//
// The q6kBwdKernel contract (matmul_gemm_q6k_bwd.go), ldk and ldc in
// elements. Registers: SI panel, DI/R10 gradient rows 0 and 3 (rows 1, 2
// and 4, 5 at R8 and 2·R8 past them; all advanced a pair at a time), R9
// the block scales, DX/R12/R13 c rows 0, 2, 4 (row stride R11 bytes), CX
// blocks left, BX pairs left.
TEXT ·q6kBwdKernel6x16AVX2(SB), NOSPLIT, $0-56
	MOVQ panel+0(FP), SI
	MOVQ k+8(FP), DI
	MOVQ ldk+16(FP), R8
	SHLQ $1, R8
	MOVQ e+24(FP), R9
	MOVQ nblk+32(FP), CX
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R11
	SHLQ $2, R11
	LEAQ (DI)(R8*2), R10
	ADDQ R8, R10
	LEAQ (DX)(R11*2), R12
	LEAQ (R12)(R11*2), R13
blk:
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
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	MOVQ $32, BX
pairs:
	VMOVDQU (SI), Y12
	VMOVDQU 32(SI), Y13
	BWD_ROW((DI), Y0, Y1)
	BWD_ROW((DI)(R8*1), Y2, Y3)
	BWD_ROW((DI)(R8*2), Y4, Y5)
	BWD_ROW((R10), Y6, Y7)
	BWD_ROW((R10)(R8*1), Y8, Y9)
	BWD_ROW((R10)(R8*2), Y10, Y11)
	ADDQ $64, SI
	ADDQ $4, DI
	ADDQ $4, R10
	DECQ BX
	JNZ pairs
	BWD_END(Y0, Y1, (R9), (DX), 32(DX))
	BWD_END(Y2, Y3, 4(R9), (DX)(R11*1), 32(DX)(R11*1))
	BWD_END(Y4, Y5, 8(R9), (R12), 32(R12))
	BWD_END(Y6, Y7, 12(R9), (R12)(R11*1), 32(R12)(R11*1))
	BWD_END(Y8, Y9, 16(R9), (R13), 32(R13))
	BWD_END(Y10, Y11, 20(R9), (R13)(R11*1), 32(R13)(R11*1))
	ADDQ $24, R9
	DECQ CX
	JMP blk
done:
	VZEROUPPER
	RET

// h = g·dv, eight values to a register; then k = round(h·inv) packed to int16 in order.
#define BWD_LOAD(off, y) \
	VMOVUPS off(SI), y; \
	VMULPS off(DI), y, y

#define BWD_NONFINITE(y) \
	VSUBPS y, y, Y11; \
	VCMPPS $3, Y11, Y11, Y11; \
	VORPS Y11, Y10, Y10

#define BWD_PACK(a, b, off) \
	VMULPS Y12, a, a; \
	VMULPS Y12, b, b; \
	VCVTPS2DQ a, a; \
	VCVTPS2DQ b, b; \
	VPACKSSDW b, a, a; \
	VPERMQ $0xD8, a, a; \
	VMOVDQU a, off(DX)

// func q6kBwdQuantAVX2(x, dv *float32, k *int16) float32
//
// q6kBwdQuantGo on one block of 64: e = max|g·dv|/4095 (returned) and
// k = round(g·dv·(4095/max)), 0 where the block is zero; e is NaN (and k
// unspecified) when a value is not finite. VCVTPS2DQ rounds to nearest
// even, as the reference does.
TEXT ·q6kBwdQuantAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ dv+8(FP), DI
	MOVQ k+16(FP), DX
	BWD_LOAD(0, Y0)
	BWD_LOAD(32, Y1)
	BWD_LOAD(64, Y2)
	BWD_LOAD(96, Y3)
	BWD_LOAD(128, Y4)
	BWD_LOAD(160, Y5)
	BWD_LOAD(192, Y6)
	BWD_LOAD(224, Y7)
	// Y10: all ones where some h is not finite (h − h is NaN), in every
	// lane after the horizontal or; it makes the scale NaN.
	VSUBPS Y0, Y0, Y10
	VCMPPS $3, Y10, Y10, Y10
	BWD_NONFINITE(Y1)
	BWD_NONFINITE(Y2)
	BWD_NONFINITE(Y3)
	BWD_NONFINITE(Y4)
	BWD_NONFINITE(Y5)
	BWD_NONFINITE(Y6)
	BWD_NONFINITE(Y7)
	VPERM2F128 $1, Y10, Y10, Y11
	VORPS Y11, Y10, Y10
	VPERMILPS $0x4E, Y10, Y11
	VORPS Y11, Y10, Y10
	VPERMILPS $0xB1, Y10, Y11
	VORPS Y11, Y10, Y10
	VPCMPEQD Y15, Y15, Y15
	VPSRLD $1, Y15, Y15
	VANDPS Y15, Y0, Y8
	VANDPS Y15, Y1, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y2, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y3, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y4, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y5, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y6, Y9
	VMAXPS Y9, Y8, Y8
	VANDPS Y15, Y7, Y9
	VMAXPS Y9, Y8, Y8
	VPERM2F128 $1, Y8, Y8, Y9
	VMAXPS Y9, Y8, Y8
	VPERMILPS $0x4E, Y8, Y9
	VMAXPS Y9, Y8, Y8
	VPERMILPS $0xB1, Y8, Y9
	VMAXPS Y9, Y8, Y8
	MOVL $0x457ff000, AX // 4095.0
	VMOVD AX, X14
	VBROADCASTSS X14, Y14
	VDIVPS Y14, Y8, Y13
	VDIVPS Y8, Y14, Y12
	VXORPS Y11, Y11, Y11
	VCMPPS $0, Y11, Y8, Y9
	VANDNPS Y12, Y9, Y12
	VORPS Y10, Y13, Y13
	BWD_PACK(Y0, Y1, 0)
	BWD_PACK(Y2, Y3, 32)
	BWD_PACK(Y4, Y5, 64)
	BWD_PACK(Y6, Y7, 96)
	VMOVSS X13, ret+24(FP)
	VZEROUPPER
	RET
