//go:build goexperiment.simd && amd64

#include "textflag.h"

// Row pointers of a panel's eight weight rows: SI (row 0), R9 = SI + 3·R8,
// R10 = SI + 4·R8, R11 = R10 + 3·R8, rows in between at R8 and 2·R8 past
// them (R8 = the row stride in bytes).
#define I8_ROWS \
	LEAQ (SI)(R8*2), R9; \
	ADDQ R8, R9; \
	LEAQ (SI)(R8*4), R10; \
	LEAQ (R10)(R8*2), R11; \
	ADDQ R8, R11

// The eight rows' f16 block scales (at the row pointers) as float32, the
// panel block's last 32 bytes.
#define I8_SCALES \
	VPINSRW $0, (SI), X12, X12; \
	VPINSRW $1, (SI)(R8*1), X12, X12; \
	VPINSRW $2, (SI)(R8*2), X12, X12; \
	VPINSRW $3, (R9), X12, X12; \
	VPINSRW $4, (R10), X12, X12; \
	VPINSRW $5, (R10)(R8*1), X12, X12; \
	VPINSRW $6, (R10)(R8*2), X12, X12; \
	VPINSRW $7, (R11), X12, X12; \
	VCVTPH2PS X12, Y12; \
	VMOVUPS Y12, 256(DI)

// A 4×4 transpose of dwords within each 128-bit lane of a, b, c, d (rows
// in, dword columns out, in place); t0..t3 are clobbered.
#define I8_TRANSPOSE(a, b, c, d, t0, t1, t2, t3) \
	VPUNPCKLDQ b, a, t0; \
	VPUNPCKHDQ b, a, t1; \
	VPUNPCKLDQ d, c, t2; \
	VPUNPCKHDQ d, c, t3; \
	VPUNPCKLQDQ t2, t0, a; \
	VPUNPCKHQDQ t2, t0, b; \
	VPUNPCKLQDQ t3, t1, c; \
	VPUNPCKHQDQ t3, t1, d

// Dword c of the eight Q4_0 rows (y): its low nibbles are chunk c (at
// lo(DI)), its high nibbles chunk c+4 (at hi(DI)).
#define I8_NIBBLES(y, lo, hi) \
	VPAND Y15, y, Y4; \
	VMOVDQU Y4, lo(DI); \
	VPSRLW $4, y, y; \
	VPAND Y15, y, y; \
	VMOVDQU y, hi(DI)

// Rows 0..3 (a) and 4..7 (b) of dwords c | c+4: chunk c is the two low
// lanes (at lo(DI)), chunk c+4 the two high ones (at hi(DI)).
#define I8_LANES(a, b, lo, hi) \
	VPERM2I128 $0x20, b, a, Y8; \
	VMOVDQU Y8, lo(DI); \
	VPERM2I128 $0x31, b, a, Y8; \
	VMOVDQU Y8, hi(DI)

// func packI8Q4_0AVX2(panel, row *byte, rowBytes, nb int)
//
// packI8Panel for eight Q4_0 rows: per block, each row's 16 quant bytes
// (a 128-bit lane: rows r and r+4 share a register), a 4×4 dword transpose
// per lane makes dword c of the eight rows one register, whose low nibbles
// are chunk c and high nibbles chunk c+4.
TEXT ·packI8Q4_0AVX2(SB), NOSPLIT, $0-32
	MOVQ panel+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ rowBytes+16(FP), R8
	MOVQ nb+24(FP), CX
	I8_ROWS
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VPXOR X12, X12, X12
blk:
	TESTQ CX, CX
	JLE done
	VMOVDQU 2(SI), X0
	VINSERTI128 $1, 2(R10), Y0, Y0
	VMOVDQU 2(SI)(R8*1), X1
	VINSERTI128 $1, 2(R10)(R8*1), Y1, Y1
	VMOVDQU 2(SI)(R8*2), X2
	VINSERTI128 $1, 2(R10)(R8*2), Y2, Y2
	VMOVDQU 2(R9), X3
	VINSERTI128 $1, 2(R11), Y3, Y3
	I8_TRANSPOSE(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7)
	I8_NIBBLES(Y0, 0, 128)
	I8_NIBBLES(Y1, 32, 160)
	I8_NIBBLES(Y2, 64, 192)
	I8_NIBBLES(Y3, 96, 224)
	I8_SCALES
	ADDQ $18, SI
	ADDQ $18, R9
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $288, DI
	DECQ CX
	JMP blk
done:
	VZEROUPPER
	RET

// func packI8Q8_0AVX2(panel, row *byte, rowBytes, nb int)
//
// packI8Panel for eight Q8_0 rows: per block an 8×8 transpose of the rows'
// eight quant dwords (rows 0..3, then 4..7, each a 4×4 transpose per
// lane; the lanes of the two halves then paired), dword c of the eight
// rows being chunk c.
TEXT ·packI8Q8_0AVX2(SB), NOSPLIT, $0-32
	MOVQ panel+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ rowBytes+16(FP), R8
	MOVQ nb+24(FP), CX
	I8_ROWS
	VPXOR X12, X12, X12
blk8:
	TESTQ CX, CX
	JLE done8
	VMOVDQU 2(SI), Y0
	VMOVDQU 2(SI)(R8*1), Y1
	VMOVDQU 2(SI)(R8*2), Y2
	VMOVDQU 2(R9), Y3
	I8_TRANSPOSE(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7) // rows 0..3: Y0 dwords 0 | 4, Y1 1 | 5, Y2 2 | 6, Y3 3 | 7
	VMOVDQU 2(R10), Y4
	VMOVDQU 2(R10)(R8*1), Y5
	VMOVDQU 2(R10)(R8*2), Y6
	VMOVDQU 2(R11), Y7
	I8_TRANSPOSE(Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11) // rows 4..7
	I8_LANES(Y0, Y4, 0, 128)
	I8_LANES(Y1, Y5, 32, 160)
	I8_LANES(Y2, Y6, 64, 192)
	I8_LANES(Y3, Y7, 96, 224)
	I8_SCALES
	ADDQ $34, SI
	ADDQ $34, R9
	ADDQ $34, R10
	ADDQ $34, R11
	ADDQ $288, DI
	DECQ CX
	JMP blk8
done8:
	VZEROUPPER
	RET
