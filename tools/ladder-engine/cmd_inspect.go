package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"ladder-engine/gguf"
	"ladder-engine/ops"
)

func runInspect(args []string) error { return inspect(os.Stdout, args) }

func inspect(stdout io.Writer, args []string) error {
	fs := newFlags("inspect", "MODEL.gguf [--json]")
	asJSON := fs.Bool("json", false, "print one JSON object {metadata, tensors} instead of the report")
	model := modelFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path, rest, err := model(pos)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if *asJSON {
		return inspectJSON(stdout, f)
	}
	return inspectReport(stdout, f)
}

// jsonArrayLimit: longer arrays print as {"type", "len"} (the format).
const jsonArrayLimit = 16

// inspectJSON writes {"metadata": {key: value, ...}, "tensors": [...]} with
// the keys in file order.
func inspectJSON(w io.Writer, f *gguf.File) error {
	var b bytes.Buffer
	b.WriteString(`{"metadata":{`)
	for i, kv := range f.KV {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, kv.Key)
		b.WriteByte(':')
		writeJSONValue(&b, kv.Value)
	}
	b.WriteString(`},"tensors":[`)
	type tensorJSON struct {
		Name   string  `json:"name"`
		Type   string  `json:"type"`
		Shape  []int64 `json:"shape"`
		Offset uint64  `json:"offset"`
		Bytes  int64   `json:"bytes"`
	}
	for i, ti := range f.Tensors {
		if i > 0 {
			b.WriteByte(',')
		}
		shape := ti.Ne
		if shape == nil {
			shape = []int64{}
		}
		j, err := json.Marshal(tensorJSON{ti.Name, ti.Type.String(), shape, ti.Offset, ti.Size})
		if err != nil {
			return err
		}
		b.Write(j)
	}
	b.WriteString("]}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("internal error: bad JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

func writeJSONString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s) // invalid UTF-8 becomes U+FFFD
	b.Write(j)
}

// writeJSONValue writes a metadata value: numbers as numbers (f32 with the
// shortest decimal that round-trips as f32), non-finite floats as strings,
// arrays up to jsonArrayLimit inline, longer ones as {"type","len"}.
func writeJSONValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case string:
		writeJSONString(b, x)
		return
	case bool:
		b.WriteString(strconv.FormatBool(x))
		return
	case float32:
		writeJSONFloat(b, float64(x), 32)
		return
	case float64:
		writeJSONFloat(b, x, 64)
		return
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		fmt.Fprint(b, v) // integers
		return
	}
	kv := gguf.KV{Value: v}
	if rv.Len() > jsonArrayLimit {
		fmt.Fprintf(b, `{"type":%q,"len":%d}`, kv.ElemType().String(), rv.Len())
		return
	}
	b.WriteByte('[')
	for i := 0; i < rv.Len(); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONValue(b, rv.Index(i).Interface())
	}
	b.WriteByte(']')
}

func writeJSONFloat(b *bytes.Buffer, x float64, bits int) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		writeJSONString(b, strconv.FormatFloat(x, 'g', -1, bits))
		return
	}
	b.WriteString(strconv.FormatFloat(x, 'g', -1, bits))
}

// inspectReport prints the human-readable report.
func inspectReport(w io.Writer, f *gguf.File) error {
	ew := &stickyWriter{w: w}
	arch := f.Arch()
	fmt.Fprintf(ew, "file:         %s\n", f.Path)
	fmt.Fprintf(ew, "format:       GGUF v%d, %s, %d keys, %d tensors, alignment %d, data at byte %d\n",
		f.Version, ops.FormatBytes(f.Size), len(f.KV), len(f.Tensors), f.Alignment, f.DataOffset)
	fmt.Fprintf(ew, "architecture: %s\n", dashIfEmpty(arch))
	if name, err := f.GetString("general.name"); err == nil {
		fmt.Fprintf(ew, "name:         %s\n", name)
	}
	if ft, err := f.GetUint32("general.file_type"); err == nil {
		fmt.Fprintf(ew, "file type:    %d (%s)\n", ft, gguf.FileType(ft))
	}

	if arch != "" {
		fmt.Fprintf(ew, "\nhyper-parameters (%s.*):\n", arch)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		n := 0
		for _, kv := range f.KV {
			if rest, ok := strings.CutPrefix(kv.Key, arch+"."); ok {
				fmt.Fprintf(tw, "  %s\t%s\n", rest, summarizeValue(kv, 8))
				n++
			}
		}
		tw.Flush()
		if n == 0 {
			fmt.Fprintln(ew, "  (none)")
		}
	}

	if f.Has("tokenizer.ggml.model") || f.Has("tokenizer.ggml.tokens") {
		fmt.Fprintln(ew, "\ntokenizer:")
		printTokenizer(ew, f)
	}

	fmt.Fprintf(ew, "\nmetadata (%d keys):\n", len(f.KV))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, kv := range f.KV {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, kvTypeLabel(kv), summarizeValue(kv, 6))
	}
	tw.Flush()

	fmt.Fprintf(ew, "\ntensors (%d):\n", len(f.Tensors))
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tname\ttype\tshape\tbytes")
	for i, ti := range f.Tensors {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\n", i, ti.Name, ti.Type, shapeList(ti.Ne), ti.Size)
	}
	tw.Flush()

	printTotals(ew, f)
	return ew.err
}

// printTokenizer summarises tokenizer.ggml.*: model, vocabulary size,
// special tokens with their pieces, merges, flags.
func printTokenizer(w io.Writer, f *gguf.File) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	model, _ := f.GetString("tokenizer.ggml.model")
	kind := map[string]string{"llama": "SPM", "gpt2": "BPE", "bert": "WPM", "t5": "UGM", "rwkv": "RWKV", "no_vocab": "none"}[model]
	fmt.Fprintf(tw, "  model\t%s %s\n", dashIfEmpty(model), parenthesize(kind))
	if pre, err := f.GetString("tokenizer.ggml.pre"); err == nil {
		fmt.Fprintf(tw, "  pre-tokenizer\t%s\n", pre)
	}
	tokens, _ := f.GetStrings("tokenizer.ggml.tokens")
	fmt.Fprintf(tw, "  tokens\t%d\n", len(tokens))
	if types, err := f.GetInt32s("tokenizer.ggml.token_type"); err == nil {
		names := []string{"undefined", "normal", "unknown", "control", "user-defined", "unused", "byte"}
		count := map[int32]int{}
		for _, t := range types {
			count[t]++
		}
		var parts []string
		for t := int32(0); t < int32(len(names)); t++ {
			if count[t] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", count[t], names[t]))
			}
		}
		fmt.Fprintf(tw, "  token types\t%s\n", strings.Join(parts, ", "))
	}
	if merges, err := f.GetStrings("tokenizer.ggml.merges"); err == nil {
		fmt.Fprintf(tw, "  merges\t%d\n", len(merges))
	}
	for _, sp := range []struct{ key, label string }{
		{"bos_token_id", "BOS"}, {"eos_token_id", "EOS"}, {"eot_token_id", "EOT"},
		{"unknown_token_id", "UNK"}, {"seperator_token_id", "SEP"}, {"padding_token_id", "PAD"},
	} {
		id, err := f.GetInt("tokenizer.ggml." + sp.key)
		if err != nil {
			continue
		}
		piece := "(none)"
		if id >= 0 && id < int64(len(tokens)) {
			piece = strconv.Quote(tokens[id])
		} else if id == math.MaxUint32 || id == -1 {
			id = -1
		}
		fmt.Fprintf(tw, "  %s\t%d %s\n", sp.label, id, piece)
	}
	for _, k := range []string{"add_bos_token", "add_eos_token", "add_space_prefix"} {
		if b, err := f.GetBool("tokenizer.ggml." + k); err == nil {
			fmt.Fprintf(tw, "  %s\t%v\n", k, b)
		}
	}
	if tmpl, err := f.GetString("tokenizer.chat_template"); err == nil {
		fmt.Fprintf(tw, "  chat template\t%d characters\n", len(tmpl))
	}
}

// printTotals prints tensors, elements and bytes per type, and overall.
func printTotals(w io.Writer, f *gguf.File) {
	type total struct{ n, elems, bytes int64 }
	per := map[gguf.Type]*total{}
	var all total
	for _, ti := range f.Tensors {
		t := per[ti.Type]
		if t == nil {
			t = &total{}
			per[ti.Type] = t
		}
		t.n++
		t.elems += ti.NElements()
		t.bytes += ti.Size
		all.n++
		all.elems += ti.NElements()
		all.bytes += ti.Size
	}
	types := make([]gguf.Type, 0, len(per))
	for t := range per {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return per[types[i]].bytes > per[types[j]].bytes })
	fmt.Fprintln(w, "\ntotals by type:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  type\ttensors\telements\tbytes\tbits/weight")
	row := func(name string, t *total) {
		bpw := 0.0
		if t.elems > 0 {
			bpw = float64(t.bytes) * 8 / float64(t.elems)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d (%s)\t%.2f\n", name, t.n, t.elems, t.bytes, ops.FormatBytes(t.bytes), bpw)
	}
	for _, t := range types {
		row(t.String(), per[t])
	}
	row("all", &all)
	tw.Flush()
}

// summarize renders a value for the report, arrays cut to max elements.
func summarizeValue(kv gguf.KV, max int) string {
	rv := reflect.ValueOf(kv.Value)
	if rv.Kind() != reflect.Slice {
		return scalarText(kv.Value)
	}
	n := rv.Len()
	parts := make([]string, 0, min(n, max)+1)
	for i := 0; i < n && i < max; i++ {
		e := rv.Index(i).Interface()
		if reflect.ValueOf(e).Kind() == reflect.Slice {
			parts = append(parts, summarizeValue(gguf.KV{Value: e}, 2))
		} else {
			parts = append(parts, scalarText(e))
		}
	}
	if n > max {
		parts = append(parts, fmt.Sprintf("... (%d more)", n-max))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 120 {
			return strconv.Quote(x[:120]) + fmt.Sprintf("... (%d bytes)", len(x))
		}
		return strconv.Quote(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// typeLabel spells the type as gguf-dump does: "u32", "arr[str,512]".
func kvTypeLabel(kv gguf.KV) string {
	if kv.Type() == gguf.ValArray {
		return fmt.Sprintf("arr[%s,%d]", kv.ElemType(), kv.Len())
	}
	return kv.Type().String()
}

func shapeList(ne []int64) string {
	s := make([]string, len(ne))
	for i, v := range ne {
		s[i] = strconv.FormatInt(v, 10)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parenthesize(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// stickyWriter keeps the first write error so the report code stays linear.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (e *stickyWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
