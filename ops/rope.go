package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// RoPEConfig is how positions become rotation angles: ggml_rope_ext's
// parameters. The zero value of each scaling field means "no scaling", so
// RoPEConfig{Base: 10000} is plain RoPE over the whole head.
type RoPEConfig struct {
	NRot        int       // dimensions rotated per head (rope.dimension_count); 0: the whole head. The rest pass through.
	Base        float32   // freq_base
	Neox        bool      // rotate halves (i, i+NRot/2) (qwen2, phi3, gemma2) rather than adjacent pairs (2i, 2i+1) (llama)
	FreqFactors []float32 // (NRot/2) divisors of the pair frequencies (Llama 3.1 rope_freqs, Phi-3 LongRoPE), or nil
	FreqScale   float32   // 1/rope.scaling.factor (linear and YaRN interpolation); 0 means 1
	ExtFactor   float32   // YaRN: mix of extrapolated angles on the fast pairs (1 with YaRN, else 0)
	AttnFactor  float32   // multiplies cos and sin (LongRoPE's attn_factor); 0 means 1
	BetaFast    float32   // YaRN ramp ends (llama.cpp's defaults 32 and 1); used when ExtFactor != 0
	BetaSlow    float32
	NCtxOrig    int // YaRN: the original training context (rope.scaling.original_context_length)
}

// ropeTables is what ggml_rope_cache_init derives once per call: the
// base angle step, the YaRN ramp's ends and the magnitude scale.
type ropeTables struct {
	nRot             int
	thetaScale       float32
	freqScale        float32
	ext              float32
	corrLow, corrHig float32
	mscale           float32
}

func (rc *RoPEConfig) tables(headDim int) ropeTables {
	t := ropeTables{nRot: rc.NRot, freqScale: rc.FreqScale, ext: rc.ExtFactor, mscale: rc.AttnFactor}
	if t.nRot <= 0 {
		t.nRot = headDim
	}
	if t.freqScale == 0 {
		t.freqScale = 1
	}
	if t.mscale == 0 {
		t.mscale = 1
	}
	// ggml: theta_scale = powf(freq_base, -2.0f/n_dims), then θ *= theta_scale
	// step by step in float, which we repeat for bit-compatible angles.
	t.thetaScale = float32(math.Pow(float64(rc.Base), float64(float32(-2)/float32(t.nRot))))
	if t.ext != 0 {
		// ggml_rope_yarn_corr_dims: the pairs whose wavelength spans fewer
		// than beta_fast (more than beta_slow) rotations over n_ctx_orig.
		corr := func(beta float32) float64 {
			return float64(t.nRot) * math.Log(float64(rc.NCtxOrig)/(float64(beta)*2*math.Pi)) / (2 * math.Log(float64(rc.Base)))
		}
		t.corrLow = float32(max(0, math.Floor(corr(rc.BetaFast))))
		t.corrHig = float32(min(float64(t.nRot-1), math.Ceil(corr(rc.BetaSlow))))
		// rope_yarn: mscale *= 1 + 0.1·ln(1/freq_scale)
		t.mscale *= float32(1 + 0.1*math.Log(float64(1/t.freqScale)))
	}
	return t
}

// angle is ggml's rope_yarn for pair i: the interpolated angle, mixed with
// the extrapolated one on YaRN's fast pairs.
func (t *ropeTables) angle(thetaExtrap float32, i int) float32 {
	theta := t.freqScale * thetaExtrap
	if t.ext != 0 {
		y := (float32(i) - t.corrLow) / max(0.001, t.corrHig-t.corrLow)
		ramp := (1 - min(1, max(0, y))) * t.ext
		theta = theta*(1-ramp) + thetaExtrap*ramp
	}
	return theta
}

// RoPEForward rotates pairs of the first NRot dimensions of each head in
// place, by θ_i = pos·base^(-2i/NRot) / freqFactors[i] (scaled as rc says)
// with cos and sin multiplied by the magnitude factor, as ggml_rope_ext.
//
// x is (n, nHead*headDim); pos (n) holds each row's position.
func RoPEForward(x []float32, n, nHead, headDim int, pos []int32, rc *RoPEConfig) {
	ropeRotate(x, n, nHead, headDim, pos, rc, 1)
}

// ropeRotate applies the rotation with sin multiplied by sinSign (ggml's
// rope cache does the same for the backward pass: the transpose of
// mscale·R(θ) is mscale·R(−θ)). cos and sin come from ropeCosSin's table
// for positions below ropeCacheMax: every layer of a forward (q and k,
// and the backward) rotates the same positions, and the trigonometry cost
// more than the rotations.
func ropeRotate(x []float32, n, nHead, headDim int, pos []int32, rc *RoPEConfig, sinSign float32) {
	t := rc.tables(headDim)
	half := t.nRot / 2
	width := nHead * headDim
	var maxPos int32
	for _, p := range pos[:n] {
		maxPos = max(maxPos, p)
	}
	// Positions past the table's bound (a row of a very long context)
	// compute their own values; the others still read the table.
	table := ropeTable(rc, &t, headDim, min(int(maxPos)+1, ropeCacheMax))
	var own []float32 // a position's values outside the table
	for r := 0; r < n; r++ {
		row := x[r*width : r*width+width]
		var cs []float32
		if p := int(pos[r]); p >= 0 && p < len(table)/(2*half) {
			cs = table[2*half*p : 2*half*(p+1)]
		} else {
			if own == nil {
				own = make([]float32, 2*half)
			}
			cs = own
			ropeCosSin(cs, rc, &t, pos[r])
		}
		for i := 0; i < half; i++ {
			cos, sin := cs[2*i], cs[2*i+1]*sinSign
			i0, i1 := 2*i, 2*i+1
			if rc.Neox {
				i0, i1 = i, i+half
			}
			for h := 0; h < nHead; h++ {
				hd := row[h*headDim : h*headDim+headDim]
				x0, x1 := hd[i0], hd[i1]
				hd[i0] = x0*cos - x1*sin
				hd[i1] = x0*sin + x1*cos
			}
		}
	}
}

// ropeCosSin writes position p's (cos, sin) pairs, both times mscale, for
// the nRot/2 rotated pairs: ggml_rope_cache_init's values (θ stepped by
// theta_scale in float32, divided by the frequency factor, through
// rope_yarn).
func ropeCosSin(cs []float32, rc *RoPEConfig, t *ropeTables, p int32) {
	theta := float32(p)
	for i := 0; i < t.nRot/2; i++ {
		te := theta
		if rc.FreqFactors != nil {
			te = theta / rc.FreqFactors[i]
		}
		a := t.angle(te, i)
		cs[2*i] = float32(math.Cos(float64(a))) * t.mscale
		cs[2*i+1] = float32(math.Sin(float64(a))) * t.mscale
		theta *= t.thetaScale
	}
}

// ropeCacheMax bounds the positions ropeTable keeps (8192 positions of a
// 128-wide head: 4 MiB); rows past it compute their own.
const ropeCacheMax = 8192

// ropeKey is what a table of cos and sin depends on: the configuration's
// values (FreqFactors as the bytes of their bits, so that models loaded
// again and again share one table) and the head width.
type ropeKey struct {
	nRot, headDim, nCtxOrig                                    int
	base, freqScale, extFactor, attnFactor, betaFast, betaSlow float32
	ff                                                         string
}

type ropeEntry struct {
	mu    sync.Mutex
	table atomic.Pointer[[]float32] // (positions, nRot/2, 2): ropeCosSin's rows
}

var ropeCache sync.Map // ropeKey → *ropeEntry

// ropeTable returns the (cos, sin) table of rc for at least positions
// 0..npos−1, extended (to the next power of two) when it is shorter.
func ropeTable(rc *RoPEConfig, t *ropeTables, headDim, npos int) []float32 {
	var ff []byte
	for _, f := range rc.FreqFactors {
		ff = binary.LittleEndian.AppendUint32(ff, math.Float32bits(f))
	}
	k := ropeKey{nRot: t.nRot, headDim: headDim, nCtxOrig: rc.NCtxOrig, base: rc.Base, freqScale: rc.FreqScale,
		extFactor: rc.ExtFactor, attnFactor: rc.AttnFactor, betaFast: rc.BetaFast, betaSlow: rc.BetaSlow, ff: string(ff)}
	v, ok := ropeCache.Load(k)
	if !ok {
		v, _ = ropeCache.LoadOrStore(k, &ropeEntry{})
	}
	e := v.(*ropeEntry)
	row := t.nRot // floats per position
	if tb := e.table.Load(); tb != nil && len(*tb) >= npos*row {
		return *tb
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if tb := e.table.Load(); tb != nil && len(*tb) >= npos*row {
		return *tb
	}
	size := min(ropeCacheMax, max(64, 1<<bits.Len(uint(npos-1))))
	tb := make([]float32, size*row)
	for p := 0; p < size; p++ {
		ropeCosSin(tb[p*row:(p+1)*row], rc, t, int32(p))
	}
	e.table.Store(&tb)
	return tb
}

// RoPE returns x (n, nHead*headDim) with each head rotated by its row's
// position pos[r] (see RoPEForward). The rotation does not change with
// x, so the backward applies its transpose to the gradient.
func (tp *Tape) RoPE(x *Tensor, nHead int, pos []int32, rc *RoPEConfig) *Tensor {
	be := tp.backendFor("RoPE", x)
	n, w := x.Rows(), x.Cols()
	if nHead <= 0 || w%nHead != 0 || len(pos) != n {
		panic(fmt.Sprintf("ops.RoPE: input %v, %d heads, %d positions", x, nHead, len(pos)))
	}
	headDim := w / nHead
	nRot := rc.NRot
	if nRot <= 0 {
		nRot = headDim
	}
	if nRot%2 != 0 || nRot > headDim {
		panic(fmt.Sprintf("ops.RoPE: %d rotated dims of a head of %d", nRot, headDim))
	}
	if rc.FreqFactors != nil && len(rc.FreqFactors) < nRot/2 {
		panic(fmt.Sprintf("ops.RoPE: %d frequency factors, want %d", len(rc.FreqFactors), nRot/2))
	}
	out := tp.newLike(be, x)
	be.RoPE(out.buf, x.buf, n, nHead, headDim, pos, rc, false)
	if tp.needsGrad(x) {
		tp.record(out, func() {
			// out's gradient is not read again after this record: rotate it in place.
			be.RoPE(out.grad, out.grad, n, nHead, headDim, pos, rc, true)
			be.Accumulate(tp.grad(x), out.grad)
		})
	}
	return out
}
