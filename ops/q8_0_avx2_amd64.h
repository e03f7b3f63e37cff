// The Q8_0 activation quantizer's block step, shared by quantizeQ8_0Asm
// (quant_dot_rows_avx2_amd64.s) and quantizeQ8_0I8AVX2
// (matmul_gemm_i8_avx2_amd64.s): QuantizeActQ8_0's float32 operations on
// the 32 floats at SI.

// Q8_0_CONSTS sets the constants the steps use: Y15 the |.| mask, Y14
// 127.0, Y13 the dword order that undoes the packs' lane interleave
// (order: a 32-byte table of 0 4 1 5 2 6 3 7), Y10 zero.
#define Q8_0_CONSTS(order) \
	MOVL $0x7fffffff, AX; \
	VMOVQ AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL $0x42fe0000, AX; \
	VMOVQ AX, X14; \
	VPBROADCASTD X14, Y14; \
	VMOVDQU order, Y13; \
	VXORPS Y10, Y10, Y10

// Q8_0_SCALE loads the block into Y0..Y3 and leaves d = amax/127 rounded
// to half (VCVTPS2PH, nearest even, as gguf.F32ToF16) in the low word of
// X6, amax in every lane of Y4.
#define Q8_0_SCALE \
	VMOVUPS 0(SI), Y0; \
	VMOVUPS 32(SI), Y1; \
	VMOVUPS 64(SI), Y2; \
	VMOVUPS 96(SI), Y3; \
	VANDPS Y15, Y0, Y4; \
	VANDPS Y15, Y1, Y5; \
	VMAXPS Y5, Y4, Y4; \
	VANDPS Y15, Y2, Y5; \
	VANDPS Y15, Y3, Y6; \
	VMAXPS Y6, Y5, Y5; \
	VMAXPS Y5, Y4, Y4; \
	VPERM2F128 $1, Y4, Y4, Y5; \
	VMAXPS Y5, Y4, Y4; \
	VPERMILPS $0x4e, Y4, Y5; \
	VMAXPS Y5, Y4, Y4; \
	VPERMILPS $0xb1, Y4, Y5; \
	VMAXPS Y5, Y4, Y4; \
	VDIVPS Y14, Y4, Y5; \
	VCVTPS2PH $0, X5, X6

// Q8_0_QUANTS leaves the 32 quants in Y0, in order: x·(127/amax) (0 for
// an all-zero block) rounded to nearest even by VCVTPS2DQ (MXCSR's
// default mode), packed with saturation (never reached: |x·id| <= 127).
#define Q8_0_QUANTS \
	VDIVPS Y4, Y14, Y7; \
	VCMPPS $0, Y10, Y4, Y8; \
	VANDNPS Y7, Y8, Y7; \
	VMULPS Y7, Y0, Y0; \
	VMULPS Y7, Y1, Y1; \
	VMULPS Y7, Y2, Y2; \
	VMULPS Y7, Y3, Y3; \
	VCVTPS2DQ Y0, Y0; \
	VCVTPS2DQ Y1, Y1; \
	VCVTPS2DQ Y2, Y2; \
	VCVTPS2DQ Y3, Y3; \
	VPACKSSDW Y1, Y0, Y0; \
	VPACKSSDW Y3, Y2, Y2; \
	VPACKSSWB Y2, Y0, Y0; \
	VPERMD Y0, Y13, Y0
