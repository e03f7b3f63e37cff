//go:build goexperiment.simd && amd64

#include "textflag.h"
#include "q8_0_avx2_amd64.h"

// The int8 tile kernels of matmul_gemm_i8.go: 4 activation rows times a
// packed panel of 8 weight rows over nb 32-blocks. Accumulators Y0..Y3
// (activation row i, lanes = weight rows), block sums Y4..Y7, weight chunk
// Y8 (Q8_0: |w| in Y13), int16 ones Y11, the block's weight scales Y12.
// Per block and activation row: 8 broadcasts of 4 activation bytes against
// 8 chunk loads shared by the 4 rows, then one VPMADDWD/convert/FMA.

// Arguments as (panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int):
// SI panel, DI and R10 activation rows 0 and 3 (rows 1, 2 at DI+R8, DI+2·R8),
// BX/R12 scales and R11/R13 corrections of rows 0 and 3 (row stride R9
// bytes), CX blocks left, DX c, AX ldc in bytes.
#define I8_PROLOGUE \
	MOVQ panel+0(FP), SI; \
	MOVQ q+8(FP), DI; \
	MOVQ lda+16(FP), R8; \
	MOVQ d+24(FP), BX; \
	MOVQ corr+32(FP), R11; \
	MOVQ ldd+40(FP), R9; \
	MOVQ nb+48(FP), CX; \
	MOVQ c+56(FP), DX; \
	SHLQ $2, R9; \
	LEAQ (DI)(R8*2), R10; \
	ADDQ R8, R10; \
	LEAQ (BX)(R9*2), R12; \
	ADDQ R9, R12; \
	LEAQ (R11)(R9*2), R13; \
	ADDQ R9, R13; \
	MOVL $0x00010001, AX; \
	VMOVQ AX, X11; \
	VPBROADCASTD X11, Y11; \
	MOVQ ldc+64(FP), AX; \
	SHLQ $2, AX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3

#define I8_NEXT_BLOCK \
	ADDQ $288, SI; \
	ADDQ $32, DI; \
	ADDQ $32, R10; \
	ADDQ $4, BX; \
	ADDQ $4, R12; \
	ADDQ $4, R11; \
	ADDQ $4, R13

#define I8_STORE \
	VMOVUPS Y0, (DX); \
	VMOVUPS Y1, (DX)(AX*1); \
	VMOVUPS Y2, (DX)(AX*2); \
	LEAQ (DX)(AX*2), DX; \
	VMOVUPS Y3, (DX)(AX*1); \
	VZEROUPPER

#define I8_ZERO_SUMS \
	VPXOR Y4, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7

// Q4_0: unsigned nibbles (Y8) times signed activations, int16 sums (at most
// 8·2·15·128 = 30720 in magnitude: no saturation).
#define Q4_ROW(aaddr, S, T) \
	VPBROADCASTD aaddr, T; \
	VPMADDUBSW T, Y8, T; \
	VPADDW T, S, S

#define Q4_CHUNK(woff, aoff) \
	VMOVDQU woff(SI), Y8; \
	Q4_ROW(aoff(DI), Y4, Y9); \
	Q4_ROW(aoff(DI)(R8*1), Y5, Y10); \
	Q4_ROW(aoff(DI)(R8*2), Y6, Y14); \
	Q4_ROW(aoff(R10), Y7, Y15)

// One activation row's block end: int16 pairs to int32 (Q4_0), plus the
// −8·Σq_a correction, to float32, times d_a·d_w, into the accumulator.
#define Q4_END(S, acc, daddr, caddr) \
	VPMADDWD Y11, S, S; \
	VPBROADCASTD caddr, Y9; \
	VPADDD Y9, S, S; \
	VCVTDQ2PS S, S; \
	VBROADCASTSS daddr, Y10; \
	VMULPS Y12, Y10, Y10; \
	VFMADD231PS Y10, S, acc

// func i8Q4_0Kernel4x8AVX2(panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int)
TEXT ·i8Q4_0Kernel4x8AVX2(SB), NOSPLIT, $0-72
	I8_PROLOGUE
	TESTQ CX, CX
	JLE q4done
q4loop:
	I8_ZERO_SUMS
	Q4_CHUNK(0, 0)
	Q4_CHUNK(32, 4)
	Q4_CHUNK(64, 8)
	Q4_CHUNK(96, 12)
	Q4_CHUNK(128, 16)
	Q4_CHUNK(160, 20)
	Q4_CHUNK(192, 24)
	Q4_CHUNK(224, 28)
	VMOVUPS 256(SI), Y12
	Q4_END(Y4, Y0, (BX), (R11))
	Q4_END(Y5, Y1, (BX)(R9*1), (R11)(R9*1))
	Q4_END(Y6, Y2, (BX)(R9*2), (R11)(R9*2))
	Q4_END(Y7, Y3, (R12), (R13))
	I8_NEXT_BLOCK
	DECQ CX
	JNZ q4loop
q4done:
	I8_STORE
	RET

// Q8_0: ggml's sign trick, |w| (Y13) times the activation with w's sign,
// pairs widened to int32 at once (int16 sums of two chunks could overflow).
#define Q8_ROW(aaddr, S, T) \
	VPBROADCASTD aaddr, T; \
	VPSIGNB Y8, T, T; \
	VPMADDUBSW T, Y13, T; \
	VPMADDWD Y11, T, T; \
	VPADDD T, S, S

#define Q8_CHUNK(woff, aoff) \
	VMOVDQU woff(SI), Y8; \
	VPABSB Y8, Y13; \
	Q8_ROW(aoff(DI), Y4, Y9); \
	Q8_ROW(aoff(DI)(R8*1), Y5, Y10); \
	Q8_ROW(aoff(DI)(R8*2), Y6, Y14); \
	Q8_ROW(aoff(R10), Y7, Y15)

#define Q8_END(S, acc, daddr) \
	VCVTDQ2PS S, S; \
	VBROADCASTSS daddr, Y10; \
	VMULPS Y12, Y10, Y10; \
	VFMADD231PS Y10, S, acc

// func i8Q8_0Kernel4x8AVX2(panel, q *byte, lda int, d *float32, corr *int32, ldd, nb int, c *float32, ldc int)
TEXT ·i8Q8_0Kernel4x8AVX2(SB), NOSPLIT, $0-72
	I8_PROLOGUE
	TESTQ CX, CX
	JLE q8done
q8loop:
	I8_ZERO_SUMS
	Q8_CHUNK(0, 0)
	Q8_CHUNK(32, 4)
	Q8_CHUNK(64, 8)
	Q8_CHUNK(96, 12)
	Q8_CHUNK(128, 16)
	Q8_CHUNK(160, 20)
	Q8_CHUNK(192, 24)
	Q8_CHUNK(224, 28)
	VMOVUPS 256(SI), Y12
	Q8_END(Y4, Y0, (BX))
	Q8_END(Y5, Y1, (BX)(R9*1))
	Q8_END(Y6, Y2, (BX)(R9*2))
	Q8_END(Y7, Y3, (R12))
	I8_NEXT_BLOCK
	DECQ CX
	JNZ q8loop
q8done:
	I8_STORE
	RET

// VPERMD indices putting the dwords of VPACKSSDW+VPACKSSWB's in-lane
// output (a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7) back in order.
DATA i8PackOrder<>+0(SB)/4, $0
DATA i8PackOrder<>+4(SB)/4, $4
DATA i8PackOrder<>+8(SB)/4, $1
DATA i8PackOrder<>+12(SB)/4, $5
DATA i8PackOrder<>+16(SB)/4, $2
DATA i8PackOrder<>+20(SB)/4, $6
DATA i8PackOrder<>+24(SB)/4, $3
DATA i8PackOrder<>+28(SB)/4, $7
GLOBL i8PackOrder<>(SB), RODATA|NOPTR, $32

// func quantizeQ8_0I8AVX2(x *float32, nb int, q *byte, d *float32, sum *int32)
//
// QuantizeActQ8_0 on nb blocks of x, spread out: per block the 32 int8
// values to q, the scale f16(amax/127) widened back to float32 to d, and
// Σq to sum. The same float32 operations as the Go code: amax/127 rounded
// to half by VCVTPS2PH (round to nearest even, as gguf.F32ToF16),
// id = 127/amax (0 for an all-zero block), x·id rounded to nearest even
// by VCVTPS2DQ (MXCSR's default mode).
TEXT ·quantizeQ8_0I8AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), DX
	MOVQ sum+32(FP), BX
	Q8_0_CONSTS(i8PackOrder<>(SB))
	MOVL $0x01010101, AX
	VMOVQ AX, X12
	VPBROADCASTD X12, Y12 // uint8 ones
	MOVL $0x00010001, AX
	VMOVQ AX, X11
	VPBROADCASTD X11, Y11 // int16 ones
	TESTQ CX, CX
	JLE qdone
qloop:
	Q8_0_SCALE
	VCVTPH2PS X6, X6
	VMOVSS X6, (DX)
	Q8_0_QUANTS
	VMOVDQU Y0, (DI)
	VPMADDUBSW Y0, Y12, Y1
	VPMADDWD Y11, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD X2, X1, X1
	VMOVD X1, (BX)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, BX
	DECQ CX
	JNZ qloop
qdone:
	VZEROUPPER
	RET
