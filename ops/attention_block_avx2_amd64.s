//go:build goexperiment.simd && amd64

#include "textflag.h"

// The attention block kernels' inner loops (attention_block_simd.go has
// their callers and the Go twins' contract). Coefficients come
// pre-broadcast: bc row r, dimension d at bc + r·rb + 32·d, rb = 32·hd,
// and every multiply-add takes its coefficient straight from memory, so
// no scalar float instruction sits among the vector ones.

// func scoresTKernelAVX2(o0, o1, o2, o3, bc, m *float32, stride, hd, chunks int)
//
// o_r[j] = Σ_d bc[r][d]·m[d·stride + j] for j < 8·chunks (stride in
// floats), d ascending from zero, one FMA per term: sixteen keys (eight
// accumulators, enough to cover the FMA latency) at a time, then eight.
TEXT ·scoresTKernelAVX2(SB), NOSPLIT, $0-72
	MOVQ o0+0(FP), R8
	MOVQ o1+8(FP), R9
	MOVQ o2+16(FP), R10
	MOVQ o3+24(FP), R11
	MOVQ bc+32(FP), SI
	MOVQ m+40(FP), DI
	MOVQ stride+48(FP), DX
	SHLQ $2, DX
	MOVQ hd+56(FP), CX
	SHLQ $5, CX              // rb
	MOVQ chunks+64(FP), BX
	LEAQ (SI)(CX*1), R12     // row 1's coefficients
	LEAQ (R12)(CX*1), R13    // row 2's
	LEAQ (R13)(CX*1), R14    // row 3's

pairs:
	CMPQ BX, $2
	JLT  single
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
	MOVQ DI, R15

pairdims:
	VMOVUPS (R15), Y8
	VMOVUPS 32(R15), Y9
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VFMADD231PS (R12)(AX*1), Y8, Y1
	VFMADD231PS (R13)(AX*1), Y8, Y2
	VFMADD231PS (R14)(AX*1), Y8, Y3
	VFMADD231PS (SI)(AX*1), Y9, Y4
	VFMADD231PS (R12)(AX*1), Y9, Y5
	VFMADD231PS (R13)(AX*1), Y9, Y6
	VFMADD231PS (R14)(AX*1), Y9, Y7
	ADDQ DX, R15
	ADDQ $32, AX
	CMPQ AX, CX
	JLT  pairdims

	VMOVUPS Y0, (R8)
	VMOVUPS Y4, 32(R8)
	VMOVUPS Y1, (R9)
	VMOVUPS Y5, 32(R9)
	VMOVUPS Y2, (R10)
	VMOVUPS Y6, 32(R10)
	VMOVUPS Y3, (R11)
	VMOVUPS Y7, 32(R11)
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, DI
	SUBQ $2, BX
	JMP  pairs

single:
	TESTQ BX, BX
	JZ    done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX
	MOVQ DI, R15

singledims:
	VMOVUPS (R15), Y8
	VFMADD231PS (SI)(AX*1), Y8, Y0
	VFMADD231PS (R12)(AX*1), Y8, Y1
	VFMADD231PS (R13)(AX*1), Y8, Y2
	VFMADD231PS (R14)(AX*1), Y8, Y3
	ADDQ DX, R15
	ADDQ $32, AX
	CMPQ AX, CX
	JLT  singledims

	VMOVUPS Y0, (R8)
	VMOVUPS Y1, (R9)
	VMOVUPS Y2, (R10)
	VMOVUPS Y3, (R11)

done:
	VZEROUPPER
	RET

// func rankTKernelAVX2(m, bc, x0, x1, x2, x3 *float32, stride, hd, chunks int)
//
// m[d·stride + j] += Σ_r bc[r][d]·x_r[j] for j < 8·chunks, d < hd, r
// ascending, one FMA per term: sixteen keys at a time (two independent
// chains per dimension), then eight. The rows' values stay in registers
// across the dimensions, whose updates are independent of each other.
TEXT ·rankTKernelAVX2(SB), NOSPLIT, $0-72
	MOVQ m+0(FP), DI
	MOVQ bc+8(FP), SI
	MOVQ x0+16(FP), R8
	MOVQ x1+24(FP), R9
	MOVQ x2+32(FP), R10
	MOVQ x3+40(FP), R11
	MOVQ stride+48(FP), DX
	SHLQ $2, DX
	MOVQ hd+56(FP), CX
	SHLQ $5, CX
	MOVQ chunks+64(FP), BX
	LEAQ (SI)(CX*1), R12
	LEAQ (R12)(CX*1), R13
	LEAQ (R13)(CX*1), R14

rpairs:
	CMPQ BX, $2
	JLT  rsingle
	VMOVUPS (R8), Y0
	VMOVUPS (R9), Y1
	VMOVUPS (R10), Y2
	VMOVUPS (R11), Y3
	VMOVUPS 32(R8), Y4
	VMOVUPS 32(R9), Y5
	VMOVUPS 32(R10), Y6
	VMOVUPS 32(R11), Y7
	XORQ AX, AX
	MOVQ DI, R15

rpairdims:
	VMOVUPS (R15), Y8
	VMOVUPS 32(R15), Y9
	VBROADCASTSS (SI)(AX*1), Y10
	VFMADD231PS Y10, Y0, Y8
	VFMADD231PS Y10, Y4, Y9
	VBROADCASTSS (R12)(AX*1), Y11
	VFMADD231PS Y11, Y1, Y8
	VFMADD231PS Y11, Y5, Y9
	VBROADCASTSS (R13)(AX*1), Y12
	VFMADD231PS Y12, Y2, Y8
	VFMADD231PS Y12, Y6, Y9
	VBROADCASTSS (R14)(AX*1), Y13
	VFMADD231PS Y13, Y3, Y8
	VFMADD231PS Y13, Y7, Y9
	VMOVUPS Y8, (R15)
	VMOVUPS Y9, 32(R15)
	ADDQ DX, R15
	ADDQ $32, AX
	CMPQ AX, CX
	JLT  rpairdims

	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	ADDQ $64, R11
	ADDQ $64, DI
	SUBQ $2, BX
	JMP  rpairs

rsingle:
	TESTQ BX, BX
	JZ    rdone
	VMOVUPS (R8), Y0
	VMOVUPS (R9), Y1
	VMOVUPS (R10), Y2
	VMOVUPS (R11), Y3
	XORQ AX, AX
	MOVQ DI, R15

rdims:
	VMOVUPS (R15), Y4
	VFMADD231PS (SI)(AX*1), Y0, Y4
	VFMADD231PS (R12)(AX*1), Y1, Y4
	VFMADD231PS (R13)(AX*1), Y2, Y4
	VFMADD231PS (R14)(AX*1), Y3, Y4
	VMOVUPS Y4, (R15)
	ADDQ DX, R15
	ADDQ $32, AX
	CMPQ AX, CX
	JLT  rdims

rdone:
	VZEROUPPER
	RET
