package kernels

import "fmt"

// CrossEntropyRows turns logits (m, vocab) into per-row losses and, with
// wantGrad, overwrites them with dlogits = scale·(softmax − onehot(target)).
// targets (m int32): below zero means ignored (loss 0, zero gradient row).
// loss (m float64) receives each row's −log softmax[target], or is the
// zero Buffer.
func (d *Device) CrossEntropyRows(logits, loss, targets Buffer, m, vocab int, scale float32, wantGrad bool) error {
	if err := checkRows("CrossEntropyRows", m, vocab); err != nil {
		return err
	}
	if err := need("CrossEntropyRows", "logits", logits, 4*int64(m)*int64(vocab)); err != nil {
		return err
	}
	if err := need("CrossEntropyRows", "targets", targets, 4*int64(m)); err != nil {
		return err
	}
	if loss.ptr != 0 {
		if err := need("CrossEntropyRows", "loss", loss, 8*int64(m)); err != nil {
			return err
		}
	}
	return d.launch("ce_rows", dim3{m, 1, 1}, dim3{256, 1, 1}, 0, logits, loss, targets, m, vocab, scale, acc32(wantGrad))
}

// LMHeadCrossEntropy is the fused, chunked LM head + softmax cross-entropy
// (ops.LMHeadCrossEntropy): rows of hidden (n, Cols) go through the frozen
// head (vocab = head.Rows) chunk rows at a time into logits, a scratch
// buffer of chunk·vocab floats, so all n·vocab logits never exist at once.
// loss (n float64) receives each row's loss (0 for ignored targets); when
// dhidden is not the zero Buffer, each chunk's dlogits = scale·(softmax −
// onehot) goes straight back through the head: dhidden (n, Cols) += dlogits·head.
// The mean loss is Σ loss / (number of targets ≥ 0), which the caller
// forms after reading loss back (scale is usually 1/that count).
func (d *Device) LMHeadCrossEntropy(loss, dhidden, hidden Buffer, n int, head Weight, targets Buffer, scale float32, logits Buffer, chunk int) error {
	if n < 0 || chunk <= 0 {
		return fmt.Errorf("kernels: LMHeadCrossEntropy: %d rows in chunks of %d", n, chunk)
	}
	vocab, dim := head.Rows, head.Cols
	if err := need("LMHeadCrossEntropy", "logits", logits, 4*int64(chunk)*int64(vocab)); err != nil {
		return err
	}
	if err := need("LMHeadCrossEntropy", "loss", loss, 8*int64(n)); err != nil {
		return err
	}
	if err := need("LMHeadCrossEntropy", "hidden", hidden, 4*int64(n)*int64(dim)); err != nil {
		return err
	}
	if err := need("LMHeadCrossEntropy", "targets", targets, 4*int64(n)); err != nil {
		return err
	}
	if dhidden.ptr != 0 {
		if err := need("LMHeadCrossEntropy", "dhidden", dhidden, 4*int64(n)*int64(dim)); err != nil {
			return err
		}
	}
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		h, _ := hidden.Slice(4*int64(r0)*int64(dim), 4*int64(m)*int64(dim))
		if err := d.MatMul(logits, h, m, head, false); err != nil {
			return err
		}
		l, _ := loss.Slice(8*int64(r0), 8*int64(m))
		t, _ := targets.Slice(4*int64(r0), 4*int64(m))
		if err := d.CrossEntropyRows(logits, l, t, m, vocab, scale, dhidden.ptr != 0); err != nil {
			return err
		}
		if dhidden.ptr != 0 {
			dh, _ := dhidden.Slice(4*int64(r0)*int64(dim), 4*int64(m)*int64(dim))
			if err := d.MatMulBackwardInput(dh, logits, m, head, true); err != nil {
				return err
			}
		}
	}
	return nil
}
