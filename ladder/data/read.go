package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ReadFile reads every record of a data file. Compression (gzip or zstd) is
// recognised by its magic bytes; the format by the extension under it:
// .jsonl/.json (JSON lines or one JSON array of objects), .tsv
// (text<TAB>label, header optional), .txt (raw text). Other extensions are
// read as JSON when they start with '{' or '[', else as raw text.
func ReadFile(path string) ([]Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	content, err := decompress(raw)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	return ParseRecords(path, content)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress undoes gzip or zstd compression, recognised by magic bytes.
func decompress(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, gzipMagic):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(b, zstdMagic):
		zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		out, err := zr.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	}
	return b, nil
}

// formatOf picks the parser from the file name, ignoring compression suffixes.
func formatOf(name string, content []byte) string {
	base := strings.ToLower(filepath.Base(name))
	for _, suf := range []string{".gz", ".gzip", ".zst", ".zstd"} {
		base = strings.TrimSuffix(base, suf)
	}
	switch filepath.Ext(base) {
	case ".jsonl", ".json", ".ndjson":
		return "json"
	case ".tsv":
		return "tsv"
	case ".txt", ".text", ".md":
		return "txt"
	}
	if t := bytes.TrimLeft(content, " \t\r\n\ufeff"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "json"
	}
	return "txt"
}

// ParseRecords parses the (decompressed) content of a data file; name gives
// the format (see ReadFile) and prefixes error messages.
func ParseRecords(name string, content []byte) ([]Record, error) {
	content = bytes.TrimPrefix(content, []byte("\ufeff")) // UTF-8 byte-order mark
	var recs []Record
	var err error
	switch formatOf(name, content) {
	case "json":
		recs, err = parseJSON(name, content)
	case "tsv":
		recs, err = parseTSV(name, content)
	default:
		return []Record{{Source: name + ":1", Kind: KindRaw, Text: string(content)}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("data: %s: no records", name)
	}
	// One kind per file: mixing, say, chat and classification is a mistake.
	for _, r := range recs[1:] {
		if r.Kind != recs[0].Kind {
			return nil, fmt.Errorf("data: %s: %s record, but the file started with %s records (%s)",
				r.Source, r.Kind, recs[0].Kind, recs[0].Source)
		}
	}
	return recs, nil
}

// parseJSON reads JSON lines, or a single JSON array of objects.
func parseJSON(name string, content []byte) ([]Record, error) {
	trimmed := bytes.TrimLeft(content, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return parseJSONArray(name, content)
	}
	var recs []Record
	line := 0
	for rest := content; len(rest) > 0; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		line++
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		src := fmt.Sprintf("%s:%d", name, line)
		r, err := jsonRecord(src, l)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// parseJSONArray reads `[ {...}, {...} ]`, naming each element by the line
// where it starts.
func parseJSONArray(name string, content []byte) ([]Record, error) {
	dec := json.NewDecoder(bytes.NewReader(content))
	// lineAt counts newlines incrementally: offsets only grow.
	line, counted := 1, 0
	lineAt := func(off int64) int {
		end := min(int(off), len(content))
		line += bytes.Count(content[counted:end], []byte("\n"))
		counted = end
		return line
	}
	if _, err := dec.Token(); err != nil { // '['
		return nil, fmt.Errorf("data: %s:1: %v", name, err)
	}
	var recs []Record
	for dec.More() {
		// The element starts at the first non-space, non-comma byte after
		// the decoder's position.
		off := dec.InputOffset()
		for off < int64(len(content)) && bytes.IndexByte([]byte(" \t\r\n,"), content[off]) >= 0 {
			off++
		}
		src := fmt.Sprintf("%s:%d", name, lineAt(off))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("data: %s: invalid JSON: %v", src, jsonErr(err))
		}
		r, err := jsonRecord(src, raw)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, fmt.Errorf("data: %s:%d: invalid JSON array: %v", name, lineAt(dec.InputOffset()), jsonErr(err))
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(content[off:])) != 0 {
		return nil, fmt.Errorf("data: %s:%d: text after the JSON array", name, lineAt(off))
	}
	return recs, nil
}

func jsonErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// jsonRecord recognises the record kind from the object's fields.
func jsonRecord(src string, b []byte) (Record, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return Record{}, fmt.Errorf("data: %s: invalid JSON object: %v", src, err)
	}
	if obj == nil {
		return Record{}, fmt.Errorf("data: %s: want a JSON object, got null", src)
	}
	str := func(key string) (string, error) {
		var s string
		if err := json.Unmarshal(obj[key], &s); err != nil {
			return "", fmt.Errorf("data: %s: field %q must be a string", src, key)
		}
		return s, nil
	}
	has := func(key string) bool { _, ok := obj[key]; return ok }
	r := Record{Source: src}
	var err error
	switch {
	case has("messages"):
		r.Kind = KindChat
		if err := json.Unmarshal(obj["messages"], &r.Messages); err != nil {
			return Record{}, fmt.Errorf("data: %s: field \"messages\" must be a list of {\"role\", \"content\"} strings: %v", src, err)
		}
		for i, m := range r.Messages {
			if m.Role == "" {
				return Record{}, fmt.Errorf("data: %s: message %d has no role", src, i)
			}
		}
		if len(r.Messages) == 0 {
			return Record{}, fmt.Errorf("data: %s: empty \"messages\"", src)
		}
	case has("text") && has("label"):
		r.Kind = KindClassify
		if r.Text, err = str("text"); err != nil {
			return Record{}, err
		}
		var n json.Number
		if json.Unmarshal(obj["label"], &n) == nil {
			r.Label = n.String()
		} else if r.Label, err = str("label"); err != nil {
			return Record{}, fmt.Errorf("data: %s: field \"label\" must be a number or a string", src)
		}
	case has("text"):
		r.Kind = KindText
		r.Text, err = str("text")
	case has("prompt") && has("completion"):
		r.Kind = KindPrompt
		if r.Prompt, err = str("prompt"); err == nil {
			r.Completion, err = str("completion")
		}
	case has("instruction") && (has("output") || has("response")):
		r.Kind = KindPrompt
		var instr, input, out string
		outKey := "output"
		if !has("output") {
			outKey = "response"
		}
		if instr, err = str("instruction"); err != nil {
			return Record{}, err
		}
		if has("input") {
			if input, err = str("input"); err != nil {
				return Record{}, err
			}
		}
		if out, err = str(outKey); err != nil {
			return Record{}, err
		}
		r.Prompt, r.Completion = AlpacaPrompt(instr, input), out
	case has("question") && has("answer"):
		r.Kind = KindPrompt
		var q string
		if q, err = str("question"); err == nil {
			r.Completion, err = str("answer")
		}
		r.Prompt = QAPrompt(q)
		r.Completion = " " + r.Completion
	default:
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, strconv.Quote(k))
		}
		slices.Sort(keys)
		return Record{}, fmt.Errorf("data: %s: unknown record fields {%s}; want text, prompt/completion, "+
			"instruction/input/output (or response), question/answer, messages, or text/label", src, strings.Join(keys, ", "))
	}
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

// AlpacaPrompt renders an instruction (and optional input) with the
// Stanford Alpaca prompt; the response follows it as the completion.
func AlpacaPrompt(instruction, input string) string {
	if input == "" {
		return "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
			"### Instruction:\n" + instruction + "\n\n### Response:\n"
	}
	return "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n"
}

// QAPrompt renders a question (GSM8K and the like); the answer follows after
// a space as the completion.
func QAPrompt(question string) string { return "Question: " + question + "\nAnswer:" }

type tsvRow struct {
	line        int
	text, label string
}

// parseTSV reads text<TAB>label lines. The label is the last tab-separated
// field, so the text may itself contain tabs. The first line is a header
// when its label field is a column name, or not a number while the next
// line's label is one.
func parseTSV(name string, content []byte) ([]Record, error) {
	var rows []tsvRow
	line := 0
	for rest := content; len(rest) > 0; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		line++
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		i := bytes.LastIndexByte(l, '\t')
		if i < 0 {
			return nil, fmt.Errorf("data: %s:%d: no tab: want text<TAB>label", name, line)
		}
		rows = append(rows, tsvRow{line, string(bytes.TrimSpace(l[:i])), string(bytes.TrimSpace(l[i+1:]))})
	}
	if len(rows) > 0 && rows[0].line == 1 && isTSVHeader(rows) {
		rows = rows[1:]
	}
	recs := make([]Record, 0, len(rows))
	for _, r := range rows {
		src := fmt.Sprintf("%s:%d", name, r.line)
		if r.label == "" {
			return nil, fmt.Errorf("data: %s: empty label", src)
		}
		recs = append(recs, Record{Source: src, Kind: KindClassify, Text: r.text, Label: r.label})
	}
	return recs, nil
}

// isTSVHeader decides whether the first row names the columns.
func isTSVHeader(rows []tsvRow) bool {
	switch strings.ToLower(rows[0].label) {
	case "label", "labels", "class", "category", "target", "sentiment", "y":
		return true
	}
	if _, err := strconv.Atoi(rows[0].label); err == nil || len(rows) < 2 {
		return false
	}
	_, err := strconv.Atoi(rows[1].label)
	return err == nil
}
