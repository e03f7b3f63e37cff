package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"ladder-engine/internal/fixtures"
)

// inspectJSONOut is the --json shape the issue specifies.
type inspectJSONOut struct {
	Metadata map[string]json.RawMessage `json:"metadata"`
	Tensors  []struct {
		Name   string  `json:"name"`
		Type   string  `json:"type"`
		Shape  []int64 `json:"shape"`
		Offset uint64  `json:"offset"`
		Bytes  int64   `json:"bytes"`
	} `json:"tensors"`
}

// TestInspectJSONAgainstReference checks --json for every fixture model
// against reference/models.json (written by gguf-py): the tensor set and
// every tensor's ggml type, general.file_type, and that offsets are the
// running sum of 32-byte-padded sizes ending at the file size.
func TestInspectJSONAgainstReference(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path(t, "reference/models.json"))
	if err != nil {
		t.Fatal(err)
	}
	var models map[string]struct {
		File        string            `json:"file"`
		Bytes       int64             `json:"bytes"`
		FileType    *int64            `json:"general.file_type"`
		TensorTypes map[string]string `json:"tensor_types"`
	}
	if err := json.Unmarshal(raw, &models); err != nil {
		t.Fatal(err)
	}
	for name, m := range models {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := inspect(&out, []string{fixtures.Path(t, m.File), "--json"}); err != nil {
				t.Fatal(err)
			}
			var got inspectJSONOut
			dec := json.NewDecoder(&out)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if len(got.Tensors) != len(m.TensorTypes) {
				t.Fatalf("%d tensors, want %d", len(got.Tensors), len(m.TensorTypes))
			}
			var off uint64
			for _, ti := range got.Tensors {
				want, ok := m.TensorTypes[ti.Name]
				if !ok {
					t.Errorf("unexpected tensor %s", ti.Name)
				}
				// gguf-py spells types upper case (Q4_K); ggml's names are q4_K.
				if !strings.EqualFold(ti.Type, want) || ti.Type == strings.ToUpper(ti.Type) && ti.Type != strings.ToLower(ti.Type) {
					t.Errorf("%s: type %q, want ggml's spelling of %s", ti.Name, ti.Type, want)
				}
				if ti.Offset != off {
					t.Errorf("%s: offset %d, want %d", ti.Name, ti.Offset, off)
				}
				off += (uint64(ti.Bytes) + 31) &^ 31
			}
			last := got.Tensors[len(got.Tensors)-1]
			if int64(last.Offset)+last.Bytes > m.Bytes {
				t.Errorf("last tensor ends past the file")
			}
			ft := string(got.Metadata["general.file_type"])
			if m.FileType != nil && ft != strings.TrimSpace(string(mustJSON(*m.FileType))) {
				t.Errorf("general.file_type %s, want %d", ft, *m.FileType)
			}
			// Arrays longer than 16 are summarised.
			var toks struct {
				Type string `json:"type"`
				Len  int    `json:"len"`
			}
			if err := json.Unmarshal(got.Metadata["tokenizer.ggml.tokens"], &toks); err != nil || toks.Type != "str" || toks.Len < 17 {
				t.Errorf("tokenizer.ggml.tokens = %s (%v)", got.Metadata["tokenizer.ggml.tokens"], err)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestInspectJSONValues: scalars keep their values (f32 printed as the
// shortest decimal that round-trips), short arrays are inline.
func TestInspectJSONValues(t *testing.T) {
	var out bytes.Buffer
	if err := inspect(&out, []string{"-m", fixtures.Path(t, "models/synth/synth-qwen2-F32.gguf"), "--json"}); err != nil {
		t.Fatal(err)
	}
	var got inspectJSONOut
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"general.architecture":                   `"qwen2"`,
		"qwen2.embedding_length":                 `320`,
		"qwen2.rope.freq_base":                   `1e+06`,
		"qwen2.attention.layer_norm_rms_epsilon": `1e-06`,
		"tokenizer.ggml.add_bos_token":           `false`,
		"tokenizer.ggml.eos_token_id":            `756`,
		"tokenizer.ggml.merges":                  `{"type":"str","len":500}`,
	}
	for k, v := range want {
		var compact bytes.Buffer
		json.Compact(&compact, got.Metadata[k])
		if compact.String() != v {
			t.Errorf("%s = %s, want %s", k, compact.String(), v)
		}
	}
	found := false
	for _, ti := range got.Tensors {
		if ti.Name == "token_embd.weight" {
			found = true
			if ti.Type != "f32" || len(ti.Shape) != 2 || ti.Shape[0] != 320 || ti.Shape[1] != 759 || ti.Bytes != 320*759*4 {
				t.Errorf("token_embd = %+v", ti)
			}
		}
	}
	if !found {
		t.Error("no token_embd.weight")
	}
}

// TestInspectReport checks the human report's sections on stories260K.
func TestInspectReport(t *testing.T) {
	var out bytes.Buffer
	if err := inspect(&out, []string{fixtures.Path(t, "models/stories260K/stories260K.gguf")}); err != nil {
		t.Fatal(err)
	}
	// Compare with runs of spaces collapsed: column widths are tabwriter's.
	s := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"architecture: llama",
		"hyper-parameters (llama.*):",
		"embedding_length                  64",
		"model          llama (SPM)",
		"tokens         512",
		`BOS            1 "<s>"`,
		`tokenizer.ggml.tokens                   arr[str,512]`,
		"... (506 more)",
		"tensors (48):",
		"token_embd.weight         f32   [64, 512]  131072",
		"f32   48       292800    1171200 (1.1 MiB)  32.00",
	} {
		if want = strings.Join(strings.Fields(want), " "); !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

func TestInspectUsage(t *testing.T) {
	var ue usageError
	if err := inspect(&bytes.Buffer{}, nil); !errors.As(err, &ue) {
		t.Errorf("no model: %v, want a usage error", err)
	}
	if err := inspect(&bytes.Buffer{}, []string{"a.gguf", "b.gguf"}); !errors.As(err, &ue) {
		t.Errorf("two models: %v, want a usage error", err)
	}
	if err := inspect(&bytes.Buffer{}, []string{"--bogus", "a.gguf"}); !errors.As(err, &ue) {
		t.Errorf("bad flag: %v, want a usage error", err)
	}
	err := inspect(&bytes.Buffer{}, []string{"/nonexistent/m.gguf"})
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "/nonexistent/m.gguf") {
		t.Errorf("missing file: %v", err)
	}
}
