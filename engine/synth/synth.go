package synth

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"ladder-engine/gguf"
)

// Options says what to generate. The zero Type is F32.
type Options struct {
	Arch   string    // "llama", "qwen2", "gemma2" or "phi3"
	Preset string    // a name from PresetNames(Arch)
	Type   gguf.Type // type of the weight matrices; norms and biases stay f32
	Seed   uint64
	// Vocab, when set, supplies the tokenizer: every tokenizer.* key is
	// copied and its token count replaces the preset's n_vocab.
	Vocab *gguf.File
	// Pure gives every weight matrix Type (llama-quantize --pure). By
	// default the matrices get llama-quantize's mix for the file type of
	// Type (e.g. q4_0: output.weight q6_K; q4_K: the Q4_K_M mix).
	Pure bool
	// Name is general.name; default "synth-<arch>-<preset>".
	Name string
	// Threads generating rows in parallel; default GOMAXPROCS. The output
	// does not depend on it.
	Threads int
}

// Scales of the random values (as the fixtures' synth models were made).
const (
	weightStd = 0.02 // matrices and biases: N(0, 0.02)
	normMean  = 1.0  // norm weights: 1 + N(0, 0.02)
)

// tensorSpec is one tensor to generate.
type tensorSpec struct {
	name string
	ne   []int64
	typ  gguf.Type
	mean float64
}

// Write generates the model and writes it to path atomically.
func Write(path string, opt Options) error {
	w, err := Build(opt)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// Build returns a writer holding the model's metadata and tensor infos;
// the weights are generated row by row while the writer writes, so memory
// stays a few MiB whatever the model size.
func Build(opt Options) (*gguf.Writer, error) {
	p, err := LookupPreset(opt.Arch, opt.Preset)
	if err != nil {
		return nil, err
	}
	if !gguf.CanQuantize(opt.Type) {
		return nil, fmt.Errorf("synth: cannot write tensors of type %s (no quantizer)", opt.Type)
	}
	fileType, ok := gguf.FileTypeFor(opt.Type)
	if !ok {
		return nil, fmt.Errorf("synth: llama.cpp has no file type for mostly-%s models", opt.Type)
	}
	name := opt.Name
	if name == "" {
		name = "synth-" + opt.Arch + "-" + opt.Preset
	}

	w := gguf.NewWriter()
	arch := opt.Arch
	w.SetString("general.architecture", arch)
	w.SetString("general.name", name)
	// Hyper-parameters with the types llama.cpp's converters write.
	w.SetUint32(arch+".context_length", uint32(p.NCtxTrain))
	w.SetUint32(arch+".embedding_length", uint32(p.NEmbd))
	w.SetUint32(arch+".block_count", uint32(p.NLayer))
	w.SetUint32(arch+".feed_forward_length", uint32(p.NFF))
	w.SetUint32(arch+".attention.head_count", uint32(p.NHead))
	w.SetUint32(arch+".attention.head_count_kv", uint32(p.NHeadKV))
	if arch == "llama" || arch == "phi3" {
		w.SetUint32(arch+".rope.dimension_count", uint32(p.HeadDim()))
	}
	if p.Arch.KeyLength > 0 {
		w.SetUint32(arch+".attention.key_length", uint32(p.Arch.KeyLength))
		w.SetUint32(arch+".attention.value_length", uint32(p.Arch.KeyLength))
	}
	w.SetFloat32(arch+".rope.freq_base", p.RopeBase)
	w.SetFloat32(arch+".attention.layer_norm_rms_epsilon", p.RMSEps)
	switch arch {
	case "gemma2":
		w.SetFloat32(arch+".attn_logit_softcapping", p.Arch.AttnSoftCap)
		w.SetFloat32(arch+".final_logit_softcapping", p.Arch.FinalSoftCap)
		w.SetUint32(arch+".attention.sliding_window", uint32(p.Arch.SlidingWindow))
	case "phi3":
		w.SetUint32(arch+".rope.scaling.original_context_length", uint32(p.NCtxTrain))
		w.SetUint32(arch+".attention.sliding_window", uint32(p.Arch.SlidingWindow))
	}

	if opt.Vocab != nil {
		if p.NVocab, err = copyVocab(w, opt.Vocab); err != nil {
			return nil, err
		}
	} else if arch != "qwen2" {
		err = setSPMVocab(w, p.NVocab)
		// As convert_hf_to_gguf.py writes Gemma 2's and Phi-3's tokenizers.
		switch arch {
		case "gemma2":
			w.SetBool("tokenizer.ggml.add_space_prefix", false)
		case "phi3":
			w.SetBool("tokenizer.ggml.add_bos_token", false)
		}
	} else {
		err = setGPT2Vocab(w, p.NVocab)
	}
	if err != nil {
		return nil, err
	}
	w.SetUint32(arch+".vocab_size", uint32(p.NVocab))
	w.SetUint32("general.quantization_version", 2) // GGML_QNT_VERSION
	w.SetUint32("general.file_type", uint32(fileType))

	qm := &quantMix{fileType: fileType, base: opt.Type, pure: opt.Pure,
		nLayer: p.NLayer, nGQA: p.NHead / p.NHeadKV, hasOutput: !p.Tied}
	for _, ts := range tensorSpecs(arch, p, qm) {
		seed := mix(opt.Seed, fnv1a(ts.name))
		if err := w.AddTensorFunc(ts.name, ts.typ, ts.ne, rowWriter(ts, seed, opt.Threads)); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// tensorSpecs lists the tensors in the order llama.cpp's converters write
// them, with llama.cpp's names.
func tensorSpecs(arch string, p Preset, mix *quantMix) []tensorSpec {
	nEmbd, nFF, nVocab := int64(p.NEmbd), int64(p.NFF), int64(p.NVocab)
	qDim := int64(p.NHead * p.HeadDim())
	kvDim := int64(p.NHeadKV * p.HeadDim())
	matrix := func(name string, cols, rows int64) tensorSpec {
		return tensorSpec{name: name, ne: []int64{cols, rows}, typ: mix.typeOf(name, cols)}
	}
	vector := func(name string, n int64, mean float64) tensorSpec {
		return tensorSpec{name: name, ne: []int64{n}, typ: gguf.TypeF32, mean: mean}
	}
	specs := []tensorSpec{
		matrix("token_embd.weight", nEmbd, nVocab),
		vector("output_norm.weight", nEmbd, normMean),
	}
	if !p.Tied {
		specs = append(specs, matrix("output.weight", nEmbd, nVocab))
	}
	for l := 0; l < p.NLayer; l++ {
		blk := fmt.Sprintf("blk.%d.", l)
		switch arch {
		case "gemma2":
			specs = append(specs,
				vector(blk+"attn_norm.weight", nEmbd, normMean),
				matrix(blk+"attn_q.weight", nEmbd, qDim),
				matrix(blk+"attn_k.weight", nEmbd, kvDim),
				matrix(blk+"attn_v.weight", nEmbd, kvDim),
				matrix(blk+"attn_output.weight", qDim, nEmbd),
				vector(blk+"post_attention_norm.weight", nEmbd, normMean),
				vector(blk+"ffn_norm.weight", nEmbd, normMean),
				matrix(blk+"ffn_gate.weight", nEmbd, nFF),
				matrix(blk+"ffn_up.weight", nEmbd, nFF),
				matrix(blk+"ffn_down.weight", nFF, nEmbd),
				vector(blk+"post_ffw_norm.weight", nEmbd, normMean))
			continue
		case "phi3":
			// Fused: attn_qkv rows Q | K | V, ffn_up rows gate | up.
			specs = append(specs,
				vector(blk+"attn_norm.weight", nEmbd, normMean),
				matrix(blk+"attn_qkv.weight", nEmbd, qDim+2*kvDim),
				matrix(blk+"attn_output.weight", qDim, nEmbd),
				vector(blk+"ffn_norm.weight", nEmbd, normMean),
				matrix(blk+"ffn_up.weight", nEmbd, 2*nFF),
				matrix(blk+"ffn_down.weight", nFF, nEmbd))
			continue
		}
		specs = append(specs,
			vector(blk+"attn_norm.weight", nEmbd, normMean),
			matrix(blk+"attn_q.weight", nEmbd, qDim))
		if arch == "qwen2" {
			specs = append(specs, vector(blk+"attn_q.bias", qDim, 0))
		}
		specs = append(specs, matrix(blk+"attn_k.weight", nEmbd, kvDim))
		if arch == "qwen2" {
			specs = append(specs, vector(blk+"attn_k.bias", kvDim, 0))
		}
		specs = append(specs, matrix(blk+"attn_v.weight", nEmbd, kvDim))
		if arch == "qwen2" {
			specs = append(specs, vector(blk+"attn_v.bias", kvDim, 0))
		}
		specs = append(specs,
			matrix(blk+"attn_output.weight", qDim, nEmbd),
			vector(blk+"ffn_norm.weight", nEmbd, normMean),
			matrix(blk+"ffn_gate.weight", nEmbd, nFF),
			matrix(blk+"ffn_up.weight", nEmbd, nFF),
			matrix(blk+"ffn_down.weight", nFF, nEmbd))
	}
	return specs
}

// rowWriter returns the streaming callback of one tensor: rows are
// generated (each from its own seed, so the result does not depend on the
// thread count), encoded in parallel a batch at a time, and written in
// order.
func rowWriter(ts tensorSpec, seed uint64, threads int) func(io.Writer) error {
	return func(out io.Writer) error {
		cols := int(ts.ne[0])
		rows := 1
		for _, v := range ts.ne[1:] {
			rows *= int(v)
		}
		rowBytes, err := gguf.RowSize(ts.typ, cols)
		if err != nil {
			return err
		}
		if threads <= 0 {
			threads = runtime.GOMAXPROCS(0)
		}
		batch := max(threads, (4<<20)/rowBytes) // ~4 MiB of output per batch
		batch = min(batch, rows)
		buf := make([]byte, batch*rowBytes)
		scratch := make([][]float32, threads)
		for i := range scratch {
			scratch[i] = make([]float32, cols)
		}
		for r0 := 0; r0 < rows; r0 += batch {
			n := min(batch, rows-r0)
			errs := make([]error, threads)
			var wg sync.WaitGroup
			for th := range threads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					x := scratch[th]
					for r := th; r < n; r += threads {
						s := mix(seed, uint64(r0+r))
						fillNormal(x, &s, ts.mean, weightStd)
						if err := gguf.Quantize(ts.typ, x, buf[r*rowBytes:(r+1)*rowBytes]); err != nil {
							errs[th] = err
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			if _, err := out.Write(buf[:n*rowBytes]); err != nil {
				return err
			}
		}
		return nil
	}
}
