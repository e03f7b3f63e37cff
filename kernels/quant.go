package kernels

import (
	"fmt"

	"ladder-engine/gguf"
)

// quantSuffix names each weight type's kernels (get_rows_<suffix>, ...);
// the types the kernels decode, in the order of quant.cu's FOR_EACH_TYPE.
var quantSuffix = map[gguf.Type]string{
	gguf.TypeF32:    "f32",
	gguf.TypeF16:    "f16",
	gguf.TypeBF16:   "bf16",
	gguf.TypeQ4_0:   "q4_0",
	gguf.TypeQ4_1:   "q4_1",
	gguf.TypeQ5_0:   "q5_0",
	gguf.TypeQ5_1:   "q5_1",
	gguf.TypeQ8_0:   "q8_0",
	gguf.TypeQ2_K:   "q2_K",
	gguf.TypeQ3_K:   "q3_K",
	gguf.TypeQ4_K:   "q4_K",
	gguf.TypeQ5_K:   "q5_K",
	gguf.TypeQ6_K:   "q6_K",
	gguf.TypeIQ4_NL: "iq4_nl",
	gguf.TypeIQ4_XS: "iq4_xs",
}

// Supports reports whether the weight kernels decode type t.
func Supports(t gguf.Type) bool { _, ok := quantSuffix[t]; return ok }

// Weight is a frozen matrix on the device in its GGUF encoding: Rows rows
// of Cols elements, each row gguf.RowSize(Type, Cols) bytes.
type Weight struct {
	Data Buffer
	Type gguf.Type
	Rows int
	Cols int
}

// rowBytes checks the weight and returns its row size in bytes.
func (w Weight) rowBytes(kernel string) (int64, string, error) {
	suffix, ok := quantSuffix[w.Type]
	if !ok {
		return 0, "", fmt.Errorf("kernels: %s: no CUDA kernel for weight type %s", kernel, w.Type)
	}
	if w.Rows <= 0 || w.Cols <= 0 {
		return 0, "", fmt.Errorf("kernels: %s: weight of %d×%d", kernel, w.Rows, w.Cols)
	}
	rb, err := gguf.RowSize(w.Type, w.Cols)
	if err != nil {
		return 0, "", fmt.Errorf("kernels: %s: %w", kernel, err)
	}
	if err := need(kernel, "weight", w.Data, int64(rb)*int64(w.Rows)); err != nil {
		return 0, "", err
	}
	return int64(rb), suffix, nil
}

func acc32(accumulate bool) int {
	if accumulate {
		return 1
	}
	return 0
}

// GetRows dequantizes rows ids of w: out (len ids, Cols) f32. ids is a
// device buffer of nids int32 row indexes, each in [0, Rows) (the caller
// checks: the kernel reads whatever row an id names). With ids 0..Rows-1
// it dequantizes the whole matrix; with token ids it is the embedding lookup.
func (d *Device) GetRows(out Buffer, w Weight, ids Buffer, nids int) error {
	rb, sfx, err := w.rowBytes("GetRows")
	if err != nil {
		return err
	}
	if nids <= 0 {
		return nil
	}
	if err := need("GetRows", "out", out, 4*int64(nids)*int64(w.Cols)); err != nil {
		return err
	}
	if err := need("GetRows", "ids", ids, 4*int64(nids)); err != nil {
		return err
	}
	return d.launch("get_rows_"+sfx, dim3{ceilDiv(w.Cols, 256), min(nids, 65535), 1}, dim3{256, 1, 1}, 0,
		out, w.Data, ids, nids, w.Cols, rb)
}

// MatMul computes out (n, Rows) = x (n, Cols) · Wᵀ, or adds it to out when
// accumulate is set. n = 1 takes the mat-vec kernel (one warp per weight
// row); larger batches the tiled kernel (32×32 output tiles, W dequantized
// into shared memory 32 columns at a time). Both accumulate in float32.
func (d *Device) MatMul(out, x Buffer, n int, w Weight, accumulate bool) error {
	rb, sfx, err := w.rowBytes("MatMul")
	if err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	if err := need("MatMul", "out", out, 4*int64(n)*int64(w.Rows)); err != nil {
		return err
	}
	if err := need("MatMul", "x", x, 4*int64(n)*int64(w.Cols)); err != nil {
		return err
	}
	if n == 1 {
		return d.launch("matvec_"+sfx, dim3{ceilDiv(w.Rows, 4), 1, 1}, dim3{32, 4, 1}, 0,
			out, w.Data, x, w.Rows, w.Cols, rb, acc32(accumulate))
	}
	return d.launch("matmul_"+sfx, dim3{ceilDiv(w.Rows, 32), ceilDiv(n, 32), 1}, dim3{16, 16, 1}, 0,
		out, x, w.Data, n, w.Rows, w.Cols, rb, acc32(accumulate))
}

// MatMulBackwardInput computes the input gradient of MatMul with a frozen
// weight: dx (n, Cols) = dout (n, Rows) · W, or adds it to dx when
// accumulate is set (the usual case: gradients accumulate).
func (d *Device) MatMulBackwardInput(dx, dout Buffer, n int, w Weight, accumulate bool) error {
	rb, sfx, err := w.rowBytes("MatMulBackwardInput")
	if err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	if err := need("MatMulBackwardInput", "dx", dx, 4*int64(n)*int64(w.Cols)); err != nil {
		return err
	}
	if err := need("MatMulBackwardInput", "dout", dout, 4*int64(n)*int64(w.Rows)); err != nil {
		return err
	}
	return d.launch("matmul_bwd_"+sfx, dim3{ceilDiv(w.Cols, 32), ceilDiv(n, 32), 1}, dim3{16, 16, 1}, 0,
		dx, dout, w.Data, n, w.Rows, w.Cols, rb, acc32(accumulate))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
