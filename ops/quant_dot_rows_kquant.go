//go:build goexperiment.simd && amd64

package ops

// Decode row kernels for Q4_K and Q6_K in assembly
// (quant_dot_rows_kquant_amd64.s): AVX2, FMA and F16C. The archsimd row
// kernels dotRowsQ4_KAVX512 and dotRowsQ6_KAVX512 are their twins (and
// serve where F16C is missing); the assembly does all rows in one call with
// its constants in registers, where the archsimd code calls a super-block
// step per 256 weights and passes its vectors through memory.

// hasKQuantRowsAsm: the assembly row kernels can run here.
var hasKQuantRowsAsm = hasAVX2 && hasF16C

//go:noescape
func dotRowsQ4_KAsm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)

//go:noescape
func dotRowsQ6_KAsm(w *byte, rowBytes, rows, nb int, a *byte, out *float32)

// dotRowsQ4_KAVX2 is DotRows for Q4_K: the assembly on whole rows.
func dotRowsQ4_KAVX2(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 256
	rows := len(out)
	dotRowsCheck(w, rows, rb, 144*nb, a, q8KBlock*nb)
	if rows == 0 {
		return
	}
	if nb == 0 {
		clear(out)
		return
	}
	dotRowsQ4_KAsm(&w[0], rb, rows, nb, &a[0], &out[0])
}

// dotRowsQ6_KAVX2 is DotRows for Q6_K: the assembly on whole rows.
func dotRowsQ6_KAVX2(n int, w []byte, rb int, a []byte, out []float32) {
	nb := n / 256
	rows := len(out)
	dotRowsCheck(w, rows, rb, 210*nb, a, q8KBlock*nb)
	if rows == 0 {
		return
	}
	if nb == 0 {
		clear(out)
		return
	}
	dotRowsQ6_KAsm(&w[0], rb, rows, nb, &a[0], &out[0])
}
