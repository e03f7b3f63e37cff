//go:build goexperiment.simd && amd64

#include "textflag.h"

// func roundF16F16C(x, y *float32, n int)
//
// y[i] = float32(half(x[i])) for i < n (a multiple of 8): F16C's
// VCVTPS2PH with round to nearest even (imm 0: not MXCSR's mode), then
// VCVTPH2PS back (exact), 16 values a step and a last 8.
TEXT ·roundF16F16C(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ rdone
	SHRQ $1, CX
	JEQ rlast
rloop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VCVTPS2PH $0, Y0, X2
	VCVTPS2PH $0, Y1, X3
	VCVTPH2PS X2, Y0
	VCVTPH2PS X3, Y1
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ rloop
rlast:
	MOVQ n+16(FP), CX
	TESTQ $8, CX
	JEQ rdone
	VMOVUPS 0(SI), Y0
	VCVTPS2PH $0, Y0, X2
	VCVTPH2PS X2, Y0
	VMOVUPS Y0, 0(DI)
rdone:
	VZEROUPPER
	RET
