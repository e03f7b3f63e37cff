//go:build goexperiment.simd && amd64

#include "textflag.h"

// func dotF16F16C(w, a *byte, n int, acc *[8]float32)
//
// acc = lane-wise Σ w[i]·a[i] over n halves (n a multiple of 16), widened
// by F16C's VCVTPH2PS (exact) and summed with FMAs in two accumulators.
TEXT ·dotF16F16C(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $4, CX
	JEQ done
loop:
	VCVTPH2PS 0(SI), Y4
	VCVTPH2PS 0(DI), Y5
	VFMADD231PS Y5, Y4, Y0
	VCVTPH2PS 16(SI), Y6
	VCVTPH2PS 16(DI), Y7
	VFMADD231PS Y7, Y6, Y1
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
done:
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, 0(DX)
	VZEROUPPER
	RET

// func dotBF16Asm(w, a *byte, n int, acc *[8]float32)
//
// dotF16F16C for bfloat16: each half widened exactly by zero-extension to
// 32 bits and a shift by 16 (VPMOVZXWD, VPSLLD), same accumulators and
// order as dotBF16AVX2's vector loop.
TEXT ·dotBF16Asm(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ a+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $4, CX
	JEQ bdone
bloop:
	VPMOVZXWD 0(SI), Y4
	VPSLLD $16, Y4, Y4
	VPMOVZXWD 0(DI), Y5
	VPSLLD $16, Y5, Y5
	VFMADD231PS Y5, Y4, Y0
	VPMOVZXWD 16(SI), Y6
	VPSLLD $16, Y6, Y6
	VPMOVZXWD 16(DI), Y7
	VPSLLD $16, Y7, Y7
	VFMADD231PS Y7, Y6, Y1
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ bloop
bdone:
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, 0(DX)
	VZEROUPPER
	RET
