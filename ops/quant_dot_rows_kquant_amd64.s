//go:build goexperiment.simd && amd64

#include "textflag.h"

// Decode row kernels for Q4_K and Q6_K weights against one Q8_K activation
// row (d f32, qs[256] int8, bsums[16] int16; 292 bytes a block): rows rows
// rowBytes apart at w, nb super-blocks each, out[r] the dot of row r. AVX2,
// FMA and F16C, 256-bit only. All rows in one call, the constants in
// registers; rows one after another, in address order (see
// quant_dot_rows_simd.go on streaming).
//
// The 8-bit products are VPMADDUBSW of the unsigned quants by the signed
// activations into int16 pair sums (at most 2·63·128 = 16128: no
// saturation), widened by VPMADDWD with the sub-block's scale broadcast to
// int16 lanes (as ggml's AVX2 kernels do), so one integer vector per
// super-block holds Σ_j scale_j·Σ q·y spread over 8 lanes, converted and
// FMAed by d·dy once. The offset terms (Q4_K's mins, Q6_K's +32) come from
// the activation's bsums once per super-block. Integer sums are exact;
// only the float32 summation order differs from the references.
//
// Each super-block step prefetches the weight lines 2 KiB ahead
// (PREFETCHT0, one per 64 bytes of the step): single-thread time on
// weights from DRAM or L3 fell by 15-25% against the hardware prefetcher
// alone (1-4 KiB all alike; in-L2 shapes unchanged). The rows are
// contiguous, so this runs on into the rows that follow.

// Row epilogue: out[r] = Σ lanes of the float accumulator ACC (a Y
// register; X1 and X2 are clobbered), then on to the next row.
#define ROW_HSUM_STORE(ACC, XACC) \
	VEXTRACTF128 $1, ACC, X1; \
	VADDPS X1, XACC, X1; \
	VMOVHLPS X1, X1, X2; \
	VADDPS X2, X1, X1; \
	VMOVSHDUP X1, X2; \
	VADDSS X2, X1, X1; \
	VMOVSS X1, (DX); \
	ADDQ $4, DX; \
	ADDQ R8, SI

// Q4_K, one group of 64 weights (32 bytes of nibbles at OFF in x: the low
// nibbles sub-block 2g, the high ones 2g+1; activations at YOFF and
// YOFF+32), added to the int32 sums in Y5: Σ sc·(pair sums).
#define Q4K_GROUP(OFF, YOFF, SH) \
	VMOVDQU OFF(BX), Y6; \
	VPSRLW $4, Y6, Y7; \
	VPAND Y15, Y6, Y6; \
	VPAND Y15, Y7, Y7; \
	VPMADDUBSW YOFF(DI), Y6, Y6; \
	VPMADDUBSW YOFF+32(DI), Y7, Y7; \
	VPSHUFB q4kScaleShuf<>+SH(SB), Y13, Y8; \
	VPSHUFB q4kScaleShuf<>+SH+32(SB), Y13, Y9; \
	VPMADDWD Y8, Y6, Y6; \
	VPMADDWD Y9, Y7, Y7; \
	VPADDD Y6, Y5, Y5; \
	VPADDD Y7, Y5, Y5

// func dotRowsQ4_KAsm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)
//
// Q4_K super-block (144 bytes): d, dmin f16; 12 bytes of 6-bit scales and
// mins; qs[128]. The scales and mins are unpacked with scalar integer
// instructions (ggml's utmp masks; in vector registers, the same took 5-10%
// longer, the shuffle ports being the busiest) into one vector register,
// [sc0..sc7 m0..m7] bytes in both lanes, whence VPSHUFB makes each
// sub-block's scale as 16 int16 lanes and the mins as
// [m0 m0 m1 m1 .. m7 m7] for one VPMADDWD against the bsums.
// Registers: SI row, DX out, R8 rowBytes, R9 rows left, R10 nb, R11 a;
// BX, DI the super-blocks of row and activation, CX super-blocks left,
// AX R12 R13 the scale unpacking.
// Y15 0x0f bytes, Y13 scales and mins, Y12 the row's accumulator.
TEXT ·dotRowsQ4_KAsm(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R8
	MOVQ rows+16(FP), R9
	MOVQ nb+24(FP), R10
	MOVQ a+32(FP), R11
	MOVQ out+40(FP), DX
	MOVL $0x0f0f0f0f, AX
	VMOVQ AX, X15
	VPBROADCASTD X15, Y15
	TESTQ R9, R9
	JEQ q4kdone

q4krow:
	MOVQ SI, BX
	MOVQ R11, DI
	MOVQ R10, CX
	VXORPS Y12, Y12, Y12

q4kblock:
	PREFETCHT0 2048(BX)
	PREFETCHT0 2112(BX)
	PREFETCHT0 2176(BX)
	// 6-bit scales and mins, from the dwords u0 u1 u2 at x+4: sc0-3 =
	// u0 & 0x3f.., sc4-7 = u2 & 0x0f.. | u0>>2 & 0x30.., m0-3 = u1 & 0x3f..,
	// m4-7 = u2>>4 & 0x0f.. | u1>>2 & 0x30..
	MOVL 12(BX), R12
	MOVL 4(BX), AX
	SHRL $2, AX
	ANDL $0x30303030, AX
	MOVL R12, R13
	ANDL $0x0f0f0f0f, R13
	ORL R13, AX
	SHLQ $32, AX
	MOVL 4(BX), R13
	ANDL $0x3f3f3f3f, R13
	ORQ R13, AX                         // sc0..sc7
	VMOVQ AX, X0
	MOVL 8(BX), AX
	SHRL $2, AX
	ANDL $0x30303030, AX
	SHRL $4, R12
	ANDL $0x0f0f0f0f, R12
	ORL R12, AX
	SHLQ $32, AX
	MOVL 8(BX), R13
	ANDL $0x3f3f3f3f, R13
	ORQ R13, AX                         // m0..m7
	VPINSRQ $1, AX, X0, X0
	VINSERTI128 $1, X0, Y0, Y13         // bytes sc0..sc7 m0..m7, both lanes

	// Σ m_j·(bsum_2j + bsum_2j+1), 8 lanes
	VPSHUFB q4kMinShuf<>(SB), Y13, Y3
	VPMADDWD 260(DI), Y3, Y3
	VCVTDQ2PS Y3, Y3

	// Σ sc_j·Σ q·y
	VMOVDQU 16(BX), Y6
	VPSRLW $4, Y6, Y7
	VPAND Y15, Y6, Y6
	VPAND Y15, Y7, Y7
	VPMADDUBSW 4(DI), Y6, Y6
	VPMADDUBSW 36(DI), Y7, Y7
	VPSHUFB q4kScaleShuf<>+0(SB), Y13, Y8
	VPSHUFB q4kScaleShuf<>+32(SB), Y13, Y9
	VPMADDWD Y8, Y6, Y6
	VPMADDWD Y9, Y7, Y7
	VPADDD Y6, Y7, Y5
	Q4K_GROUP(48, 68, 64)
	Q4K_GROUP(80, 132, 128)
	Q4K_GROUP(112, 196, 192)

	// d·dy and dmin·dy (F16C), then acc += d·dy·Σ − dmin·dy·mins
	VPBROADCASTD 0(BX), X0              // halves [d dmin] ×4
	VCVTPH2PS X0, Y0
	VBROADCASTSS 0(DI), Y1
	VMULPS Y1, Y0, Y0                   // [d·dy dmin·dy] ×4
	VMOVSLDUP Y0, Y1
	VMOVSHDUP Y0, Y2
	VCVTDQ2PS Y5, Y5
	VFMADD231PS Y1, Y5, Y12
	VFNMADD231PS Y2, Y3, Y12

	ADDQ $144, BX
	ADDQ $292, DI
	DECQ CX
	JNZ q4kblock

	ROW_HSUM_STORE(Y12, X12)
	DECQ R9
	JNZ q4krow

q4kdone:
	VZEROUPPER
	RET

// Q6_K, one half (128 weights: ql at QL, QL+32, qh at QH; activations at
// YOFF..YOFF+127), scales SC ([s0..s7] or [s8..s15] as int16 in both
// lanes); the four 32-weight groups' Σ s·(pair sums) added to Y1.
#define Q6K_HALF(QL, QH, YOFF, SC) \
	VMOVDQU QL(BX), Y3; \
	VMOVDQU QL+32(BX), Y4; \
	VMOVDQU QH(BX), Y5; \
	VPSLLW $4, Y5, Y6; \
	VPAND Y14, Y6, Y6; \
	VPAND Y15, Y3, Y7; \
	VPOR Y7, Y6, Y6; \
	VPMADDUBSW YOFF(DI), Y6, Y6; \
	VPSHUFB Y10, SC, Y7; \
	VPMADDWD Y7, Y6, Y6; \
	VPADDD Y6, Y1, Y1; \
	VPSLLW $2, Y5, Y6; \
	VPAND Y14, Y6, Y6; \
	VPAND Y15, Y4, Y7; \
	VPOR Y7, Y6, Y6; \
	VPMADDUBSW YOFF+32(DI), Y6, Y6; \
	VPSHUFB Y11, SC, Y7; \
	VPMADDWD Y7, Y6, Y6; \
	VPADDD Y6, Y1, Y1; \
	VPSRLW $4, Y3, Y3; \
	VPAND Y15, Y3, Y3; \
	VPAND Y14, Y5, Y6; \
	VPOR Y6, Y3, Y3; \
	VPMADDUBSW YOFF+64(DI), Y3, Y3; \
	VPSHUFB Y12, SC, Y7; \
	VPMADDWD Y7, Y3, Y3; \
	VPADDD Y3, Y1, Y1; \
	VPSRLW $4, Y4, Y4; \
	VPAND Y15, Y4, Y4; \
	VPSRLW $2, Y5, Y5; \
	VPAND Y14, Y5, Y5; \
	VPOR Y5, Y4, Y4; \
	VPMADDUBSW YOFF+96(DI), Y4, Y4; \
	VPSHUFB Y13, SC, Y7; \
	VPMADDWD Y7, Y4, Y4; \
	VPADDD Y4, Y1, Y1

// func dotRowsQ6_KAsm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)
//
// Q6_K super-block (210 bytes): ql[128], qh[64], int8 scales[16], d f16.
// The quants are used unsigned (q+32, 0..63) and the excess
// 32·Σ_j s_j·bsum_j comes off once per super-block (one VPMADDWD of the
// scales against the bsums). Each 32-weight group's first 16 weights have
// one scale and the last 16 the next: VPSHUFB (masks Y10..Y13) puts them in
// the low and the high lane.
// Registers as dotRowsQ4_KAsm; Y15 0x0f bytes, Y14 0x30 bytes, Y8 and Y9
// the scales of the two halves, Y1 the integer sum, Y0 the accumulator.
TEXT ·dotRowsQ6_KAsm(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R8
	MOVQ rows+16(FP), R9
	MOVQ nb+24(FP), R10
	MOVQ a+32(FP), R11
	MOVQ out+40(FP), DX
	MOVL $0x0f0f0f0f, AX
	VMOVQ AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x30303030, AX
	VMOVQ AX, X14
	VPBROADCASTD X14, Y14
	VMOVDQU q6kScaleShuf<>+0(SB), Y10
	VMOVDQU q6kScaleShuf<>+32(SB), Y11
	VMOVDQU q6kScaleShuf<>+64(SB), Y12
	VMOVDQU q6kScaleShuf<>+96(SB), Y13
	TESTQ R9, R9
	JEQ q6kdone

q6krow:
	MOVQ SI, BX
	MOVQ R11, DI
	MOVQ R10, CX
	VXORPS Y0, Y0, Y0

q6kblock:
	PREFETCHT0 2048(BX)
	PREFETCHT0 2112(BX)
	PREFETCHT0 2176(BX)
	PREFETCHT0 2240(BX)
	VPMOVSXBW 192(BX), Y2               // s0..s15 as int16
	VPERMQ $0x44, Y2, Y8                // [s0..s7 | s0..s7]
	VPERMQ $0xee, Y2, Y9                // [s8..s15 | s8..s15]
	VPMADDWD 260(DI), Y2, Y2            // Σ s_j·bsum_j in pairs
	VPSLLD $5, Y2, Y2                   // ×32
	VPXOR Y1, Y1, Y1
	Q6K_HALF(0, 128, 4, Y8)
	Q6K_HALF(64, 160, 132, Y9)
	VPSUBD Y2, Y1, Y1

	VPBROADCASTW 208(BX), X3            // d ×8
	VCVTPH2PS X3, Y3
	VBROADCASTSS 0(DI), Y4
	VMULPS Y4, Y3, Y3                   // d·dy
	VCVTDQ2PS Y1, Y1
	VFMADD231PS Y3, Y1, Y0

	ADDQ $210, BX
	ADDQ $292, DI
	DECQ CX
	JNZ q6kblock

	ROW_HSUM_STORE(Y0, X0)
	DECQ R9
	JNZ q6krow

q6kdone:
	VZEROUPPER
	RET

// VPSHUFB masks making sub-block j's scale (byte j of the unpacked scales)
// into 16 int16 lanes: bytes j, 0x80 (zero) repeated.
DATA q4kScaleShuf<>+0(SB)/8, $0x8000800080008000
DATA q4kScaleShuf<>+8(SB)/8, $0x8000800080008000
DATA q4kScaleShuf<>+16(SB)/8, $0x8000800080008000
DATA q4kScaleShuf<>+24(SB)/8, $0x8000800080008000
DATA q4kScaleShuf<>+32(SB)/8, $0x8001800180018001
DATA q4kScaleShuf<>+40(SB)/8, $0x8001800180018001
DATA q4kScaleShuf<>+48(SB)/8, $0x8001800180018001
DATA q4kScaleShuf<>+56(SB)/8, $0x8001800180018001
DATA q4kScaleShuf<>+64(SB)/8, $0x8002800280028002
DATA q4kScaleShuf<>+72(SB)/8, $0x8002800280028002
DATA q4kScaleShuf<>+80(SB)/8, $0x8002800280028002
DATA q4kScaleShuf<>+88(SB)/8, $0x8002800280028002
DATA q4kScaleShuf<>+96(SB)/8, $0x8003800380038003
DATA q4kScaleShuf<>+104(SB)/8, $0x8003800380038003
DATA q4kScaleShuf<>+112(SB)/8, $0x8003800380038003
DATA q4kScaleShuf<>+120(SB)/8, $0x8003800380038003
DATA q4kScaleShuf<>+128(SB)/8, $0x8004800480048004
DATA q4kScaleShuf<>+136(SB)/8, $0x8004800480048004
DATA q4kScaleShuf<>+144(SB)/8, $0x8004800480048004
DATA q4kScaleShuf<>+152(SB)/8, $0x8004800480048004
DATA q4kScaleShuf<>+160(SB)/8, $0x8005800580058005
DATA q4kScaleShuf<>+168(SB)/8, $0x8005800580058005
DATA q4kScaleShuf<>+176(SB)/8, $0x8005800580058005
DATA q4kScaleShuf<>+184(SB)/8, $0x8005800580058005
DATA q4kScaleShuf<>+192(SB)/8, $0x8006800680068006
DATA q4kScaleShuf<>+200(SB)/8, $0x8006800680068006
DATA q4kScaleShuf<>+208(SB)/8, $0x8006800680068006
DATA q4kScaleShuf<>+216(SB)/8, $0x8006800680068006
DATA q4kScaleShuf<>+224(SB)/8, $0x8007800780078007
DATA q4kScaleShuf<>+232(SB)/8, $0x8007800780078007
DATA q4kScaleShuf<>+240(SB)/8, $0x8007800780078007
DATA q4kScaleShuf<>+248(SB)/8, $0x8007800780078007
GLOBL q4kScaleShuf<>(SB), RODATA|NOPTR, $256

// The mins (bytes 8..15) as int16 [m0 m0 m1 m1 m2 m2 m3 m3 | m4 m4 .. m7 m7],
// lined up with the bsums' pairs.
DATA q4kMinShuf<>+0(SB)/8, $0x8009800980088008
DATA q4kMinShuf<>+8(SB)/8, $0x800b800b800a800a
DATA q4kMinShuf<>+16(SB)/8, $0x800d800d800c800c
DATA q4kMinShuf<>+24(SB)/8, $0x800f800f800e800e
GLOBL q4kMinShuf<>(SB), RODATA|NOPTR, $32

// Q6_K: group k's scales, int16 2k in the low lane and 2k+1 in the high
// one (bytes 4k,4k+1 then 4k+2,4k+3, repeated).
DATA q6kScaleShuf<>+0(SB)/8, $0x0100010001000100
DATA q6kScaleShuf<>+8(SB)/8, $0x0100010001000100
DATA q6kScaleShuf<>+16(SB)/8, $0x0302030203020302
DATA q6kScaleShuf<>+24(SB)/8, $0x0302030203020302
DATA q6kScaleShuf<>+32(SB)/8, $0x0504050405040504
DATA q6kScaleShuf<>+40(SB)/8, $0x0504050405040504
DATA q6kScaleShuf<>+48(SB)/8, $0x0706070607060706
DATA q6kScaleShuf<>+56(SB)/8, $0x0706070607060706
DATA q6kScaleShuf<>+64(SB)/8, $0x0908090809080908
DATA q6kScaleShuf<>+72(SB)/8, $0x0908090809080908
DATA q6kScaleShuf<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kScaleShuf<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6kScaleShuf<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kScaleShuf<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6kScaleShuf<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q6kScaleShuf<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q6kScaleShuf<>(SB), RODATA|NOPTR, $128
