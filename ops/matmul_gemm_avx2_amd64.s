//go:build goexperiment.simd && amd64

#include "textflag.h"

// func gemm5x16AVX2(panel, a *float32, lda, depth int, c *float32, ldc int, accumulate bool)
//
// c[i*ldc+j] (+)= Σ_k a[i*lda+k]·panel[k*32+j] for i < 5, j < 16: the
// AVX2 panel kernel's 5-row pass (matmul_gemm_avx2.go) with its registers
// placed by hand. Accumulators Y0..Y9 (row i: Y2i, Y2i+1), panel columns
// Y10, Y11, broadcasts Y12..Y14; per k two loads, five broadcasts, ten
// FMAs, and nothing else but the loop count.
TEXT ·gemm5x16AVX2(SB), NOSPLIT, $0-49
	MOVQ panel+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ lda+16(FP), R8
	MOVQ depth+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	MOVBLZX accumulate+48(FP), AX
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (DI)(R8*1), R10 // a rows 1..4
	LEAQ (DI)(R8*2), R11
	LEAQ (R10)(R8*2), R12
	LEAQ (DI)(R8*4), R13
	LEAQ (DX)(R9*1), BX // c row 1; rows 2..4 from DX, BX and R9
	TESTQ AX, AX
	JEQ zero
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 0(BX), Y2
	VMOVUPS 32(BX), Y3
	VMOVUPS 0(DX)(R9*2), Y4
	VMOVUPS 32(DX)(R9*2), Y5
	VMOVUPS 0(BX)(R9*2), Y6
	VMOVUPS 32(BX)(R9*2), Y7
	VMOVUPS 0(DX)(R9*4), Y8
	VMOVUPS 32(DX)(R9*4), Y9
	JMP start
zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
start:
	XORQ AX, AX // k
	TESTQ CX, CX
	JLE done
loop:
	VMOVUPS 0(SI), Y10
	VMOVUPS 32(SI), Y11
	VBROADCASTSS (DI)(AX*4), Y12
	VFMADD231PS Y10, Y12, Y0
	VFMADD231PS Y11, Y12, Y1
	VBROADCASTSS (R10)(AX*4), Y13
	VFMADD231PS Y10, Y13, Y2
	VFMADD231PS Y11, Y13, Y3
	VBROADCASTSS (R11)(AX*4), Y14
	VFMADD231PS Y10, Y14, Y4
	VFMADD231PS Y11, Y14, Y5
	VBROADCASTSS (R12)(AX*4), Y12
	VFMADD231PS Y10, Y12, Y6
	VFMADD231PS Y11, Y12, Y7
	VBROADCASTSS (R13)(AX*4), Y13
	VFMADD231PS Y10, Y13, Y8
	VFMADD231PS Y11, Y13, Y9
	ADDQ $128, SI
	INCQ AX
	CMPQ AX, CX
	JLT loop
done:
	VMOVUPS Y0, 0(DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 0(BX)
	VMOVUPS Y3, 32(BX)
	VMOVUPS Y4, 0(DX)(R9*2)
	VMOVUPS Y5, 32(DX)(R9*2)
	VMOVUPS Y6, 0(BX)(R9*2)
	VMOVUPS Y7, 32(BX)(R9*2)
	VMOVUPS Y8, 0(DX)(R9*4)
	VMOVUPS Y9, 32(DX)(R9*4)
	VZEROUPPER
	RET
