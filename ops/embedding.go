package ops

import "fmt"

// Embedding looks up rows of table (vocab, c) for ids → (len(ids), c).
// The table may be frozen or trainable; its gradient is a scatter-add.
func (tp *Tape) Embedding(table *Tensor, ids []int32) *Tensor {
	be := tp.backendFor("Embedding", table)
	vocab, c := table.Rows(), table.Cols()
	for _, id := range ids {
		checkID(id, vocab)
	}
	out := tp.newTensor(be, len(ids), c)
	be.Embedding(out.buf, table.buf, ids, vocab, c)
	if tp.needsGrad(table) {
		tp.record(out, func() { be.EmbeddingBackward(tp.grad(table), out.grad, ids, c) })
	}
	return out
}

// EmbeddingMatrix looks up rows of a frozen table in any GGUF encoding
// (token_embd) → (len(ids), Cols), dequantized. No gradient flows.
func (tp *Tape) EmbeddingMatrix(table *Matrix, ids []int32) *Tensor {
	be := tp.backendFor("EmbeddingMatrix")
	for _, id := range ids {
		checkID(id, table.Rows)
	}
	out := tp.newTensor(be, len(ids), table.Cols)
	be.EmbeddingMatrix(out.buf, table, ids)
	return out
}

func checkID(id int32, vocab int) {
	if id < 0 || int(id) >= vocab {
		panic(fmt.Sprintf("ops: token id %d outside the vocabulary of %d", id, vocab))
	}
}

// embeddingForward: out (n, c) = table[ids[i]] for each i; table (vocab, c).
func embeddingForward(out, table []float32, ids []int32, vocab, c int) {
	for i, id := range ids {
		checkID(id, vocab)
		copy(out[i*c:i*c+c], table[int(id)*c:int(id)*c+c])
	}
}

// embeddingBackward accumulates dtable[ids[i]] += dout[i].
func embeddingBackward(dtable, dout []float32, ids []int32, c int) {
	for i, id := range ids {
		accumulate(dtable[int(id)*c:int(id)*c+c], dout[i*c:i*c+c])
	}
}
