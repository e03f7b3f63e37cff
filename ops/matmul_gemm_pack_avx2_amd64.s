//go:build goexperiment.simd && amd64

#include "textflag.h"

// TRANSPOSE8 transposes the 8×8 float32 block in Y0..Y7 (row r in Yr) in
// place through Y8..Y15, leaving column t in Y(8+t): unpack pairs of rows,
// shuffle pairs of pairs, then swap 128-bit lanes.
#define TRANSPOSE8 \
	VUNPCKLPS Y1, Y0, Y8; \
	VUNPCKHPS Y1, Y0, Y9; \
	VUNPCKLPS Y3, Y2, Y10; \
	VUNPCKHPS Y3, Y2, Y11; \
	VUNPCKLPS Y5, Y4, Y12; \
	VUNPCKHPS Y5, Y4, Y13; \
	VUNPCKLPS Y7, Y6, Y14; \
	VUNPCKHPS Y7, Y6, Y15; \
	VSHUFPS $0x44, Y10, Y8, Y0; \
	VSHUFPS $0xEE, Y10, Y8, Y1; \
	VSHUFPS $0x44, Y11, Y9, Y2; \
	VSHUFPS $0xEE, Y11, Y9, Y3; \
	VSHUFPS $0x44, Y14, Y12, Y4; \
	VSHUFPS $0xEE, Y14, Y12, Y5; \
	VSHUFPS $0x44, Y15, Y13, Y6; \
	VSHUFPS $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// STORE8 stores column t of the block (Y8+t) at k offset t of the panel
// (rows of 32 floats, 128 bytes) at R11.
#define STORE8 \
	VMOVUPS Y8, 0(R11); \
	VMOVUPS Y9, 128(R11); \
	VMOVUPS Y10, 256(R11); \
	VMOVUPS Y11, 384(R11); \
	VMOVUPS Y12, 512(R11); \
	VMOVUPS Y13, 640(R11); \
	VMOVUPS Y14, 768(R11); \
	VMOVUPS Y15, 896(R11)

// PROLOGUE loads the arguments: DI the panel, SI the first row's first
// half, BX the row stride in bytes, DX 3·stride, CX the 8-deep blocks, R8
// the groups of 8 rows (4).
#define PROLOGUE \
	MOVQ panel+0(FP), DI; \
	MOVQ src+8(FP), SI; \
	MOVQ stride+16(FP), BX; \
	MOVQ depth+24(FP), CX; \
	SHRQ $3, CX; \
	LEAQ (BX)(BX*2), DX; \
	MOVQ $4, R8

// func packF16PanelAVX2(panel *float32, src *byte, stride, depth int)
//
// panel[k*32+j] = half(src[j*stride+2k]) for j < 32, k < depth (a multiple
// of 8): 32 rows of F16 weights widened exactly by VCVTPH2PS and transposed
// into the GEMM's column-major panel (packPanel) 8×8 at a time.
TEXT ·packF16PanelAVX2(SB), NOSPLIT, $0-32
	PROLOGUE
	TESTQ CX, CX
	JEQ f16done
f16group:
	MOVQ SI, R9          // rows 0..3 of the group
	LEAQ (SI)(BX*4), R10 // rows 4..7
	MOVQ DI, R11
	MOVQ CX, R12
f16loop:
	VCVTPH2PS (R9), Y0
	VCVTPH2PS (R9)(BX*1), Y1
	VCVTPH2PS (R9)(BX*2), Y2
	VCVTPH2PS (R9)(DX*1), Y3
	VCVTPH2PS (R10), Y4
	VCVTPH2PS (R10)(BX*1), Y5
	VCVTPH2PS (R10)(BX*2), Y6
	VCVTPH2PS (R10)(DX*1), Y7
	TRANSPOSE8
	STORE8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $1024, R11
	DECQ R12
	JNZ f16loop
	LEAQ (SI)(BX*8), SI
	ADDQ $32, DI
	DECQ R8
	JNZ f16group
f16done:
	VZEROUPPER
	RET

// WIDEN_BF16 widens the 8 bfloat16 values at the given address into ymm y:
// zero-extend to 32 bits, shift into the high half (exact).
#define WIDEN_BF16(addr, y) \
	VPMOVZXWD addr, y; \
	VPSLLD $16, y, y

// func packBF16PanelAVX2(panel *float32, src *byte, stride, depth int)
//
// packF16PanelAVX2 for bfloat16 weights.
TEXT ·packBF16PanelAVX2(SB), NOSPLIT, $0-32
	PROLOGUE
	TESTQ CX, CX
	JEQ bf16done
bf16group:
	MOVQ SI, R9
	LEAQ (SI)(BX*4), R10
	MOVQ DI, R11
	MOVQ CX, R12
bf16loop:
	WIDEN_BF16((R9), Y0)
	WIDEN_BF16((R9)(BX*1), Y1)
	WIDEN_BF16((R9)(BX*2), Y2)
	WIDEN_BF16((R9)(DX*1), Y3)
	WIDEN_BF16((R10), Y4)
	WIDEN_BF16((R10)(BX*1), Y5)
	WIDEN_BF16((R10)(BX*2), Y6)
	WIDEN_BF16((R10)(DX*1), Y7)
	TRANSPOSE8
	STORE8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $1024, R11
	DECQ R12
	JNZ bf16loop
	LEAQ (SI)(BX*8), SI
	ADDQ $32, DI
	DECQ R8
	JNZ bf16group
bf16done:
	VZEROUPPER
	RET

// func packF32PanelAVX2(panel *float32, src *byte, stride, depth int)
//
// packF16PanelAVX2 for float32 weights (a plain transpose).
TEXT ·packF32PanelAVX2(SB), NOSPLIT, $0-32
	PROLOGUE
	TESTQ CX, CX
	JEQ f32done
f32group:
	MOVQ SI, R9
	LEAQ (SI)(BX*4), R10
	MOVQ DI, R11
	MOVQ CX, R12
f32loop:
	VMOVUPS (R9), Y0
	VMOVUPS (R9)(BX*1), Y1
	VMOVUPS (R9)(BX*2), Y2
	VMOVUPS (R9)(DX*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(BX*1), Y5
	VMOVUPS (R10)(BX*2), Y6
	VMOVUPS (R10)(DX*1), Y7
	TRANSPOSE8
	STORE8
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $1024, R11
	DECQ R12
	JNZ f32loop
	LEAQ (SI)(BX*8), SI
	ADDQ $32, DI
	DECQ R8
	JNZ f32group
f32done:
	VZEROUPPER
	RET

// func packActs6AVX2(dst, src *float32, lda, blocks int)
//
// dst[6k+i] = src[i*lda+k] for i < 6, k < 8·blocks: six activation rows
// interleaved k-major for gemm6x16PackedAVX2, 8 columns at a time: the
// rows in Y0..Y5 (Y6, Y7: don't care), TRANSPOSE8, then each column's
// first six lanes stored 24 bytes apart, in order, each 32-byte store's
// last two lanes overwritten by the next one. The last store writes two
// floats past dst[6·8·blocks]; the caller leaves room.
TEXT ·packActs6AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lda+16(FP), BX
	MOVQ blocks+24(FP), CX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), R10
	ADDQ SI, R10 // row 3
	TESTQ CX, CX
	JEQ adone
aloop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(BX*1), Y1
	VMOVUPS (SI)(BX*2), Y2
	VMOVUPS (R10), Y3
	VMOVUPS (R10)(BX*1), Y4
	VMOVUPS (R10)(BX*2), Y5
	TRANSPOSE8
	VMOVUPS Y8, 0(DI)
	VMOVUPS Y9, 24(DI)
	VMOVUPS Y10, 48(DI)
	VMOVUPS Y11, 72(DI)
	VMOVUPS Y12, 96(DI)
	VMOVUPS Y13, 120(DI)
	VMOVUPS Y14, 144(DI)
	VMOVUPS Y15, 168(DI)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $192, DI
	DECQ CX
	JNZ aloop
adone:
	VZEROUPPER
	RET
