package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strings"
)

// runEmbedding is llama-embedding: final hidden states (after output_norm,
// before the LM head), pooled and normalized as asked, printed in
// llama-embedding's formats.
func runEmbedding(args []string) error {
	fs := newFlags("embedding", "MODEL.gguf -p TEXT [--adapter FILE]... [--adapter-scale S] [--pooling none|mean|cls|last] [--embd-normalize N] [--json]")
	model := modelFlag(fs)
	prompt := fs.String("p", "", "text to embed; each line (see --embd-separator) is a separate sequence")
	file := fs.String("f", "", "read the text from a file instead of -p")
	pooling := fs.String("pooling", "none", "pooling over tokens: none (one row per token), mean, cls (first), last")
	normalize := fs.Int("embd-normalize", 2, "-1 none, 0 max absolute int16, 1 taxicab, 2 euclidean, >2 p-norm")
	format := fs.String("embd-output-format", "", "output: '' plain, json (OpenAI-like), array")
	asJSON := fs.Bool("json", false, "same as --embd-output-format json")
	sep := fs.String("embd-separator", "\n", "separator between sequences in the text")
	nCtx := fs.Int("c", 0, "context size (0: the model's training context)")
	threads := fs.Int("t", 0, "threads (0: all CPUs)")
	device := deviceFlag(fs)
	af := addAdapterFlags(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path, pos, err := model(pos)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *asJSON {
		*format = "json"
	}
	switch *format {
	case "", "json", "array":
	default:
		return usagef("--embd-output-format %q: want json or array (or nothing for plain)", *format)
	}
	switch *pooling {
	case "none", "mean", "cls", "last":
	default:
		return usagef("--pooling %q: want none, mean, cls or last", *pooling)
	}
	text := *prompt
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		text = string(b)
	}
	if text == "" {
		return usagef("nothing to embed: pass -p TEXT or -f FILE")
	}
	m, err := loadModel(path, *threads, *device)
	if err != nil {
		return err
	}
	defer m.Close()
	adapter, releaseLoRA, err := af.apply(m)
	if err != nil {
		return err
	}
	defer releaseLoRA()
	d, err := newDecoder(m, adapter, *nCtx)
	if err != nil {
		return err
	}
	defer d.Free()
	emb, ok := d.(interface {
		Embed(tokens []int32, out []float32) error
	})
	if !ok {
		return fmt.Errorf("this decoder cannot produce hidden states")
	}

	var rows [][]float32
	for _, p := range strings.Split(text, *sep) {
		// llama-embedding: common_tokenize(prompt, add_special=true, parse_special=true).
		ids := m.Tok.Encode(p, true, true)
		if len(ids) == 0 {
			continue
		}
		if len(ids) > d.NCtx() {
			return fmt.Errorf("prompt of %d tokens is longer than the context %d (raise -c)", len(ids), d.NCtx())
		}
		// With --adapter: the hidden states the LM head reads, adapter applied.
		h := make([]float32, len(ids)*m.NEmbd)
		if err := emb.Embed(ids, h); err != nil {
			return err
		}
		rows = append(rows, pool(h, len(ids), m.NEmbd, *pooling)...)
	}
	for _, r := range rows {
		normalizeEmbedding(r, *normalize)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	printEmbeddings(w, rows, *format, *normalize)
	return nil
}

// pool turns (n, nEmbd) hidden states into the rows llama-embedding prints.
func pool(h []float32, n, nEmbd int, how string) [][]float32 {
	row := func(i int) []float32 { return append([]float32(nil), h[i*nEmbd:(i+1)*nEmbd]...) }
	switch how {
	case "mean":
		out := make([]float32, nEmbd)
		for i := range n {
			for j, v := range h[i*nEmbd : (i+1)*nEmbd] {
				out[j] += v
			}
		}
		for j := range out {
			out[j] /= float32(n)
		}
		return [][]float32{out}
	case "cls":
		return [][]float32{row(0)}
	case "last":
		return [][]float32{row(n - 1)}
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = row(i)
	}
	return rows
}

// normalizeEmbedding is common_embd_normalize.
func normalizeEmbedding(x []float32, norm int) {
	var sum float64
	switch {
	case norm < 0:
		sum = 1
	case norm == 0: // max absolute, scaled to int16
		for _, v := range x {
			sum = math.Max(sum, math.Abs(float64(v)))
		}
		sum /= 32760
	case norm == 2:
		for _, v := range x {
			sum += float64(v) * float64(v)
		}
		sum = math.Sqrt(sum)
	default:
		for _, v := range x {
			sum += math.Pow(math.Abs(float64(v)), float64(norm))
		}
		sum = math.Pow(sum, 1/float64(norm))
	}
	scale := float32(0)
	if sum > 0 {
		scale = float32(1 / sum)
	}
	for i := range x {
		x[i] *= scale
	}
}

// printEmbeddings writes rows as llama-embedding does for each format.
func printEmbeddings(w *bufio.Writer, rows [][]float32, format string, norm int) {
	num := "%1.7f"
	if norm == 0 {
		num = "%1.0f"
	}
	if format == "" {
		for j, r := range rows {
			fmt.Fprintf(w, "embedding %d: ", j)
			for i := 0; i < min(3, len(r)); i++ {
				fmt.Fprintf(w, "%9.6f ", r[i])
			}
			fmt.Fprint(w, " ... ")
			for i := max(0, len(r)-3); i < len(r); i++ {
				fmt.Fprintf(w, "%9.6f ", r[i])
			}
			fmt.Fprintln(w)
		}
		return
	}
	obj := format == "json"
	if obj {
		fmt.Fprint(w, "{\n  \"object\": \"list\",\n  \"data\": [\n")
	} else {
		fmt.Fprint(w, "[")
	}
	for j, r := range rows {
		if obj {
			fmt.Fprintf(w, "    {\n      \"object\": \"embedding\",\n      \"index\": %d,\n      \"embedding\": ", j)
		}
		fmt.Fprint(w, "[")
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, num, v)
		}
		if obj {
			fmt.Fprint(w, "]\n    }")
		} else {
			fmt.Fprint(w, "]")
		}
		if j < len(rows)-1 {
			if obj {
				fmt.Fprint(w, ",\n")
			} else {
				fmt.Fprint(w, ",")
			}
		}
	}
	if obj {
		fmt.Fprint(w, "\n  ]\n}\n")
	} else {
		fmt.Fprint(w, "]\n")
	}
}
