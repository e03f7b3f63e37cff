//go:build goexperiment.simd && amd64

#include "textflag.h"

// expV8's constants (elem_simd_avx2.go), one float32 each, broadcast into
// registers once per call; the two used as memory operands are stored
// eight wide.
DATA expK<>+0(SB)/4, $0x4b400000  // 0x1.8p23, the rounding shift
DATA expK<>+4(SB)/4, $0x3fb8aa3b  // 0x1.715476p+0, log2(e)
DATA expK<>+8(SB)/4, $0x3f317200  // 0x1.62e4p-1, ln 2 high part
DATA expK<>+12(SB)/4, $0x3c072010 // 0x1.0e4020p-7
DATA expK<>+16(SB)/4, $0x3d2b9f17 // 0x1.573e2ep-5
DATA expK<>+20(SB)/4, $0x3e2aaf33 // 0x1.555e66p-3
DATA expK<>+24(SB)/4, $0x3efffedb // 0x1.fffdb6p-2
DATA expK<>+28(SB)/4, $0x3f7ffff6 // 0x1.ffffecp-1
DATA expK<>+32(SB)/4, $0x3f800000 // 1.0's bits, the exponent bias
GLOBL expK<>(SB), RODATA|NOPTR, $36

// 0x1.7f7d1cp-20 (ln 2 low part), |x| mask, 126.
DATA expV<>+0(SB)/8, $0x35bfbe8e35bfbe8e
DATA expV<>+8(SB)/8, $0x35bfbe8e35bfbe8e
DATA expV<>+16(SB)/8, $0x35bfbe8e35bfbe8e
DATA expV<>+24(SB)/8, $0x35bfbe8e35bfbe8e
DATA expV<>+32(SB)/8, $0x7fffffff7fffffff
DATA expV<>+40(SB)/8, $0x7fffffff7fffffff
DATA expV<>+48(SB)/8, $0x7fffffff7fffffff
DATA expV<>+56(SB)/8, $0x7fffffff7fffffff
DATA expV<>+64(SB)/8, $0x42fc000042fc0000
DATA expV<>+72(SB)/8, $0x42fc000042fc0000
DATA expV<>+80(SB)/8, $0x42fc000042fc0000
DATA expV<>+88(SB)/8, $0x42fc000042fc0000
GLOBL expV<>(SB), RODATA|NOPTR, $96

// func expSubKernelAVX2(dst, src *float32, n8 int, mx float32, acc *[8]float32) int
//
// dst[8i:8i+8] = expV8(src[8i:8i+8] − mx) and acc += that, lane-wise, for
// i < n8, operation for operation as expV8 (the same roundings), with its
// constants in registers. It stops before the first 8 values where some
// |n| > 126 (results that under- or overflow, which expV8 scales in two
// steps) and returns how many it did; the caller does that one with
// expV8 and calls again.
TEXT ·expSubKernelAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n8+16(FP), CX
	MOVQ acc+32(FP), DX
	VBROADCASTSS mx+24(FP), Y5
	VBROADCASTSS expK<>+32(SB), Y6
	VBROADCASTSS expK<>+28(SB), Y7
	VBROADCASTSS expK<>+24(SB), Y8
	VBROADCASTSS expK<>+20(SB), Y9
	VBROADCASTSS expK<>+16(SB), Y10
	VBROADCASTSS expK<>+12(SB), Y11
	VMOVUPS (DX), Y12
	VBROADCASTSS expK<>+8(SB), Y13
	VBROADCASTSS expK<>+4(SB), Y14
	VBROADCASTSS expK<>+0(SB), Y15
	XORQ BX, BX
	CMPQ BX, CX
	JGE  done

loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y5, Y0, Y0           // x
	VMOVAPS Y15, Y1
	VFMADD231PS Y14, Y0, Y1      // z = x·log2e + 1.5·2^23
	VSUBPS  Y15, Y1, Y2          // n = z − 1.5·2^23
	VXORPS  Y3, Y3, Y3
	VSUBPS  Y2, Y3, Y3           // −n
	VANDPS  expV<>+32(SB), Y2, Y4
	VCMPPS  $0x1e, expV<>+64(SB), Y4, Y4
	VMOVMSKPS Y4, AX
	TESTL   AX, AX
	JNZ     done                 // |n| > 126: expV8's two-step scaling
	VFMADD231PS Y13, Y3, Y0      // x − n·ln2hi
	VFMADD231PS expV<>+0(SB), Y3, Y0 // b = … − n·ln2lo
	VPSLLD  $23, Y1, Y1          // e
	VPADDD  Y6, Y1, Y3           // k = 2^n
	VMULPS  Y0, Y0, Y4           // u = b²
	VMOVAPS Y10, Y1
	VFMADD231PS Y11, Y0, Y1      // c5·b + c4
	VMOVAPS Y8, Y2
	VFMADD231PS Y9, Y0, Y2       // c3·b + c2
	VFMADD231PS Y4, Y1, Y2       // (c5·b + c4)·u + (c3·b + c2)
	VMULPS  Y7, Y0, Y0           // c1·b
	VFMADD231PS Y4, Y2, Y0       // j = …·u + c1·b
	VFMADD231PS Y3, Y0, Y3       // k + k·j
	VMOVUPS Y3, (DI)
	VADDPS  Y3, Y12, Y12
	ADDQ    $32, SI
	ADDQ    $32, DI
	INCQ    BX
	CMPQ    BX, CX
	JLT     loop

done:
	VMOVUPS Y12, (DX)
	MOVQ    BX, ret+40(FP)
	VZEROUPPER
	RET
