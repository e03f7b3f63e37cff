package cuda

import (
	"fmt"
	"sync"

	"ladder-engine/ops"
)

// The architecture options that came with gemma2, phi3 and the RoPE
// scalings (attention soft-cap, sliding window and query scale, GeGLU,
// soft-capped logits, scaled or partial RoPE) have no CUDA kernels yet.
// Plain llama/qwen settings run on the device kernels; the others run the
// CPU kernel on host copies of the buffers (a download, the CPU op, an
// upload of the outputs): correct, slow, and the place to add kernels.
// Inference attention over the device KV cache has no such path: it
// refuses those options with a clear message.

var hostCPU = sync.OnceValue(func() *ops.CPU { return ops.NewCPU(ops.NewPool(0)) })

// viaHost runs fn on host copies of outs (read first: gradients
// accumulate) and ins, then writes the outs back. nil buffers stay nil.
func (b *Backend) viaHost(outs, ins []ops.Buffer, fn func(outs, ins []ops.Buffer)) {
	cpu := hostCPU()
	copyIn := func(bufs []ops.Buffer) ([]ops.Buffer, [][]float32) {
		hs := make([]ops.Buffer, len(bufs))
		vals := make([][]float32, len(bufs))
		for i, x := range bufs {
			if x == nil {
				continue
			}
			if x.DType() != ops.F32 {
				panic(fmt.Sprintf("cuda: host fallback of a %s buffer", x.DType()))
			}
			t := ops.TensorOn(cpu, -1, ops.F32, x.Len())
			b.Download(t.F32(), x)
			hs[i], vals[i] = t.Buf(), t.F32()
		}
		return hs, vals
	}
	ho, vo := copyIn(outs)
	hi, _ := copyIn(ins)
	fn(ho, hi)
	for i, x := range outs {
		if x != nil {
			b.Upload(x, vo[i])
		}
	}
}

// plainRoPE reports whether rc is what the device kernel computes: the
// whole head rotated, no scaling, no magnitude factor.
func plainRoPE(rc *ops.RoPEConfig, headDim int) bool {
	return (rc.NRot == 0 || rc.NRot == headDim) && (rc.FreqScale == 0 || rc.FreqScale == 1) &&
		rc.ExtFactor == 0 && (rc.AttnFactor == 0 || rc.AttnFactor == 1)
}

func (b *Backend) RoPE(out, x ops.Buffer, n, nHead, headDim int, pos []int32, rc *ops.RoPEConfig, inverse bool) {
	if plainRoPE(rc, headDim) {
		b.rope(out, x, n, nHead, headDim, pos, rc.Base, rc.Neox, rc.FreqFactors, inverse)
		return
	}
	if !out.SameMemory(x) {
		b.Copy(out, x)
	}
	b.viaHost([]ops.Buffer{out}, nil, func(o, _ []ops.Buffer) {
		hostCPU().RoPE(o[0], o[0], n, nHead, headDim, pos, rc, inverse)
	})
}

// plainAttn reports whether o is the device kernels' attention: the usual
// 1/√headDim scale, no soft-cap, no window.
func plainAttn(o *ops.AttnOptions) bool {
	return o == nil || (o.Scale == 0 && o.SoftCap == 0 && o.Window == 0)
}

func (b *Backend) Attention(out, q, k, v, att ops.Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *ops.AttnOptions) {
	if plainAttn(o) {
		if att == nil { // no backward follows: the kernel's log-sum-exp only
			att = b.Alloc(ops.Scratch, ops.F32, nSeq*nHead*n)
			defer b.Free(ops.Scratch, att)
		}
		b.attention(out, q, k, v, att, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0)
		return
	}
	if att == nil { // the host computes through the CPU's full layout
		att = b.Alloc(ops.Scratch, ops.F32, nSeq*nHead*n*nKV)
		defer b.Free(ops.Scratch, att)
	}
	// The CPU keeps the probabilities in att; AttentionBackward with the
	// same options reads them back the same way.
	b.viaHost([]ops.Buffer{out, att}, []ops.Buffer{q, k, v}, func(w, r []ops.Buffer) {
		hostCPU().Attention(w[0], r[0], r[1], r[2], w[1], nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
	})
}

func (b *Backend) AttentionBackward(dq, dk, dv, dout, q, k, v, att ops.Buffer, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0 int, o *ops.AttnOptions) {
	if plainAttn(o) {
		b.attentionBackward(dq, dk, dv, dout, q, k, v, att, nSeq, n, nKV, nHead, nHeadKV, headDim, pos0)
		return
	}
	b.viaHost([]ops.Buffer{dq, dk, dv}, []ops.Buffer{dout, q, k, v, att}, func(w, r []ops.Buffer) {
		hostCPU().AttentionBackward(w[0], w[1], w[2], r[0], r[1], r[2], r[3], r[4], nSeq, n, nKV, nHead, nHeadKV, headDim, pos0, o)
	})
}

func (b *Backend) AttentionKV(out, q, k, v ops.Buffer, kv *ops.KVCache, l, n, nHead int, o *ops.AttnOptions) {
	if !plainAttn(o) {
		panic(fmt.Sprintf("cuda: attention over the KV cache with scale %g, soft-cap %g, window %d has no CUDA kernel yet (gemma2/phi3 inference: use --device cpu)", o.Scale, o.SoftCap, o.Window))
	}
	b.attentionKV(out, q, k, v, kv, l, n, nHead)
}

func (b *Backend) LMHeadCE(loss, nll, dhidden, hidden ops.Buffer, n int, head *ops.Matrix, softCap float32, targets []int32, scale float32, lossScale float64) {
	if softCap == 0 {
		b.lmHeadCE(loss, nll, dhidden, hidden, n, head, targets, scale, lossScale)
		return
	}
	b.viaHost([]ops.Buffer{loss, nll, dhidden}, []ops.Buffer{hidden}, func(w, r []ops.Buffer) {
		hostCPU().LMHeadCE(w[0], w[1], w[2], r[0], n, head, softCap, targets, scale, lossScale)
	})
}

func (b *Backend) GeGLU(out, gate, up ops.Buffer, n int, f16Table bool) {
	b.viaHost([]ops.Buffer{out}, []ops.Buffer{gate, up}, func(w, r []ops.Buffer) {
		hostCPU().GeGLU(w[0], r[0], r[1], n, f16Table)
	})
}

func (b *Backend) GeGLUBackward(dgate, dup, dout, gate, up ops.Buffer, n int) {
	b.viaHost([]ops.Buffer{dgate, dup}, []ops.Buffer{dout, gate, up}, func(w, r []ops.Buffer) {
		hostCPU().GeGLUBackward(w[0], w[1], r[0], r[1], r[2], n)
	})
}

func (b *Backend) SoftCap(out, x ops.Buffer, n int, c float32) {
	b.viaHost([]ops.Buffer{out}, []ops.Buffer{x}, func(w, r []ops.Buffer) {
		hostCPU().SoftCap(w[0], r[0], n, c)
	})
}

func (b *Backend) SoftCapBackward(dx, dout, out ops.Buffer, n int, c float32) {
	b.viaHost([]ops.Buffer{dx}, []ops.Buffer{dout, out}, func(w, r []ops.Buffer) {
		hostCPU().SoftCapBackward(w[0], r[0], r[1], n, c)
	})
}
