//go:build goexperiment.simd && amd64

package ops

import (
	"unsafe"

	"ladder-engine/gguf"
)

// packPanelFast is packPanel for a full panel (nr == gemmNR) of F16, BF16
// or F32 weights: the rows are read in place and widened and transposed
// 8×8 at a time in assembly (matmul_gemm_pack_avx2_amd64.s), instead of
// decoding each row into a buffer and scattering it column by column. The
// widening is exact, so the panel is the one packPanelGo writes, bit for
// bit (TestPackPanelAVX2). It reports false, writing nothing, where it does
// not apply.
func packPanelFast(panel []float32, w *Matrix, j0, nr, k0, k1 int) bool {
	if nr != gemmNR || !hasAVX2 {
		return false
	}
	var pack func(panel *float32, src *byte, stride, depth int)
	var size, stride int
	var src []byte
	switch {
	case w.F32 != nil:
		pack, size, stride = packF32PanelAVX2, 4, 4*w.Cols
		src = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w.F32))), 4*len(w.F32))
	case w.Type == gguf.TypeF16 && hasF16C:
		pack, size, stride, src = packF16PanelAVX2, 2, w.rowBytes, w.Raw
	case w.Type == gguf.TypeBF16:
		pack, size, stride, src = packBF16PanelAVX2, 2, w.rowBytes, w.Raw
	default:
		return false
	}
	depth := k1 - k0
	panel = panel[:depth*gemmNR]
	d8 := depth &^ 7
	if d8 > 0 {
		// The last byte the assembly reads: row j0+31, column k0+d8-1.
		_ = src[(j0+gemmNR-1)*stride+(k0+d8)*size-1]
		pack(&panel[0], &src[j0*stride+k0*size], stride, d8)
	}
	for k := d8; k < depth; k++ { // the last depth%8 columns
		for j := range gemmNR {
			o := (j0+j)*stride + (k0+k)*size
			switch size {
			case 4:
				panel[k*gemmNR+j] = w.F32[o/4]
			default:
				h := uint16(src[o]) | uint16(src[o+1])<<8
				if w.Type == gguf.TypeF16 {
					panel[k*gemmNR+j] = gguf.F16ToF32(h)
				} else {
					panel[k*gemmNR+j] = gguf.BF16ToF32(h)
				}
			}
		}
	}
	return true
}

// packXPanelAVX2 (X = F16, BF16, F32): panel[k*32+j] = the value at
// src[j*stride + k*size] for j < 32, k < depth (a multiple of 8), widened
// to float32.
//
//go:noescape
func packF16PanelAVX2(panel *float32, src *byte, stride, depth int)

//go:noescape
func packBF16PanelAVX2(panel *float32, src *byte, stride, depth int)

//go:noescape
func packF32PanelAVX2(panel *float32, src *byte, stride, depth int)

// packActs6 writes dst[6k+i] = src[i*lda+k] for i < 6, k < cols: six
// activation rows interleaved for gemmKernelPacked, 8 columns at a time in
// assembly (packActs6AVX2), the last cols%8 here. dst needs 6·cols+2
// values (the assembly's last store runs two past).
func packActs6(dst, src []float32, lda, cols int) {
	if cols == 0 {
		return
	}
	_ = src[(gemmPackedRows-1)*lda+cols-1]
	_ = dst[gemmPackedRows*cols+1]
	b := cols / 8
	if b > 0 {
		packActs6AVX2(&dst[0], &src[0], lda, b)
	}
	for k := 8 * b; k < cols; k++ {
		for i := range gemmPackedRows {
			dst[k*gemmPackedRows+i] = src[i*lda+k]
		}
	}
}

//go:noescape
func packActs6AVX2(dst, src *float32, lda, blocks int)

// canPackRows32F32 reports whether packRows32F32 serves a depth.
func canPackRows32F32(depth int) bool { return hasAVX2 && depth%8 == 0 && depth > 0 }

// packRows32F32 is the F32 panel packer on plain slices: dst[k*32+j] =
// src[j*lda+k] for j < 32, k < depth (canPackRows32F32). The KV cache
// stores 32 positions' keys with it.
func packRows32F32(dst, src []float32, lda, depth int) {
	_ = dst[depth*gemmNR-1]
	_ = src[(gemmNR-1)*lda+depth-1]
	packF32PanelAVX2(&dst[0], (*byte)(unsafe.Pointer(&src[0])), 4*lda, depth)
}
