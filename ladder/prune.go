package ladder

import (
	"math"
	"sort"

	"ladder-engine/engine"
	"ladder-engine/ops"
)

// initPrune copies the side weights from the backbone's own (dequantized),
// keeping the rows and columns of largest magnitude, as the LST paper
// initialises its side network by structural pruning:
//
//   - the side stream keeps the d_s residual dimensions H with the largest
//     token-embedding column norms; every Down_i starts as the selection of
//     H (the side stream begins as a slice of the backbone's), and the norms
//     keep their weights at H;
//   - side block i copies backbone layer LayerMap[i] (free blocks: the layer
//     of the ladder block δ below): the KV heads with the largest key norms,
//     the query heads of each with the largest query norms, within a head
//     the RoPE pairs with the largest query+key norms, the value dimensions
//     with the largest norms, and the FFN units with the largest
//     gate+up+down norms; all restricted to the columns H;
//   - Up stays zero for the residual and gated heads (an untrained adapter
//     is still the base model); the side head starts as H's embedding back.
//
// The gates and everything not listed keep initRandom's values.
func (s *Side) initPrune(m *engine.Model) {
	h := &s.H
	d, ds := h.BaseEmbd, h.NEmbd
	row := make([]float32, max(d, m.NFF, m.QDim()))

	// Residual dimensions: largest token-embedding column norms.
	colNorm := make([]float64, d)
	for r := 0; r < m.TokenEmbd.Rows; r++ {
		m.TokenEmbd.DequantizeRow(r, row[:d])
		for j, v := range row[:d] {
			colNorm[j] += float64(v) * float64(v)
		}
	}
	H := topK(colNorm, ds)

	selection := func(w *ops.Tensor) {
		clear(w.F32())
		for k, j := range H {
			w.F32()[k*d+j] = 1
		}
	}
	selection(s.In)
	nLadder := 0
	for i := range s.Blocks {
		if s.Blocks[i].Down != nil {
			selection(s.Blocks[i].Down)
			nLadder++
		}
	}
	for k, j := range H {
		s.OutNorm.F32()[k] = m.OutputNorm[j]
	}
	if h.Head == "side" {
		clear(s.Up.F32())
		for k, j := range H {
			s.Up.F32()[j*ds+k] = 1
		}
	}

	for i := range s.Blocks {
		l := s.Blocks[i].Layer
		if l < 0 {
			l = h.LayerMap[max(0, i-nLadder)]
			if l < 0 {
				l = m.NLayer - 1
			}
		}
		s.pruneBlock(&s.Blocks[i], &m.Layers[l], m, H, row)
	}
}

// pruneBlock fills side block b from backbone layer ly.
func (s *Side) pruneBlock(b *Block, ly *engine.Layer, m *engine.Model, H []int, row []float32) {
	h := &s.H
	d, ds := h.BaseEmbd, h.NEmbd
	hd, hdS := m.HeadDim, h.HeadDim
	// Row norms of every weight row of a backbone matrix.
	rowNorms := func(w *ops.Matrix) []float64 {
		out := make([]float64, w.Rows)
		for r := range out {
			w.DequantizeRow(r, row[:w.Cols])
			for _, v := range row[:w.Cols] {
				out[r] += float64(v) * float64(v)
			}
		}
		return out
	}
	// copyRows writes dst (len(rows), len(cols)) = w[rows][cols].
	copyRows := func(dst []float32, w *ops.Matrix, rows, cols []int) {
		for k, r := range rows {
			w.DequantizeRow(r, row[:w.Cols])
			for j, c := range cols {
				dst[k*len(cols)+j] = row[c]
			}
		}
	}
	for k, j := range H {
		b.AttnNorm.F32()[k] = ly.AttnNorm[j]
		b.FFNNorm.F32()[k] = ly.FFNNorm[j]
	}

	// Heads: KV heads by key norm, then query heads of each group by
	// query norm (the side keeps a group size of NHead/NHeadKV).
	qn, kn, vn := rowNorms(ly.Wq), rowNorms(ly.Wk), rowNorms(ly.Wv)
	headSum := func(n []float64, head int) float64 {
		var t float64
		for _, v := range n[head*hd : (head+1)*hd] {
			t += v
		}
		return t
	}
	kvScore := make([]float64, m.NHeadKV)
	for g := range kvScore {
		kvScore[g] = headSum(kn, g)
	}
	kvHeads := topK(kvScore, min(h.NHeadKV, m.NHeadKV))
	group, groupS := m.NHead/m.NHeadKV, h.NHead/h.NHeadKV
	var qRows, kRows, vRows, oCols []int
	for gs := 0; gs < h.NHeadKV; gs++ {
		g := kvHeads[gs%len(kvHeads)]
		qScore := make([]float64, group)
		for j := range qScore {
			qScore[j] = headSum(qn, g*group+j)
		}
		qHeads := topK(qScore, min(groupS, group))
		// RoPE pairs by query+key norm, kept in frequency order.
		half := hd / 2
		pairScore := make([]float64, half)
		for p := range pairScore {
			a, c := ropePair(p, hd, h.RopeNeox)
			pairScore[p] = kn[g*hd+a] + kn[g*hd+c]
			for _, qh := range qHeads {
				pairScore[p] += qn[(g*group+qh)*hd+a] + qn[(g*group+qh)*hd+c]
			}
		}
		pairs := topK(pairScore, min(hdS/2, half))
		dims := make([]int, hdS)
		for p := 0; p < hdS/2; p++ {
			a, c := ropePair(pairs[p%len(pairs)], hd, h.RopeNeox)
			pa, pc := ropePair(p, hdS, h.RopeNeox)
			dims[pa], dims[pc] = a, c
		}
		for _, dd := range dims {
			kRows = append(kRows, g*hd+dd)
		}
		vDims := topK(vn[g*hd:(g+1)*hd], min(hdS, hd))
		for j := 0; j < hdS; j++ {
			vRows = append(vRows, g*hd+vDims[j%len(vDims)])
		}
		for j := 0; j < groupS; j++ {
			qh := g*group + qHeads[j%len(qHeads)]
			for _, dd := range dims {
				qRows = append(qRows, qh*hd+dd)
			}
			for k := 0; k < hdS; k++ {
				oCols = append(oCols, qh*hd+vDims[k%len(vDims)])
			}
		}
	}
	copyRows(b.Wq.F32(), ly.Wq, qRows, H)
	copyRows(b.Wk.F32(), ly.Wk, kRows, H)
	copyRows(b.Wv.F32(), ly.Wv, vRows, H)
	copyRows(b.Wo.F32(), ly.Wo, H, oCols)

	// FFN units by gate+up row norms and down column norms.
	gn, un := rowNorms(ly.WGate), rowNorms(ly.WUp)
	score := make([]float64, m.NFF)
	for j := range score {
		score[j] = gn[j] + un[j]
	}
	for r := 0; r < d; r++ {
		ly.WDown.DequantizeRow(r, row[:m.NFF])
		for j, v := range row[:m.NFF] {
			score[j] += float64(v) * float64(v)
		}
	}
	F := topK(score, min(h.NFF, m.NFF))
	for len(F) < h.NFF { // a side FFN wider than the backbone's (tiny r)
		F = append(F, F[len(F)%max(1, m.NFF)])
	}
	copyRows(b.WGate.F32(), ly.WGate, F, H)
	copyRows(b.WUp.F32(), ly.WUp, F, H)
	copyRows(b.WDown.F32(), ly.WDown, H, F)
	_ = ds
}

// ropePair returns the two dimensions RoPE rotates together as pair p of
// a head of size hd: (p, p+hd/2) for NEOX, (2p, 2p+1) otherwise.
func ropePair(p, hd int, neox bool) (int, int) {
	if neox {
		return p, p + hd/2
	}
	return 2 * p, 2*p + 1
}

// topK returns the indexes of the k largest scores, in increasing index
// order (ties to the lower index).
func topK(score []float64, k int) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		sa, sb := score[idx[a]], score[idx[b]]
		if math.IsNaN(sb) {
			return !math.IsNaN(sa)
		}
		return sa > sb
	})
	idx = idx[:min(k, len(idx))]
	sort.Ints(idx)
	return idx
}
